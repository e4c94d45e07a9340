"""Student copies: solutions become placeholders, running stops at the first exercise, nbgrader
metadata marks answers and checks, and no badge opens the teacher's copy."""

import importlib.util
import json
import re

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from notebook_skeleton import ROOT, notebook_paths

spec = importlib.util.spec_from_file_location("make_student_copies",
                                              ROOT / "scripts" / "make_student_copies.py")
students = importlib.util.module_from_spec(spec)
spec.loader.exec_module(students)


def test_a_solution_block_becomes_an_indented_placeholder():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\nprint(1)"
    stripped = students.strip_solutions(source)
    assert "return 2 * x" not in stripped
    assert "    raise NotImplementedError" in stripped
    assert stripped.endswith("print(1)")


@pytest.mark.parametrize("source", ["### BEGIN SOLUTION\nx = 1",
                                    "x = 1\n### END SOLUTION",
                                    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_unbalanced_markers_are_an_error(source):
    with pytest.raises(ValueError):
        students.strip_solutions(source)


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_student_copy_hides_every_solution_and_still_parses(path):
    notebook = json.loads(path.read_text())
    teacher_code = "".join("".join(c["source"]) for c in notebook["cells"])
    assert "### BEGIN SOLUTION" in teacher_code, f"{path.name} has no exercise solution"
    copy = students.student_notebook(notebook)
    for cell in copy["cells"]:
        if cell["cell_type"] == "code":
            assert "SOLUTION" not in cell["source"] and not cell["outputs"]
            python = TransformerManager().transform_cell(cell["source"])
            compile(python, path.name, "exec")


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_student_copy_marks_answers_and_checks_for_nbgrader(path):
    copy = students.student_notebook(json.loads(path.read_text()), path.name)
    marks = [c["metadata"]["nbgrader"] for c in copy["cells"] if "nbgrader" in c["metadata"]]
    checks = [m for m in marks if m["grade"]]
    answers = [m for m in marks if m["solution"]]
    assert checks and answers
    assert all(m["locked"] and m["points"] == 1 and re.fullmatch(r"q\d+", m["grade_id"])
               for m in checks)
    assert all(not m["locked"] and m["grade_id"].endswith("_answer") for m in answers)
    ids = [m["grade_id"] for m in marks]
    assert len(ids) == len(set(ids))
    for cell in copy["cells"]:
        source = cell["source"]
        if cell["cell_type"] == "code" and students.checked_question(source):
            assert cell["metadata"]["nbgrader"]["grade"], source


def _links(notebook):
    text = "".join("".join(c["source"]) for c in notebook["cells"]
                   if c["cell_type"] == "markdown")
    return re.findall(r"https?://[^)\s]+", text)


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_student_copy_badges_never_open_the_teachers_copy(path):
    teacher = json.loads(path.read_text())
    teacher_links = [u for u in _links(teacher) if "/v2/gh/" in u or "/github/" in u]
    assert teacher_links, f"{path.name} has no badges to test"
    plain = students.student_notebook(teacher, path.name)
    assert not [u for u in _links(plain) if "mybinder.org/v2" in u or "colab.research" in u
                and "/github/" in u]
    elsewhere = students.student_notebook(teacher, path.name, repo="school/ml-class",
                                          branch="spring", directory="lessons")
    badges = [u for u in _links(elsewhere) if "/v2/gh/" in u or "/github/" in u]
    assert len(badges) == len(teacher_links)
    assert all("school/ml-class" in u and "spring" in u and "lessons" in u for u in badges)
    assert not set(badges) & set(teacher_links)


def test_the_command_line_writes_copies_with_badges_for_another_repository(tmp_path):
    import subprocess
    import sys

    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_student_copies.py"),
                    str(ROOT / "notebooks"), str(tmp_path), "--repo", "school/ml-class",
                    "--branch", "spring"], check=True, capture_output=True)
    copy = json.loads((tmp_path / "00_start_here.ipynb").read_text())
    assert any("colab.research.google.com/github/school/ml-class/blob/spring/notebooks/"
               "00_start_here.ipynb" in u for u in _links(copy))
    code = "".join("".join(c["source"]) for c in copy["cells"] if c["cell_type"] == "code")
    assert "github.com/school/ml-class" in code and students.TEACHER_REPO not in code


def test_copies_made_without_a_repository_say_whose_repository_colab_clones(tmp_path, capsys):
    """Without --repo the Colab cell still clones the teacher's repository, solutions and
    all: the command says so, and how to change it."""
    one = tmp_path / "in"
    one.mkdir()
    (one / "00_start_here.ipynb").write_text((ROOT / "notebooks" / "00_start_here.ipynb")
                                              .read_text())
    students.main(str(one), str(tmp_path / "out"))
    said = capsys.readouterr().out
    assert students.TEACHER_REPO in said and "--repo OWNER/NAME" in said
    students.main(str(one), str(tmp_path / "out"), repo="school/ml-class")
    assert students.TEACHER_REPO not in capsys.readouterr().out


@pytest.mark.slow
def test_student_copy_of_00_runs_until_the_first_exercise(tmp_path, monkeypatch):
    monkeypatch.setenv("MMLEARN_OFFLINE", "1")
    notebook = json.loads((ROOT / "notebooks" / "00_start_here.ipynb").read_text())
    copy = nbformat.from_dict(students.student_notebook(notebook))
    client = NotebookClient(copy, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as failure:
        client.execute()
    assert failure.value.ename == "NotImplementedError"
    failed = [c for c in copy.cells
              if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(failed) == 1 and "raise NotImplementedError" in failed[0].source


@pytest.mark.parametrize("source", ["## BEGIN SOLUTION\nx = 1\n### END SOLUTION",
                                    "### begin solution\nx = 1\n### END SOLUTION",
                                    "###BEGIN SOLUTION\nx = 1\n###END SOLUTION",
                                    "    #### END  SOLUTION"])
def test_a_marker_the_stripper_does_not_know_is_an_error(source):
    with pytest.raises(ValueError, match="looks like a solution marker"):
        students.strip_solutions(source)


@pytest.mark.parametrize("cell", [
    {"cell_type": "code", "source": "print(q1.check())", "metadata": {}},
    {"cell_type": "code", "source": "q1.check()\nq2.check()", "metadata": {}},
    {"cell_type": "markdown", "source": "### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
     "metadata": {}}])
def test_a_check_or_marker_the_grader_cannot_place_is_an_error(cell):
    with pytest.raises(ValueError, match="cell 0"):
        students.add_nbgrader_metadata({"cells": [cell]})


def test_points_can_differ_per_question():
    cells = [{"cell_type": "code", "source": f"q{n}.check()", "metadata": {}} for n in (1, 2)]
    notebook = students.add_nbgrader_metadata({"cells": cells}, {"q1": 3, "q2": 1})
    assert [c["metadata"]["nbgrader"]["points"] for c in notebook["cells"]] == [3, 1]
