"""Grading a class end to end: nbgrader autogrades two learners' copies of lesson 00.

One learner solved everything; the other got two questions wrong and left one unsolved.
scripts/grade_class.py must give each a row with a point per check they passed.
"""

import csv
import importlib.util
import json
import subprocess
import sys

import pytest
import torch
from notebook_skeleton import ROOT

pytest.importorskip("nbgrader", reason="grading needs nbgrader (pip install -e '.[teacher]')")

NOTEBOOK = ROOT / "notebooks" / "00_start_here.ipynb"
spec = importlib.util.spec_from_file_location("make_student_copies",
                                              ROOT / "scripts" / "make_student_copies.py")
students = importlib.util.module_from_spec(spec)
spec.loader.exec_module(students)

# Plausible wrong answers; for each question the first one its check calls incorrect is used.
WRONG = ["lambda a, b: (a * b).sum(-1)", '"a"', '"b"', '"c"', "0.5", "1.0", "[0.5, 0.5]"]


def _wrong_answer(question) -> str:
    for source in WRONG:
        if question.check(eval(source, {"torch": torch})).status == "incorrect":  # noqa: S307
            return source
    raise AssertionError(f"no wrong answer for {question.name}")


def _submissions(folder):
    """alice: the teacher's answers; bob: q1 and q2 wrong, q3 left unsolved."""
    from mmlearn.exercises import lesson00

    teacher = json.loads(NOTEBOOK.read_text())
    blank = students.student_notebook(teacher, NOTEBOOK.name)
    solved = json.loads(json.dumps(blank))
    answers = []
    for mine, theirs in zip(solved["cells"], teacher["cells"]):
        if mine["metadata"].get("nbgrader", {}).get("solution"):
            source = "".join(theirs["source"]).splitlines()
            mine["source"] = "\n".join(line for line in source if "SOLUTION" not in line)
            answers.append(mine)
    (folder / "alice.ipynb").write_text(json.dumps(solved))
    for cell in answers[:2]:
        question = getattr(lesson00, cell["metadata"]["nbgrader"]["grade_id"].split("_")[0])
        cell["source"] += f"\n{question.variable} = {_wrong_answer(question)}"
    unsolved = answers[2]["metadata"]["nbgrader"]["grade_id"]
    answers[2]["source"] = next(c["source"] for c in blank["cells"]
                                if c["metadata"].get("nbgrader", {}).get("grade_id") == unsolved)
    (folder / "bob").mkdir()
    (folder / "bob" / NOTEBOOK.name).write_text(json.dumps(solved))
    return [a["metadata"]["nbgrader"]["grade_id"].split("_")[0] for a in answers]


@pytest.mark.slow
def test_grade_class_gives_each_learner_a_row_of_points(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLEARN_OFFLINE", "1")
    (tmp_path / "submissions").mkdir()
    questions = _submissions(tmp_path / "submissions")
    assert len(questions) >= 3
    out = tmp_path / "grades.csv"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "grade_class.py"),
                             str(NOTEBOOK), str(tmp_path / "submissions"), str(out),
                             "--cell-timeout", "300", "--timeout", "900"],
                            capture_output=True, text=True, timeout=2400)
    assert result.returncode == 0, result.stdout + result.stderr
    with out.open() as handle:
        rows = {row["learner"]: row for row in csv.DictReader(handle)}
    assert list(next(iter(rows.values()))) == ["learner", *questions, "total", "note"]
    assert set(rows) == {"alice", "bob"}
    alice, bob = rows["alice"], rows["bob"]
    assert [alice[q] for q in questions] == ["1"] * len(questions), alice
    assert alice["total"] == str(len(questions)) and alice["note"] == ""
    assert [bob[q] for q in questions[:3]] == ["0", "0", "0"], bob
    assert [bob[q] for q in questions[3:]] == ["1"] * (len(questions) - 3), bob
    assert bob["total"] == str(len(questions) - 3)
    assert bob["note"] == f"not attempted: {questions[2]}"
