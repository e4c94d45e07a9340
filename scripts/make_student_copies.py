"""Write student copies of the notebooks: solutions removed, outputs cleared, ready for nbgrader.

In the teacher's notebooks (the ones in notebooks/, which CI runs) every exercise
solution sits between two marker lines, as in nbgrader:

    ### BEGIN SOLUTION
    probabilities = torch.softmax(similarities / temperature, dim=0)
    ### END SOLUTION

A student copy keeps everything else and puts a placeholder in the solution's
place that raises NotImplementedError, so running the notebook stops at the first
exercise the student has not done yet.

A student copy also carries nbgrader's cell metadata, so that nbgrader can grade the
notebooks the students hand back (scripts/grade_class.py does it all):
a cell with a solution is an answer cell (``solution: true``, grade id ``qN_answer``),
a cell ``qN.check()`` is an autograded test cell worth ``--points`` (grade id ``qN``,
locked, so nbgrader restores it if a student edits it).

The Colab and Binder badges of the teacher's notebooks open the teacher's repository,
solutions included. A student copy drops them, or, with ``--repo OWNER/NAME`` (and
``--branch``, ``--dir``), points them at the repository where the teacher publishes
the student copies; the Colab cell then fetches the course from that repository too
(it should hold the package and the student copies, not the teacher's notebooks).

Standard library only: a teacher can make copies without torch.

Usage: python scripts/make_student_copies.py notebooks build/student
       [--repo OWNER/NAME] [--branch main] [--dir notebooks] [--points 1]
"""

