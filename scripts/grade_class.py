"""Grade a class's notebooks with nbgrader and write one table: a row per learner.

    python scripts/grade_class.py notebooks/00_start_here.ipynb submissions/ grades.csv

NOTEBOOK is the teacher's notebook (with its ``### BEGIN SOLUTION`` blocks).
SUBMISSIONS_DIR holds one notebook per learner, either ``NAME.ipynb`` or
``NAME/<notebook>.ipynb``; NAME becomes the learner's row.

What it does, in a temporary nbgrader course directory:
1. the teacher's notebook gets nbgrader's metadata (as in make_student_copies.py) and
   ``nbgrader generate_assignment`` records its checks (one test cell ``qN.check()`` per
   question, 1 point each unless --points);
2. ``nbgrader autograde`` runs each learner's notebook in a fresh kernel, with errors
   allowed, so that every check runs and gives a verdict; a cell may run --cell-timeout
   seconds, a whole notebook --timeout seconds (then it is stopped). The kernel gets
   ``MMLEARN_GRADING=1``, which makes a check that is not correct raise, so nbgrader
   gives it 0 points; nbgrader restores any check cell a learner edited or deleted;
3. the CSV has the columns learner, q1..qN (points), total, note. A learner whose
   notebook could not be graded (stopped, crashed) still gets a row, with the reason in
   the note and no points.

Needs nbgrader (``pip install -e ".[teacher]"``), in the same environment as mmlearn.
"""

import argparse
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_student_copies import add_nbgrader_metadata  # noqa: E402

from mmlearn.files import atomic_write_bytes  # noqa: E402

CONFIG = """\
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.Execute.timeout = {cell_timeout}
c.Execute.allow_errors = True
c.Execute.interrupt_on_timeout = True
c.Execute.raise_on_iopub_timeout = False
"""


