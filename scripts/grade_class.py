"""Grade a class with nbgrader's own commands, and write one table: a row per learner.

    python scripts/grade_class.py NOTEBOOK [NOTEBOOK ...] SUBMISSIONS OUT.csv [--course DIR]

Each NOTEBOOK is a teacher's notebook (with its ``### BEGIN SOLUTION`` blocks); each
becomes one nbgrader assignment, named after the file. SUBMISSIONS holds one folder
per learner, ``NAME/<notebook>.ipynb`` (or, for a single notebook, ``NAME.ipynb``);
NAME becomes the learner's row.

The steps are nbgrader's, run in the course folder DIR (a temporary one unless
``--course`` is given, which keeps it for nbgrader's own commands afterwards):

1. ``source/``: the teacher's notebooks with nbgrader's metadata; a check cell
   ``qN.check()`` is worth the points its question declares in
   ``mmlearn.exercises.lessonNN`` (builds more than predictions);
   ``nbgrader generate_assignment`` writes ``release/``, the copies learners get;
2. collect: every learner's notebook is copied to ``submitted/NAME/ASSIGNMENT/``;
3. ``nbgrader autograde`` runs each in a fresh kernel that starts in grading mode
   (an IPython start-up file in ``grading/ipython`` calls
   ``mmlearn.exercises.grading.start_grading`` before the first cell; nothing a cell
   sets switches it off); errors are allowed, so every check gives a verdict; a cell
   may run --cell-timeout seconds, a notebook --timeout seconds;
4. ``nbgrader generate_feedback`` writes ``feedback/NAME/ASSIGNMENT/*.html``;
5. ``nbgrader export`` writes nbgrader's own ``grades.csv`` in DIR;
6. OUT.csv: learner, the points of every question, total, the solutions the learner's
   notebook showed, tampering the grading watchdog saw, and notes (time-outs, not
   attempted). The points of a question whose check was tampered with (all of them when
   the exercise machinery itself was changed) are withheld, in nbgrader's gradebook too
   (a manual score of 0, which a teacher can change in formgrader).

Needs nbgrader (``pip install -e ".[teacher]"``; ``.venv-dev`` has it), in the same
environment as mmlearn.
"""

import argparse
import csv
import importlib
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

from mmlearn.exercises.grading import read_log  # noqa: E402
from mmlearn.files import atomic_write_bytes  # noqa: E402

CONFIG = """\
c = get_config()  # noqa: F821
c.CourseDirectory.root = {root!r}
c.Execute.timeout = {cell_timeout}
c.Execute.allow_errors = True
c.Execute.interrupt_on_timeout = True
c.Execute.raise_on_iopub_timeout = False
"""

# Run by every grading kernel before the notebook's first cell. nbgrader runs a
# notebook in its folder autograded/NAME/ASSIGNMENT, which names the log.
STARTUP = """\
def _mmlearn_start_grading():
    import os
    from pathlib import Path

    from mmlearn.exercises.grading import start_grading

    here = Path.cwd()
    logs = Path(os.environ["MMLEARN_GRADING_LOGS"])
    start_grading(logs / f"{here.parent.name}--{here.name}.jsonl", get_ipython())


_mmlearn_start_grading()
del _mmlearn_start_grading
"""


