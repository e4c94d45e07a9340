"""How long grading a class takes: scripts/grade_class.py on N learners, every lesson.

Every learner hands in the teacher's answers (the slowest case: every check runs to
the end). The script writes the submissions, runs grade_class.py once over all the
lessons given, and reports the wall time, the seconds per learner and lesson (from
grade_class.py's own lines), and the load average before and after, so that a run on
a busy machine shows itself.

Run from the repository root, with .venv-dev (nbgrader), on an otherwise idle machine:
    .venv-dev/bin/python benchmarks/bench_grading.py --learners 30            # all lessons
    .venv-dev/bin/python benchmarks/bench_grading.py --learners 3 notebooks/00_start_here.ipynb
Results go to benchmarks/results/grading.json (one entry per run, appended).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from make_student_copies import student_notebook  # noqa: E402

from mmlearn.files import atomic_write_bytes  # noqa: E402


def solved_copy(teacher: dict, name: str) -> dict:
    """A student copy with the teacher's answers written back in (marker lines left out)."""
    copy = student_notebook(teacher, name)
    for mine, theirs in zip(copy["cells"], teacher["cells"]):
        if mine["metadata"].get("nbgrader", {}).get("solution"):
            lines = "".join(theirs["source"]).splitlines()
            mine["source"] = "\n".join(line for line in lines if "SOLUTION" not in line)
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="the lessons to grade (default: every notebook in notebooks/)")
    parser.add_argument("--learners", type=int, default=30)
    args = parser.parse_args()
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="mmlearn-bench-grading-") as folder:
        submissions = Path(folder) / "submissions"
        for notebook in notebooks:
            copy = json.dumps(solved_copy(json.loads(notebook.read_text()), notebook.name))
            for n in range(args.learners):
                (submissions / f"learner{n:02d}").mkdir(parents=True, exist_ok=True)
                (submissions / f"learner{n:02d}" / notebook.name).write_text(copy)
        load_before = os.getloadavg()
        start = time.monotonic()
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "grade_class.py"),
                                 *map(str, notebooks), str(submissions),
                                 str(Path(folder) / "grades.csv"), "--timeout", "1800"],
                                capture_output=True, text=True,
                                env={**os.environ, "MMLEARN_OFFLINE": "1"})
        seconds = time.monotonic() - start
        load_after = os.getloadavg()
    if result.returncode != 0:
        sys.exit(result.stdout + result.stderr)
    per_lesson: dict[str, list[float]] = {}
    for match in re.finditer(r"^\S+ / (\S+): .*?\((\d+) s\)", result.stdout, re.MULTILINE):
        per_lesson.setdefault(match.group(1), []).append(float(match.group(2)))
    entry = {
        "when": time.strftime("%Y-%m-%d %H:%M"), "learners": args.learners,
        "lessons": [n.stem for n in notebooks], "wall_seconds": round(seconds, 1),
        "seconds_per_learner_and_lesson": {k: round(sum(v) / len(v), 1)
                                           for k, v in per_lesson.items()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "machine": f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
    }
    print(json.dumps(entry, indent=1))
    out = ROOT / "benchmarks" / "results" / "grading.json"
    runs = json.loads(out.read_text()) if out.exists() else []
    atomic_write_bytes(out, (json.dumps(runs + [entry], indent=1) + "\n").encode())


if __name__ == "__main__":
    main()