def learner_notebooks(submissions: Path, notebook_name: str) -> dict[str, Path | str]:
    """Each learner's notebook (or, when none can be chosen, why not), by name."""
    found: dict[str, Path | str] = {}
    for entry in sorted(submissions.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb":
            found[entry.stem] = entry
        elif entry.is_dir() and not entry.name.startswith("."):
            candidates = sorted(p for p in entry.rglob("*.ipynb")
                                if ".ipynb_checkpoints" not in p.parts)
            named = [p for p in candidates if p.name == notebook_name]
            if len(named) == 1 or len(candidates) == 1:
                found[entry.name] = (named or candidates)[0]
            else:
                found[entry.name] = (f"no notebook found in {entry.name}/" if not candidates
                                     else f"several notebooks in {entry.name}/, none named "
                                          f"{notebook_name}")
    return found


def student_id(name: str, taken: set[str]) -> str:
    """A name nbgrader accepts as a student id (and as a folder), unique in ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "learner"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def run(command: list[str], cwd: Path, env: dict, timeout: float | None) -> tuple[int, str]:
    """Run ``command``; on a timeout stop it and everything it started (the kernel too)."""
    kwargs: dict = {"start_new_session": True} if os.name == "posix" else {
        "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, errors="replace", **kwargs)
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        output, _ = process.communicate()
        return -1, output


def _errors(log: str) -> str:
    """The first error line of an nbgrader log, shortened."""
    lines = [line.strip() for line in log.splitlines()
             if "ERROR" in line or "Error" in line or "Traceback" in line]
    text = lines[0] if lines else (log.strip().splitlines() or ["no output"])[-1]
    return text[:200]


def notebook_notes(path: Path) -> list[str]:
    """What an autograded notebook records besides points: time-outs, kernel deaths, and
    the checks the learner did not attempt."""
    if not path.exists():
        return []
    problems, unattempted = set(), []
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == "CellTimeoutError":
                problems.add("a cell ran out of time and was stopped (--cell-timeout)")
            elif output.get("ename") == "DeadKernelError":
                problems.add("the kernel died")
            elif output.get("ename") == "NotCorrect" and "Not attempted" in "".join(
                    output.get("traceback", [])):
                unattempted.append(grade_id)
    notes = sorted(problems)
    if unattempted:
        notes.append("not attempted: " + " ".join(unattempted))
    return notes


def grade(notebook: Path, submissions: Path, out_csv: Path, cell_timeout: float = 120,
          timeout: float = 600, points: float = 1, workdir: Path | None = None) -> list[dict]:
    """Grade every learner's notebook; write and return the rows of the table."""
    try:
        from nbgrader.api import Gradebook, MissingEntry
    except ImportError:
        sys.exit('grade_class.py needs nbgrader: pip install -e ".[teacher]" (or nbgrader)')

    # nbgrader runs the `alembic` command: the one beside this Python (a venv not activated).
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                          os.environ.get("PATH", "")])
    source = add_nbgrader_metadata(json.loads(notebook.read_text(encoding="utf-8")), points)
    questions = [c["metadata"]["nbgrader"]["grade_id"] for c in source["cells"]
                 if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    if not questions:
        sys.exit(f"{notebook} has no check cells (a cell holding only `q1.check()`)")
    assignment = notebook_id = notebook.stem
    submitted = learner_notebooks(submissions, notebook.name)

    root = Path(workdir or tempfile.mkdtemp(prefix="mmlearn-grading-"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "source" / assignment).mkdir(parents=True, exist_ok=True)
    (root / "source" / assignment / notebook.name).write_text(json.dumps(source),
                                                               encoding="utf-8")
    (root / "nbgrader_config.py").write_text(CONFIG.format(root=str(root),
                                                           cell_timeout=int(cell_timeout)))
    env = {**os.environ, "MMLEARN_GRADING": "1", "PYTHONIOENCODING": "utf-8"}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    code, log = run([*nbgrader, "generate_assignment", assignment, "--force"], root, env, 300)
    if code != 0:
        sys.exit(f"nbgrader generate_assignment failed:\n{log}")

    rows, taken = [], set()
    for name, path in submitted.items():
        row = {"learner": name, **dict.fromkeys(questions, ""), "total": 0, "note": ""}
        rows.append(row)
        if isinstance(path, str):
            row["note"] = f"not graded: {path}"
            continue
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            row["note"] = f"not graded: {path.name} is not a notebook (not valid JSON: {error})"
            continue
        sid = student_id(name, taken)
        target = root / "submitted" / sid / assignment
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / notebook.name)
        start = time.monotonic()
        code, log = run([*nbgrader, "autograde", assignment, f"--student={sid}", "--force"],
                        root, env, timeout)
        seconds = time.monotonic() - start
        scores = {}
        try:
            with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
                result = gradebook.find_submission_notebook(notebook_id, assignment, sid)
                scores = {g.name: g.score for g in result.grades if g.auto_score is not None}
        except MissingEntry:
            pass
        if code == -1:
            row["note"] = f"not graded: stopped after {timeout:g} s (--timeout)"
            continue
        if code != 0 or not scores:
            row["note"] = f"not graded: nbgrader failed ({_errors(log)})"
            continue
        for question in questions:
            row[question] = _number(scores.get(question, 0))
        row["total"] = _number(sum(scores.get(q, 0) for q in questions))
        notes = notebook_notes(root / "autograded" / sid / assignment / notebook.name)
        row["note"] = "; ".join(notes)
        print(f"{name}: {row['total']} of {_number(points * len(questions))} "
              f"({seconds:.0f} s){'; ' + row['note'] if row['note'] else ''}")

    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=["learner", *questions, "total", "note"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(out_csv, table.getvalue().encode("utf-8"))  # all rows, or the old file
    if workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    return rows


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path, help="the teacher's notebook, with solutions")
    parser.add_argument("submissions", type=Path, help="NAME.ipynb or NAME/ per learner")
    parser.add_argument("out_csv", type=Path, help="the table to write")
    parser.add_argument("--cell-timeout", type=float, default=120,
                        help="seconds a cell may run (default 120)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds a learner's whole notebook may run (default 600)")
    parser.add_argument("--points", type=float, default=1, help="points per check (default 1)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build the nbgrader course in DIR and keep it (autograded "
                             "notebooks with every verdict are in DIR/autograded/)")
    args = parser.parse_args()
    if not args.submissions.is_dir():
        parser.error(f"{args.submissions} is not a folder")
    rows = grade(args.notebook, args.submissions, args.out_csv, args.cell_timeout,
                 args.timeout, args.points, args.keep)
    print(f"wrote {args.out_csv}: {len(rows)} learners")


if __name__ == "__main__":
    main()
