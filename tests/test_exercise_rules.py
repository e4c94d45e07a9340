"""Rules every lesson's exercises keep, checked over all seven lessons at once.

- a build question (its answer cell defines the function) names the library functions
  that implement it, and an answer that only calls one of them fails, naming the call,
  also when the answer tries to switch grading off first;
- builds are worth more than predictions, and guessing a prediction scores under a third
  of its points in expectation;
- a prediction's reveal cell starts with ``qN.reveal()`` and comes after its check.
"""

import importlib
import inspect
import json
import os
import re

import pytest
from notebook_skeleton import notebook_paths

from mmlearn.exercises import grading
from mmlearn.exercises.core import NotCorrect


def _lesson(path):
    return importlib.import_module(f"mmlearn.exercises.lesson{path.name[:2]}")


def _cells(path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code"]


def _questions(path) -> dict:
    lesson = _lesson(path)
    return {name: q for name, q in vars(lesson).items()
            if type(q).__name__ == "Question" and re.fullmatch(r"q\d+", name)}


def _builds(path) -> list:
    """The questions whose answer cell defines a function named after the variable."""
    cells = "\n".join(_cells(path))
    return [q for q in _questions(path).values()
            if re.search(rf"^def {re.escape(q.variable)}\(", cells, re.MULTILINE)]


BUILDS = [(path, q) for path in notebook_paths() for q in _builds(path)]
PREDICTIONS = [(path, q) for path in notebook_paths() for q in _questions(path).values()
               if q.predict]


def _id(item) -> str:
    path, question = item
    return f"{path.name[:2]}-{question.name}"


@pytest.mark.parametrize("lesson", notebook_paths(), ids=lambda p: p.name[:2])
def test_every_lesson_has_a_build_question(lesson):
    assert _builds(lesson), f"{lesson.name}: no question asks the learner to write a function"


@pytest.mark.parametrize("item", BUILDS, ids=_id)
def test_a_build_names_what_it_forbids_and_is_worth_more(item):
    path, question = item
    assert question.forbidden, f"{_id(item)} forbids nothing: the library's version passes"
    predictions = [q.points for q in _questions(path).values() if q.predict]
    assert all(question.points > p for p in predictions)


@pytest.mark.slow
@pytest.mark.parametrize("item", BUILDS, ids=_id)
def test_an_answer_that_delegates_fails_and_names_the_call(item, not_grading):
    """Every forbidden function that takes the answer's arguments, called with them, fails
    the answer and is named. (One that takes other arguments, such as a helper the answer
    could use, is covered by the lesson's own tests, which call it the right way.)"""
    _, question = item
    tried = []
    for forbidden in question.forbidden:
        def delegate(*args, _f=forbidden, **kwargs):
            try:
                inspect.signature(_f).bind(*args, **kwargs)
            except TypeError:
                return None  # it takes other arguments
            except ValueError:
                pass  # a builtin without a signature: just call it
            tried.append(_f)
            return _f(*args, **kwargs)
        feedback = question.check(delegate)
        assert feedback.status == "incorrect", (_id(item), forbidden, feedback)
        if tried and tried[-1] is forbidden:
            assert "calls `" in feedback.message, (_id(item), forbidden, feedback)


@pytest.mark.parametrize("item", BUILDS, ids=_id)
def test_an_answer_that_switches_grading_off_still_fails(item, not_grading, tmp_path):
    _, question = item
    grading.start_grading(tmp_path / "log.jsonl")

    def switch_off_and_delegate(*args, **kwargs):
        os.environ["MMLEARN_GRADING"] = "0"
        grading._STATE["on"] = False  # a bolder learner; the check already knows better
        return question.forbidden[0](*args, **kwargs)
    try:
        with pytest.raises(NotCorrect):
            grading._STATE["on"] = True
            question.check(switch_off_and_delegate)
    finally:
        os.environ.pop("MMLEARN_GRADING", None)


@pytest.mark.parametrize("item", PREDICTIONS, ids=_id)
def test_guessing_a_prediction_scores_under_a_third(item):
    _, question = item
    choices = getattr(question.checker, "choices", None)
    if choices is not None:
        assert len(choices) >= 4, f"{_id(item)}: guessing scores 1/{len(choices)}"
    assert question.points <= 1


@pytest.mark.parametrize("item", PREDICTIONS, ids=_id)
def test_a_prediction_is_revealed_only_after_its_check(item):
    path, question = item
    cells = [c.strip() for c in _cells(path)]
    check = cells.index(f"{question.name}.check()")
    reveals = [i for i, c in enumerate(cells) if c.startswith(f"{question.name}.reveal()")]
    assert reveals, f"{_id(item)}: no cell starts with {question.name}.reveal()"
    assert all(i > check for i in reveals)
