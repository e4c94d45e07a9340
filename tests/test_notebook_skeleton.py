"""Every notebook follows the course skeleton, and the check catches a broken one."""

import copy
import json

import pytest
from notebook_skeleton import ROOT, check_file, notebook_paths, repository_url, skeleton_problems


def test_there_are_notebooks():
    assert notebook_paths(), "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_notebook_follows_the_skeleton(path):
    assert check_file(path) == []


@pytest.fixture
def good_notebook():
    path = ROOT / "notebooks" / "00_start_here.ipynb"
    return json.loads(path.read_text()), path.relative_to(ROOT).as_posix()


def test_the_reference_notebook_is_clean(good_notebook):
    notebook, relpath = good_notebook
    assert skeleton_problems(notebook, relpath, repository_url()) == []


def _drop_cells(notebook, needle):
    broken = copy.deepcopy(notebook)
    broken["cells"] = [c for c in broken["cells"] if needle not in "".join(c["source"])]
    return broken


@pytest.mark.parametrize("needle, complaint", [
    ("## Learning goals", "Learning goals"),
    ("## Exercises", "Exercises"),
    ("## Summary", "Summary"),
    ("## References", "References"),
    ("google.colab", "Colab"),
    ("seed_everything(", "seed_everything"),
])
def test_a_missing_part_is_reported(good_notebook, needle, complaint):
    notebook, relpath = good_notebook
    problems = skeleton_problems(_drop_cells(notebook, needle), relpath, repository_url())
    assert any(complaint in p for p in problems), problems


def test_badges_must_point_at_the_notebooks_own_path(good_notebook):
    notebook, _ = good_notebook
    problems = skeleton_problems(notebook, "notebooks/99_other.ipynb", repository_url())
    assert any("Colab badge" in p for p in problems)
    assert any("Binder badge" in p for p in problems)


def test_stored_errors_and_size_are_reported(good_notebook):
    notebook, relpath = good_notebook
    broken = copy.deepcopy(notebook)
    cell = next(c for c in broken["cells"] if c["cell_type"] == "code")
    cell["outputs"].append({"output_type": "error", "ename": "ValueError", "evalue": "",
                            "traceback": []})
    problems = skeleton_problems(broken, relpath, repository_url(), size=3_000_000)
    assert any("error output" in p for p in problems)
    assert any("2 MB" in p for p in problems)



def _with_output(notebook, output):
    planted = copy.deepcopy(notebook)
    cell = next(c for c in planted["cells"] if c["cell_type"] == "code")
    cell["outputs"].append(output)
    return planted


@pytest.mark.parametrize("output, complaint", [
    ({"output_type": "stream", "name": "stderr",
      "text": ["mmlearn/dalle.py:117: UserWarning: unknown word\n"]}, "stderr"),
    ({"output_type": "stream", "name": "stdout",
      "text": ["saved to /work/main/build/index.npz\n"]}, "machine path"),
    ({"output_type": "execute_result", "execution_count": 1, "metadata": {},
      "data": {"text/plain": ["PosixPath('/root/.cache/x.pt')"]}}, "machine path"),
    ({"output_type": "stream", "name": "stdout",
      "text": ["training:   0%|          | 0/600 [00:00<?, ?it/s]\n"]}, "unfinished progress"),
])
def test_outputs_a_reader_should_not_see_are_reported(good_notebook, output, complaint):
    notebook, relpath = good_notebook
    problems = skeleton_problems(_with_output(notebook, output), relpath, repository_url())
    assert any(complaint in p for p in problems), problems


def test_a_finished_bar_and_percentages_are_fine(good_notebook):
    notebook, relpath = good_notebook
    finished = {"output_type": "stream", "name": "stdout",
                "text": ["training: 100%|##########| 600/600 [00:53<00:00]\naccuracy 10%|\n"]}
    assert skeleton_problems(_with_output(notebook, finished), relpath, repository_url()) == []


def test_the_setup_cell_must_print_the_device(good_notebook):
    notebook, relpath = good_notebook
    planted = copy.deepcopy(notebook)
    setup = next(c for c in planted["cells"] if "seed_everything(" in "".join(c["source"]))
    for output in setup["outputs"]:
        if "text" in output:
            output["text"] = [line for line in output["text"] if "Device:" not in line]
    problems = skeleton_problems(planted, relpath, repository_url())
    assert any("device" in p for p in problems), problems


def test_nbval_markers_in_code_are_reported_and_tags_are_used(good_notebook):
    """nbval's markers live in cell tags: a '# NBVAL_...' comment is code a learner reads."""
    notebook, relpath = good_notebook
    tagged = [c for c in notebook["cells"]
              if "nbval-check-output" in c.get("metadata", {}).get("tags", [])]
    assert tagged, "the exercise checks of lesson 00 must be compared by nbval"
    broken = copy.deepcopy(notebook)
    cell = next(c for c in broken["cells"] if c["cell_type"] == "code"
                and "nbval-check-output" in c.get("metadata", {}).get("tags", []))
    cell["source"] = ["# NBVAL_CHECK_OUTPUT\n", *cell["source"]]
    problems = skeleton_problems(broken, relpath, repository_url())
    assert any("NBVAL" in p for p in problems), problems


@pytest.mark.parametrize("planted, reported", [
    (["\n", "\n", "## A section that needs its own cell\n"], True),
    (["\n", "```python\n", "# a comment, not a heading\n", "```\n"], False),
])
def test_a_heading_below_text_is_reported_but_not_a_comment_in_code(good_notebook, planted,
                                                                    reported):
    notebook, relpath = good_notebook
    changed = copy.deepcopy(notebook)
    cells = [c for c in changed["cells"] if c["cell_type"] == "markdown"]
    cells[1]["source"] = cells[1]["source"] + planted
    problems = skeleton_problems(changed, relpath, repository_url())
    assert any("heading below other text" in p for p in problems) == reported, problems