import argparse
import json
import re
from pathlib import Path
from urllib.parse import quote

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = 'raise NotImplementedError("Your turn: replace this line with your solution.")'
CHECK_CELL = re.compile(r"^\s*(q\d+)\.check\(\s*\)\s*;?\s*$")
ANY_CHECK = re.compile(r"\bq\d+\s*\.\s*check\s*\(")
# A line that looks like a solution marker in any spelling (case, spaces, number of #).
MARKER_LIKE = re.compile(r"^\s*#+\s*(begin|end)\s*_?\s*solution\b", re.IGNORECASE)
BADGE_HOSTS = ("colab.research.google.com", "mybinder.org")
TEACHER_REPO = "https://github.com/mmlearn-course/mmlearn"  # what the Colab cell clones
# A Markdown badge: [![alt](image)](link), with what surrounds it on its line.
BADGE = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\((https?://[^)\s]+)\)")


def strip_solutions(source: str) -> str:
    """Replace each BEGIN/END SOLUTION block by one indented placeholder line.

    A line that looks like a marker but is not spelled exactly so (``## begin solution``,
    ``###BEGIN SOLUTION``) is an error, not a line left in: it would leak the solution.
    """
    out, inside = [], False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if MARKER_LIKE.match(line) and stripped not in (BEGIN, END):
            raise ValueError(f"line {number}: {stripped!r} looks like a solution marker but "
                             f"is not spelled {BEGIN!r} or {END!r}; fix its spelling")
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"nested {BEGIN!r}: close the first block with {END!r}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + PLACEHOLDER)
        elif stripped == END:
            if not inside:
                raise ValueError(f"{END!r} without a matching {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without a matching {END!r}")
    return "\n".join(out)


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def checked_question(source: str) -> str | None:
    """``"q1"`` when the cell's only statement is ``q1.check()`` (comments aside)."""
    code = [line for line in source.splitlines()
            if line.strip() and not line.strip().startswith("#")]
    if len(code) == 1:
        match = CHECK_CELL.match(code[0])
        if match:
            return match.group(1)
    return None


def add_nbgrader_metadata(notebook: dict, points: float | dict[str, float] = 1) -> dict:
    """Mark answer cells and check cells for nbgrader, in place; return the notebook.

    An answer cell is named after the first check that follows it (``q1_answer``);
    the question names (``q1``, ``q2``...) become the grade ids of the check cells.
    ``points`` is one number for every check, or a number per question name. A check
    written in a cell the grader cannot recognise (``q1.check()`` with other code, or in
    Markdown), and a solution marker in a Markdown cell, are errors.
    """
    cells = notebook["cells"]
    questions = [checked_question(_source(c)) if c["cell_type"] == "code" else None
                 for c in cells]
    for index, (cell, question) in enumerate(zip(cells, questions)):
        source = _source(cell)
        if cell["cell_type"] == "code" and question is None and ANY_CHECK.search(
                "\n".join(line for line in source.splitlines()
                          if not line.strip().startswith("#"))):
            raise ValueError(f"cell {index}: a check must stand alone in its cell "
                             f"(`q1.check()`), or the grader cannot give it points")
        if cell["cell_type"] == "markdown" and any(MARKER_LIKE.match(line)
                                                   for line in source.splitlines()):
            raise ValueError(f"cell {index}: a solution marker in a Markdown cell; put "
                             f"the solution in a code cell")
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        cell.setdefault("metadata", {}).pop("nbgrader", None)
        base = {"schema_version": 3, "task": False}
        if questions[index]:
            grade_id = questions[index]
            if grade_id in seen:
                raise ValueError(f"{grade_id}.check() appears twice; nbgrader needs one test "
                                 f"cell per question")
            seen[grade_id] = index
            worth = points.get(grade_id, 1) if isinstance(points, dict) else points
            cell["metadata"]["nbgrader"] = {**base, "grade": True, "solution": False,
                                            "locked": True, "points": worth,
                                            "grade_id": grade_id}
        elif BEGIN in _source(cell):
            following = next((q for q in questions[index + 1:] if q), "answer")
            grade_id, n = f"{following}_answer", 2
            while any(c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id
                      for c in cells):
                grade_id, n = f"{following}_answer{n}", n + 1
            cell["metadata"]["nbgrader"] = {**base, "grade": False, "solution": True,
                                            "locked": False, "grade_id": grade_id}
    return notebook


def rewrite_badges(source: str, notebook_name: str, repo: str | None = None,
                   branch: str = "main", directory: str = "notebooks") -> str:
    """Drop the Colab/Binder badges, or point them at ``repo``'s copy of the notebook."""
    def replace(match: re.Match) -> str:
        link = match.group(1)
        if not any(host in link for host in BADGE_HOSTS):
            return match.group(0)
        if repo is None:
            return ""
        path = f"{directory.strip('/')}/{notebook_name}".lstrip("/")
        if "colab.research.google.com" in link:
            new = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{path}"
        else:
            new = f"https://mybinder.org/v2/gh/{repo}/{branch}?labpath={quote(path, safe='')}"
        return match.group(0).replace(link, new)

    lines = []
    for line in source.splitlines():
        new = BADGE.sub(replace, line)
        if new.strip() or not line.strip():  # a line that held only badges goes
            lines.append(new.rstrip() if new != line else line)
    return "\n".join(lines)


def student_notebook(notebook: dict, name: str = "notebook.ipynb", repo: str | None = None,
                     branch: str = "main", directory: str = "notebooks",
                     points: float = 1) -> dict:
    """A copy of a notebook (as JSON): solutions stripped, outputs cleared, nbgrader
    metadata added, badges dropped (or pointed at ``repo``)."""
    copy = add_nbgrader_metadata(json.loads(json.dumps(notebook)), points=points)
    for cell in copy["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = rewrite_badges(_source(cell), name, repo, branch, directory)
            continue
        if cell["cell_type"] != "code":
            continue
        cell["source"] = strip_solutions(_source(cell))
        if repo is not None:  # the Colab cell fetches the course from the student repository
            cell["source"] = cell["source"].replace(TEACHER_REPO, f"https://github.com/{repo}")
        cell["outputs"] = []
        cell["execution_count"] = None
        cell["metadata"].pop("execution", None)
    return copy


def main(source_dir: str, target_dir: str, repo: str | None = None, branch: str = "main",
         directory: str = "notebooks", points: float = 1) -> None:
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source_dir).glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        copy = student_notebook(notebook, path.name, repo, branch, directory, points)
        (target / path.name).write_text(json.dumps(copy, indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
        print(f"wrote {target / path.name}")
    if repo is None:
        print(f"Note: without --repo, the copies' Colab cell clones {TEACHER_REPO}, whose "
              f"notebooks/ hold the solutions. Publish the copies and the package in a "
              f"repository of yours and pass --repo OWNER/NAME to point the cell there.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source_dir", help="the teacher's notebooks, e.g. notebooks")
    parser.add_argument("target_dir", help="where the student copies go, e.g. build/student")
    parser.add_argument("--repo", help="OWNER/NAME of the repository that publishes the "
                        "student copies; the Colab/Binder badges point there (default: "
                        "no badges)")
    parser.add_argument("--branch", default="main", help="its branch (default: main)")
    parser.add_argument("--dir", default="notebooks", dest="directory",
                        help="the copies' folder in that repository (default: notebooks)")
    parser.add_argument("--points", type=float, default=1, help="points per check (default 1)")
    args = parser.parse_args()
    if args.repo is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repo):
        parser.error("--repo must look like OWNER/NAME")
    main(args.source_dir, args.target_dir, args.repo, args.branch, args.directory, args.points)
