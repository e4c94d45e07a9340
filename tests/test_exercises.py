"""The exercise framework: checkers accept right answers and reject plausible wrong ones."""

import dataclasses
import importlib
import math
import pkgutil
import re

import pytest
import torch

import mmlearn.exercises as exercises
from mmlearn.exercises.core import Incorrect, Question, compare, function_checker, value_checker


def test_value_checker_accepts_within_tolerance_and_rejects_outside():
    q = Question("q", "x", value_checker(0.5, rtol=1e-3), "hint", "solution")
    assert q.check(0.50001).correct
    feedback = q.check(0.6)
    assert feedback.status == "incorrect" and "too large" in feedback.message
    assert q.check(0.4).status == "incorrect"


def test_incorrect_message_does_not_reveal_the_expected_value():
    q = Question("q", "x", value_checker(0.123456), "hint", "solution")
    assert "0.123456" not in q.check(0.9).message


def test_placeholders_and_missing_answers_are_not_attempted():
    q = Question("q", "surely_not_defined_anywhere", value_checker(1.0), "h", "s")
    assert q.check().status == "not attempted"
    assert q.check(...).status == "not attempted"
    assert q.check(None).status == "not attempted"


def test_arrays_are_checked_by_shape_then_values():
    q = Question("q", "x", value_checker(torch.zeros(2, 3)), "h", "s")
    assert q.check(torch.zeros(2, 3)).correct
    assert "shape" in q.check(torch.zeros(3, 2)).message
    assert "values are off" in q.check(torch.ones(2, 3)).message


def test_boolean_arrays_are_compared_too():
    want = torch.ones(3, 3, dtype=torch.bool).tril()
    assert value_checker(want)(want) is None
    with pytest.raises(Incorrect, match="6 of 9 values are off"):
        value_checker(want)(torch.ones(3, 3, dtype=torch.bool).triu())


def test_function_checker_runs_cases_and_reports_the_failing_one():
    check = function_checker(lambda a: a * 2, [(1,), (2.5,)])
    q = Question("q", "double", check, "h", "s")
    assert q.check(lambda a: a + a).correct
    feedback = q.check(lambda a: a + 1)  # right on case 1, wrong on case 2
    assert feedback.status == "incorrect" and "test case 2" in feedback.message


def test_function_checker_treats_not_implemented_as_not_attempted():
    def placeholder(a):
        raise NotImplementedError
    q = Question("q", "f", function_checker(lambda a: a, [(1,)]), "h", "s")
    assert q.check(placeholder).status == "not attempted"


def test_function_checker_reports_learner_exceptions_as_feedback():
    q = Question("q", "f", function_checker(lambda a: a, [(1,)]), "h", "s")
    feedback = q.check(lambda a: 1 / 0)
    assert feedback.status == "incorrect" and "ZeroDivisionError" in feedback.message


def test_feedback_renders_as_markdown_and_text():
    feedback = Question("q", "x", value_checker(1), "h", "s").check(1)
    assert feedback._repr_markdown_().startswith("**")
    assert repr(feedback).startswith("✅")


def test_compare_rejects_a_number_given_for_an_array():
    with pytest.raises(Incorrect):
        compare(1.0, torch.zeros(2))


# Each lesson's solution (the first ```python block of its solution text) passes its own
# check. Lessons 03-05 have their own tests (test_exercises_lessons_03_05.py).
SOLVED_HERE = ["lesson00", "lesson01", "lesson02"]


def _questions(lessons):
    for name in lessons:
        module = importlib.import_module(f"mmlearn.exercises.{name}")
        for value in vars(module).values():
            if isinstance(value, Question):
                yield pytest.param(module, value, id=f"{name}.{value.name}")


@pytest.mark.parametrize("module, question", list(_questions(SOLVED_HERE)))
def test_the_solution_shown_passes_its_check(module, question):
    blocks = re.findall(r"```python\n(.*?)```", question.solution_text, re.S)
    assert blocks, f"{question.name}: the solution text shows no code"
    from mmlearn import losses
    namespace = {**vars(module), "torch": torch, "F": torch.nn.functional, "math": math,
                 "loss_fn": losses.clip_loss}  # lesson 01's training step uses the loss
    exec(blocks[0], namespace)  # noqa: S102 - the course's own solution text
    question = dataclasses.replace(question)  # a prediction records its answer: a fresh copy
    answer = namespace.get(question.variable)
    feedback = question.check(answer)
    if question.predict:
        assert feedback.status == "recorded", feedback
        question.reveal()
        feedback = question.check(answer)
    assert feedback.correct, feedback


def _lesson_question(lesson, variable):
    module = importlib.import_module(f"mmlearn.exercises.{lesson}")
    for value in vars(module).values():
        if isinstance(value, Question) and value.variable == variable:
            return value
    pytest.skip(f"{lesson} has no question on `{variable}` any more")


def test_plausible_wrong_answers_are_rejected():
    cosine = _lesson_question("lesson00", "cosine_similarity")
    assert cosine.check(lambda a, b: (a * b).sum(-1)).status == "incorrect"  # not normalised
    assert cosine.check(lambda a, b: (a * b).sum() / (a.norm() * b.norm())).status == \
        "incorrect"  # sums over the whole batch


def test_every_lesson_question_has_hint_and_solution():
    for info in pkgutil.iter_modules(exercises.__path__):
        if not info.name.startswith("lesson"):
            continue
        module = importlib.import_module(f"mmlearn.exercises.{info.name}")
        questions = [v for v in vars(module).values() if isinstance(v, Question)]
        assert questions, f"{info.name} defines no questions"
        for q in questions:
            assert q.hint_text and q.solution_text, f"{info.name}.{q.name}"
