"""Grading a class end to end with nbgrader: three learners, lesson 00 and lesson 01.

- right: the teacher's answers;
- wrong: a plausible wrong answer to every question;
- cheating: every build answer calls the library function it should replace, a cell
  sets ``MMLEARN_GRADING=0``, one solution is shown, and the last question's variable is
  rebound to an object whose ``check`` does nothing.

scripts/grade_class.py runs nbgrader's generate_assignment, autograde,
generate_feedback and export; its table must give the right learner every point, the
wrong one none, and the cheater only the points of questions it did not cheat on, with
the solution and the tampering in their columns.
"""

import csv
import importlib
import importlib.util
import json
import subprocess
import sys

import pytest
from notebook_skeleton import ROOT

pytest.importorskip("nbgrader", reason="grading needs nbgrader (pip install -e '.[teacher]')")

NOTEBOOKS = [ROOT / "notebooks" / "00_start_here.ipynb",
             ROOT / "notebooks" / "01_clip_contrastive_loss.ipynb"]
spec = importlib.util.spec_from_file_location("make_student_copies",
                                              ROOT / "scripts" / "make_student_copies.py")
students = importlib.util.module_from_spec(spec)
spec.loader.exec_module(students)

# Plausible wrong answers; for each question the first its checker calls incorrect is used.
WRONG = ["lambda *args, **kwargs: args[0]", '"a: because it seems likely"',
         '"b: because it seems likely"', '"c: because it seems likely"',
         '"d: because it seems likely"', "0.5", "1.0", "123.0"]


def _lesson(notebook):
    return importlib.import_module(f"mmlearn.exercises.lesson{notebook.name[:2]}")


def _wrong_answer(question) -> str:
    from mmlearn.exercises.core import Incorrect
    for source in WRONG:
        try:
            question.checker(eval(source))  # noqa: S307 (our own candidate strings)
        except Incorrect:
            return source
        except Exception:
            continue
    raise AssertionError(f"no wrong answer for {question.name}")


def _answer_cells(notebook: dict) -> list[tuple[dict, str]]:
    """(cell, question name) of every answer cell, in order."""
    return [(cell, cell["metadata"]["nbgrader"]["grade_id"].split("_")[0])
            for cell in notebook["cells"]
            if cell["metadata"].get("nbgrader", {}).get("solution")]


def _learners(notebook_path, folder) -> dict[str, dict[str, float]]:
    """Write the three learners' notebooks; return the points each should get, by question."""
    lesson = _lesson(notebook_path)
    teacher = json.loads(notebook_path.read_text())
    solved = students.student_notebook(teacher, notebook_path.name)
    for mine, theirs in zip(solved["cells"], teacher["cells"]):
        if mine["metadata"].get("nbgrader", {}).get("solution"):
            source = "".join(theirs["source"]).splitlines()
            mine["source"] = "\n".join(line for line in source if "SOLUTION" not in line)
    questions = {name: getattr(lesson, name) for name in
                 sorted({q for _, q in _answer_cells(solved)})}
    expected = {"right": {q: question.points for q, question in questions.items()},
                "wrong": dict.fromkeys(questions, 0), "cheating": {}}

    wrong = json.loads(json.dumps(solved))
    for cell, name in _answer_cells(wrong):
        question = questions[name]
        cell["source"] += f"\n{question.variable} = {_wrong_answer(question)}"

    cheating = json.loads(json.dumps(solved))
    cells = _answer_cells(cheating)
    last = cells[-1][1]
    cells[0][0]["source"] = ('import os\nos.environ["MMLEARN_GRADING"] = "0"\n'
                             f"{cells[0][1]}.solution()\n" + cells[0][0]["source"])
    for cell, name in cells:
        question = questions[name]
        if question.forbidden and name != last:
            cell["source"] += (f"\n{question.variable} = lambda *args, **kwargs: "
                               f"{name}.forbidden[0](*args, **kwargs)")
            expected["cheating"][name] = 0
        else:
            expected["cheating"][name] = question.points
    cells[-1][0]["source"] += f'\n{last} = type("Always", (), {{"check": lambda self: None}})()'
    expected["cheating"][last] = 0

    for learner, notebook in (("right", solved), ("wrong", wrong), ("cheating", cheating)):
        (folder / learner).mkdir(exist_ok=True)
        (folder / learner / notebook_path.name).write_text(json.dumps(notebook))
    return expected


@pytest.mark.slow
def test_nbgrader_grades_right_wrong_and_cheating_learners(tmp_path):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    expected = {nb.stem: _learners(nb, submissions) for nb in NOTEBOOKS}
    out, course = tmp_path / "grades.csv", tmp_path / "course"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "grade_class.py"),
                             *map(str, NOTEBOOKS), str(submissions), str(out),
                             "--course", str(course), "--cell-timeout", "300",
                             "--timeout", "1200"],
                            capture_output=True, text=True, timeout=3600,
                            env={**__import__("os").environ, "MMLEARN_OFFLINE": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    with out.open() as handle:
        rows = {row["learner"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"right", "wrong", "cheating"}
    for learner, row in rows.items():
        for assignment, points in expected.items():
            got = {q: float(row[f"{assignment}:{q}"]) for q in points[learner]}
            assert got == {q: float(p) for q, p in points[learner].items()}, (learner, row)
    assert rows["right"]["tampering"] == rows["wrong"]["tampering"] == ""
    assert rows["right"]["solutions shown"] == ""
    cheat = rows["cheating"]
    assert "00_start_here: q1" in cheat["solutions shown"]
    assert "no longer holds the question" in cheat["tampering"]
    assert "points withheld for tampering" in cheat["note"]
    # nbgrader's own products: the release, feedback for every learner, its export
    for assignment in expected:
        assert list((course / "release" / assignment).glob("*.ipynb"))
        for learner in rows:
            assert list((course / "feedback" / learner / assignment).glob("*.html"))
    assert (course / "grades.csv").read_text().count("\n") >= 1 + 3 * len(expected)


def test_learner_names_cannot_become_spreadsheet_formulas():
    grade_class = importlib.util.module_from_spec(
        spec := importlib.util.spec_from_file_location("grade_class",
                                                       ROOT / "scripts" / "grade_class.py"))
    spec.loader.exec_module(grade_class)
    for name in ("=HYPERLINK(1)", "+1", "-2", "@SUM(A1)"):
        assert grade_class.spreadsheet_safe(name).startswith("'")
    assert grade_class.spreadsheet_safe("ada") == "ada"
