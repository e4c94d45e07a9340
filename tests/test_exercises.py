"""The exercise framework: checkers accept right answers and reject plausible wrong ones."""

import importlib
import pkgutil

import pytest
import torch

import mmlearn.exercises as exercises
from mmlearn.exercises import lesson00
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


# Each lesson's questions: the solution passes, a plausible wrong answer does not.
LESSON00_RIGHT_AND_WRONG = {
    "q1": (lambda a, b: (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)),
           lambda a, b: (a * b).sum(-1)),  # forgot to normalise
    "q2": (torch.softmax(lesson00.SIMILARITIES / lesson00.TEMPERATURE, dim=0),
           torch.softmax(lesson00.SIMILARITIES, dim=0)),  # forgot the temperature
    "q3": (torch.softmax(lesson00.SIMILARITIES, dim=0).max().item(),
           torch.softmax(lesson00.SIMILARITIES / 0.07, dim=0).max().item()),
}


@pytest.mark.parametrize("name", sorted(LESSON00_RIGHT_AND_WRONG))
def test_lesson00_checkers(name):
    question = getattr(lesson00, name)
    right, wrong = LESSON00_RIGHT_AND_WRONG[name]
    assert question.check(right).correct, question.check(right)
    assert question.check(wrong).status == "incorrect"


def test_every_lesson_question_has_hint_and_solution():
    for info in pkgutil.iter_modules(exercises.__path__):
        if not info.name.startswith("lesson"):
            continue
        module = importlib.import_module(f"mmlearn.exercises.{info.name}")
        questions = [v for v in vars(module).values() if isinstance(v, Question)]
        assert questions, f"{info.name} defines no questions"
        for q in questions:
            assert q.hint_text and q.solution_text, f"{info.name}.{q.name}"


def _loss_by_hand(image_features, text_features, logit_scale):
    logits = logit_scale * image_features @ text_features.T
    targets = torch.arange(len(logits))
    return (torch.nn.functional.cross_entropy(logits, targets)
            + torch.nn.functional.cross_entropy(logits.T, targets)) / 2


def test_lesson01_checkers():
    import math

    from mmlearn.exercises import lesson01
    one_direction = lambda i, t, s: torch.nn.functional.cross_entropy(  # noqa: E731
        s * i @ t.T, torch.arange(len(i)))
    assert lesson01.q1.check(_loss_by_hand).correct
    assert lesson01.q1.check(one_direction).status == "incorrect"
    eye = torch.eye(lesson01.PERFECT_N)
    assert lesson01.q2.check(_loss_by_hand(eye, eye, lesson01.PERFECT_SCALE).item()).correct
    assert lesson01.q2.check(0.0).status == "incorrect"  # "a perfect model has zero loss"
    assert lesson01.q3.check(math.log(lesson01.CHANCE_BATCH)).correct
    assert lesson01.q3.check(1 / lesson01.CHANCE_BATCH).status == "incorrect"


def test_lesson02_checkers():
    import torch.nn.functional as F

    from mmlearn.exercises import lesson02
    assert lesson02.q1.check(lambda x, c: (x @ c).argmax(-1)).correct
    assert lesson02.q1.check(lambda x, c: (x @ c).argmin(-1)).status == "incorrect"
    right = lambda p: F.normalize(F.normalize(p, dim=-1).mean(1), dim=-1).T  # noqa: E731
    no_inner_norm = lambda p: F.normalize(p.mean(1), dim=-1).T  # noqa: E731
    assert lesson02.q2.check(right).correct
    assert lesson02.q2.check(no_inner_norm).status == "incorrect"
    c = lesson02.CONFUSION
    assert lesson02.q3.check((c.trace() / c.sum()).item()).correct
    assert lesson02.q3.check((c.trace() / c.numel()).item()).status == "incorrect"


def test_lesson03_checkers():
    from mmlearn.exercises import lesson03
    assert lesson03.q1.check(lambda q, v, k: torch.topk(v @ q, k).indices).correct
    assert lesson03.q1.check(lambda q, v, k: torch.topk(-(v @ q), k).indices).status == \
        "incorrect"
    right = lambda r, rel, k: sum(bool(set(i[:k]) & w) for i, w in zip(r, rel)) / len(r)  # noqa
    at_1 = lambda r, rel, k: sum(i[0] in w for i, w in zip(r, rel)) / len(r)  # noqa: E731
    assert lesson03.q2.check(right).correct
    assert lesson03.q2.check(at_1).status == "incorrect"
    assert lesson03.q3.check(1024.0).correct
    assert lesson03.q3.check(2048.0).status == "incorrect"  # float32 thinking