def learner_notebooks(submissions: Path, notebook_name: str,
                      single: bool) -> dict[str, Path | str]:
    """Each learner's notebook (or, when none can be chosen, why not), by name."""
    found: dict[str, Path | str] = {}
    for entry in sorted(submissions.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb" and single:
            found[entry.stem] = entry
        elif entry.is_dir() and not entry.name.startswith("."):
            candidates = sorted(p for p in entry.rglob("*.ipynb")
                                if ".ipynb_checkpoints" not in p.parts)
            named = [p for p in candidates if p.name == notebook_name]
            if len(named) == 1 or (single and len(candidates) == 1):
                found[entry.name] = (named or candidates)[0]
            else:
                found[entry.name] = (f"no {notebook_name} in {entry.name}/" if not named
                                     else f"several {notebook_name} in {entry.name}/")
    return found


def student_id(name: str, taken: set[str]) -> str:
    """A name nbgrader accepts as a student id (and as a folder), unique in ``taken``."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "learner"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet shows as text: a leading = + - @ (a formula) gets a quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def question_points(notebook: Path) -> dict[str, float]:
    """The points of each question, from the lesson's exercise module (``00_...`` -> lesson00)."""
    match = re.match(r"(\d\d)_", notebook.name)
    if not match:
        return {}
    try:
        module = importlib.import_module(f"mmlearn.exercises.lesson{match.group(1)}")
    except ImportError:
        return {}
    return {name: float(q.points) for name, q in vars(module).items()
            if type(q).__name__ == "Question" and re.fullmatch(r"q\d+", name)}


def jupyter_data_dirs() -> str:
    """JUPYTER_PATH for nbgrader: the data folders (nbconvert's templates) of every venv on
    sys.path, e.g. the learners' .venv under .venv-dev, which Jupyter does not look in."""
    folders = []
    for entry in sys.path:
        site = Path(entry)
        if site.name == "site-packages":
            data = site.parents[2] / "share" / "jupyter"
            if data.is_dir() and str(data) not in folders:
                folders.append(str(data))
    return os.pathsep.join(folders + [os.environ.get("JUPYTER_PATH", "")]).strip(os.pathsep)


def run(command: list, cwd: Path, env: dict, timeout: float | None) -> tuple[int, str]:
    """Run ``command``; on a timeout stop it and everything it started (the kernel too)."""
    kwargs: dict = {"start_new_session": True} if os.name == "posix" else {
        "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    process = subprocess.Popen([str(c) for c in command], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", **kwargs)
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


def notebook_notes(path: Path) -> tuple[list[str], int]:
    """What an autograded notebook records besides points (time-outs, kernel deaths, checks
    not attempted), and how many code cells it ran."""
    if not path.exists():
        return [], 0
    problems, unattempted, ran = set(), [], 0
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") == "code" and cell.get("execution_count"):
            ran += 1
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
    return notes, ran


def make_course(root: Path, notebooks: list[Path], cell_timeout: float) -> dict[str, dict]:
    """nbgrader's course folder: config, source/, the grading start-up; ``{assignment: points}``."""
    questions = {}
    for notebook in notebooks:
        points = question_points(notebook)
        source = add_nbgrader_metadata(json.loads(notebook.read_text(encoding="utf-8")),
                                       points or 1)
        graded = {c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"]["points"]
                  for c in source["cells"]
                  if c.get("metadata", {}).get("nbgrader", {}).get("grade")}
        if not graded:
            sys.exit(f"{notebook} has no check cells (a cell holding only `q1.check()`)")
        folder = root / "source" / notebook.stem
        folder.mkdir(parents=True, exist_ok=True)
        (folder / notebook.name).write_text(json.dumps(source), encoding="utf-8")
        questions[notebook.stem] = graded
    (root / "nbgrader_config.py").write_text(CONFIG.format(root=str(root),
                                                           cell_timeout=int(cell_timeout)))
    startup = root / "grading" / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-mmlearn-grading.py").write_text(STARTUP)
    (root / "grading" / "logs").mkdir(exist_ok=True)
    return questions


def grade(notebooks: list[Path], submissions: Path, out_csv: Path, cell_timeout: float = 120,
          timeout: float = 600, course: Path | None = None) -> list[dict]:
    """Grade every learner's notebooks; write and return the rows of the table."""
    try:
        from nbgrader.api import Gradebook, MissingEntry
    except ImportError:
        sys.exit('grade_class.py needs nbgrader: pip install -e ".[teacher]" (or nbgrader)')

    # nbgrader runs the `alembic` command: the one beside this Python (a venv not activated).
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                          os.environ.get("PATH", "")])
    root = Path(course or tempfile.mkdtemp(prefix="mmlearn-grading-")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    questions = make_course(root, notebooks, cell_timeout)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "JUPYTER_PATH": jupyter_data_dirs(),
           "IPYTHONDIR": str(root / "grading" / "ipython"),
           "MMLEARN_GRADING_LOGS": str(root / "grading" / "logs")}
    env.pop("MMLEARN_GRADING", None)
    nbgrader = [sys.executable, "-m", "nbgrader"]
    for assignment in questions:
        code, log = run([*nbgrader, "generate_assignment", assignment, "--force"], root, env, 300)
        if code != 0:
            sys.exit(f"nbgrader generate_assignment {assignment} failed:\n{log}")

    single = len(notebooks) == 1
    columns = [q if single else f"{a}:{q}" for a, graded in questions.items() for q in graded]
    rows: dict[str, dict] = {}
    taken: set[str] = set()
    ids: dict[str, str] = {}
    for notebook in notebooks:
        assignment = notebook.stem
        graded = questions[assignment]
        for name, path in learner_notebooks(submissions, notebook.name, single).items():
            row = rows.setdefault(name, {"learner": spreadsheet_safe(name),
                                         **dict.fromkeys(columns, 0), "total": 0,
                                         "solutions shown": [], "tampering": [], "note": []})
            prefix = "" if single else f"{assignment}: "
            if isinstance(path, str):
                row["note"].append(f"{prefix}not graded: {path}")
                continue
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError) as error:
                row["note"].append(f"{prefix}not graded: {path.name} is not a notebook "
                                   f"(not valid JSON: {error})")
                continue
            sid = ids.setdefault(name, student_id(name, taken))
            target = root / "submitted" / sid / assignment
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / notebook.name)
            start = time.monotonic()
            code, log = run([*nbgrader, "autograde", assignment, f"--student={sid}", "--force"],
                            root, env, timeout)
            seconds = time.monotonic() - start
            if code == -1:
                row["note"].append(f"{prefix}not graded: stopped after {timeout:g} s (--timeout)")
                continue
            notes, ran = notebook_notes(root / "autograded" / sid / assignment / notebook.name)
            found = read_log(root / "grading" / "logs" / f"{sid}--{assignment}.jsonl")
            tampered = list(found["tampered"])
            withheld = found["tampered_questions"] & set(graded)
            if found["cells"] < ran:
                tampered.append(f"the grading watchdog stopped after cell {found['cells']} "
                                f"of {ran}")
            if found["machinery"] or found["cells"] < ran:
                withheld = set(graded)  # what serves every question was changed
            scores = {}
            try:
                with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
                    result = gradebook.find_submission_notebook(notebook.stem, assignment, sid)
                    for grade_cell in result.grades:
                        if grade_cell.name in withheld:  # so nbgrader's export says it too
                            grade_cell.manual_score = 0
                    gradebook.db.commit()
                    scores = {g.name: g.score for g in result.grades if g.auto_score is not None}
            except MissingEntry:
                pass
            if code != 0 or not scores:
                row["note"].append(f"{prefix}not graded: nbgrader failed ({_errors(log)})")
                continue
            for question in graded:
                points = scores.get(question, 0)
                row[question if single else f"{assignment}:{question}"] = _number(points)
                row["total"] = _number(row["total"] + points)
            row["solutions shown"] += [f"{prefix}{q}" for q in found["solutions"]]
            row["tampering"] += [f"{prefix}{t}" for t in tampered]
            if withheld:
                notes.append("points withheld for tampering: " + " ".join(sorted(withheld)))
            row["note"] += [f"{prefix}{n}" for n in notes]
            earned = sum(scores.get(q, 0) for q in graded)
            print(f"{name} / {assignment}: {_number(earned)} of {_number(sum(graded.values()))} "
                  f"({seconds:.0f} s)"
                  f"{'; ' + '; '.join(notes) if notes else ''}")

    for assignment in questions:
        code, log = run([*nbgrader, "generate_feedback", assignment, "--force"], root, env, 600)
        if code != 0:
            print(f"nbgrader generate_feedback {assignment} failed: {_errors(log)}")
    code, log = run([*nbgrader, "export", "--to", root / "grades.csv"], root, env, 300)
    if code != 0:
        print(f"nbgrader export failed: {_errors(log)}")

    table = io.StringIO(newline="")
    fields = ["learner", *columns, "total", "solutions shown", "tampering", "note"]
    writer = csv.DictWriter(table, fieldnames=fields)
    writer.writeheader()
    for row in rows.values():
        writer.writerow({**row, **{k: spreadsheet_safe("; ".join(row[k]))
                                   for k in ("solutions shown", "tampering", "note")}})
    atomic_write_bytes(out_csv, table.getvalue().encode("utf-8"))  # all rows, or the old file
    if course is None:
        shutil.rmtree(root, ignore_errors=True)
    return list(rows.values())


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", type=Path, nargs="+", metavar="NOTEBOOK ... SUBMISSIONS OUT",
                        help="the teacher's notebooks (with solutions), the submissions folder "
                             "(NAME/ per learner) and the table to write")
    parser.add_argument("--cell-timeout", type=float, default=120,
                        help="seconds a cell may run (default 120)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds a learner's whole notebook may run (default 600)")
    parser.add_argument("--course", type=Path, metavar="DIR",
                        help="build nbgrader's course folder in DIR and keep it (release/, "
                             "autograded/, feedback/, gradebook.db, grades.csv)")
    args = parser.parse_args()
    if len(args.paths) < 3:
        parser.error("give at least one notebook, the submissions folder and the table")
    *notebooks, submissions, out_csv = args.paths
    for notebook in notebooks:
        if notebook.suffix != ".ipynb" or not notebook.is_file():
            parser.error(f"{notebook} is not a notebook file")
    if not submissions.is_dir():
        parser.error(f"{submissions} is not a folder")
    rows = grade(notebooks, submissions, out_csv, args.cell_timeout, args.timeout, args.course)
    print(f"wrote {out_csv}: {len(rows)} learners")


if __name__ == "__main__":
    main()
