"""Checkers that cannot be fooled: in-place tricks, endless loops and odd answers.

Whatever a learner hands in, ``check()`` gives a verdict (never a traceback), within a
time limit, and writes nothing to stderr (nbgrader counts stderr as a failure).
"""

import importlib
import pkgutil
import sys
import time
import warnings

import numpy as np
import pytest
import torch

import mmlearn.exercises as exercises
from mmlearn.exercises import core, lesson00
from mmlearn.exercises.core import (
    Incorrect,
    NotCorrect,
    Question,
    behaviour_checker,
    choice_checker,
    function_checker,
    value_checker,
)


def unit_vectors(*shape: int, seed: int) -> torch.Tensor:
    """Seeded random vectors of length 1 along the last dimension: test inputs for checkers."""
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(*shape, generator=generator), dim=-1)


def _question(lesson: str, variable: str) -> Question:
    """A lesson's question found by the variable the learner assigns (numbers move)."""
    module = importlib.import_module(f"mmlearn.exercises.{lesson}")
    for value in vars(module).values():
        if isinstance(value, Question) and value.variable == variable:
            return value
    pytest.skip(f"{lesson} has no question on `{variable}` any more")


# -- inputs changed in place ---------------------------------------------------------

def _predict(image_features, classifier):
    return (image_features @ classifier).argmax(dim=-1)


# Lesson 02's former Q1, kept here: a zero-shot prediction from features and a classifier.
PREDICT = Question("q1", "predict", function_checker(_predict, [
    (unit_vectors(5, 16, seed=0), unit_vectors(16, 3, seed=1)),
    (unit_vectors(40, 32, seed=2), unit_vectors(32, 10, seed=3)),
]), "h", "s")


def test_a_predict_that_zeroes_its_input_is_rejected_and_spoils_nothing():
    def cheat(features, classifier):
        features.zero_()
        return torch.zeros(len(features), dtype=torch.long)

    for _ in range(3):  # still rejected on later tries: the test inputs are intact
        assert PREDICT.check(cheat).status == "incorrect"
    assert PREDICT.check(lambda x, c: (x @ c).argmin(dim=-1)).status == "incorrect"
    assert PREDICT.check(_predict).correct


def test_a_top_k_that_overwrites_the_logits_does_not_pass():
    top_k = _question("lesson05", "top_k_filter")

    def cheat(logits, k):
        logits.fill_(0)
        return logits

    for _ in range(3):
        assert top_k.check(cheat).status == "incorrect"
    assert top_k.check(lambda logits, k: torch.zeros_like(logits)).status == "incorrect"
    right = lambda logits, k: logits.masked_fill(  # noqa: E731
        logits < logits.topk(k, dim=-1).values[..., -1:], float("-inf"))
    assert top_k.check(right).correct


def test_the_reference_runs_first_on_its_own_copy():
    seen = []

    def reference(values):
        seen.append(values.clone())
        return values.sum()

    def cheat(values):  # makes the input agree with whatever it returns
        values.fill_(1.0)
        return values.sum()

    case = torch.arange(4.0)
    check = function_checker(reference, [(case,)])
    with pytest.raises(Incorrect):
        check(cheat)
    assert torch.equal(seen[0], torch.arange(4.0)) and torch.equal(case, torch.arange(4.0))


# -- time limits ----------------------------------------------------------------------

@pytest.mark.slow
def test_a_function_that_never_returns_gets_took_too_long_within_the_bound():
    start = time.monotonic()
    feedback = lesson00.q1.check(lambda *args: time.sleep(10**6))
    elapsed = time.monotonic() - start
    assert feedback.status == "incorrect" and "took too long" in feedback.message
    assert elapsed < core.TIME_LIMIT + 3, elapsed


def test_the_time_limit_can_be_raised_for_slow_exercises():
    def slow_double(x):
        time.sleep(0.5)
        return 2 * x

    tight = Question("q", "f", function_checker(lambda x: 2 * x, [(1,)], time_limit=0.1), "h", "s")
    loose = Question("q", "f", function_checker(lambda x: 2 * x, [(1,)], time_limit=5), "h", "s")
    assert "took too long" in tight.check(slow_double).message
    assert loose.check(slow_double).correct


def test_a_whole_check_is_bounded_by_the_question_time_limit():
    def checker_that_runs_the_function(fn):
        fn()  # a hand-written checker with no limit of its own

    q = Question("q", "f", checker_that_runs_the_function, "h", "s", time_limit=0.3)
    start = time.monotonic()
    feedback = q.check(lambda: time.sleep(10**6))
    assert "took too long" in feedback.message and time.monotonic() - start < 3


# -- odd answers: a verdict, never a traceback ---------------------------------------

# Questions of the test's own, so that messages can be asserted while lessons change.
NUMBER = Question("q", "x", value_checker(0.5), "h", "s")
VECTOR = Question("q", "x", value_checker(torch.tensor([0.5, 0.25, 0.25])), "h", "s")


def _temperature_question():
    """Lesson 00's "find the temperature" question, whatever its number is now."""
    return next(q for q in vars(lesson00).values()
                if isinstance(q, Question) and q.variable == "temperature_for_90")


def test_a_ragged_list_gets_a_verdict():
    assert _temperature_question().check([[1.0, 2.0], [3.0]]).status == "incorrect"
    feedback = VECTOR.check([[1.0, 2.0], [3.0]])
    assert feedback.status == "incorrect" and "ragged" in feedback.message


def test_a_function_that_raises_gets_a_verdict():
    def boom(a, b):
        raise RuntimeError("boom")

    feedback = lesson00.q1.check(boom)
    assert feedback.status == "incorrect"
    assert "your function raised RuntimeError: boom" in feedback.message


def test_a_hand_written_checker_also_turns_the_learners_exception_into_a_verdict():
    def checker(fn):
        fn(1)  # forgets to catch anything

    def boom(x):
        raise RuntimeError("boom")

    feedback = Question("q", "f", checker, "h", "s").check(boom)
    assert feedback.status == "incorrect"
    assert "your function raised RuntimeError: boom" in feedback.message


def test_the_wrong_number_of_arguments_says_how_many():
    feedback = lesson00.q1.check(lambda a: a)
    assert feedback.status == "incorrect"
    assert "should take 2 arguments" in feedback.message and "yours takes 1" in feedback.message


def test_an_object_array_gets_a_verdict():
    feedback = VECTOR.check(np.array([0.5, "a", None], dtype=object))
    assert feedback.status == "incorrect" and "not numbers" in feedback.message
    feedback = VECTOR.check([torch.tensor(0.5), torch.tensor([0.25, 0.25])])
    assert feedback.status == "incorrect"


def test_nan_is_not_a_number_not_too_small():
    for answer in (float("nan"), np.float32("nan"), torch.tensor(float("nan"))):
        feedback = NUMBER.check(answer)
        assert "not a number" in feedback.message and "too small" not in feedback.message
        feedback = _temperature_question().check(answer)
        assert feedback.status == "incorrect" and "too small" not in feedback.message
    feedback = VECTOR.check(torch.full((3,), float("nan")))
    assert feedback.status == "incorrect" and "not a number" in feedback.message


def test_none_and_placeholders_are_not_attempted():
    for question in (NUMBER, VECTOR, lesson00.q1, lesson00.q2, _temperature_question()):
        assert question.check(None).status == "not attempted"
        assert question.check(...).status == "not attempted"


def test_strings_get_a_verdict():
    feedback = NUMBER.check("0.5")
    assert feedback.status == "incorrect" and "string" in feedback.message
    assert VECTOR.check("0.5, 0.25, 0.25").status == "incorrect"
    assert lesson00.q1.check("def f(a, b): ...").status == "incorrect"
    assert _temperature_question().check("0.02").status == "incorrect"


def test_a_function_returning_none_is_told_to_return():
    feedback = lesson00.q1.check(lambda a, b: None)
    assert feedback.status == "incorrect" and "returned None" in feedback.message


def test_lists_and_tuples_are_compared_item_by_item():
    pairs = function_checker(lambda s: [(w, float(len(w))) for w in s.split()], [("a bc",)])
    q = Question("q", "f", pairs, "h", "s")
    assert q.check(lambda s: [[w, len(w)] for w in s.split()]).correct
    assert q.check(lambda s: tuple((w, len(w)) for w in s.split())).correct
    wrong = q.check(lambda s: [(w, 1.0) for w in s.split()])
    assert wrong.status == "incorrect" and "item 2" in wrong.message
    assert "holds 1" in q.check(lambda s: [(s, 1.0)]).message
    assert VECTOR.check([0.5, 0.25, 0.25]).correct and VECTOR.check((0.5, 0.25, 0.25)).correct


def test_a_check_writes_nothing_to_stderr(capfd):
    def noisy(a, b):
        warnings.warn("a warning the learner's code triggers", UserWarning, stacklevel=1)
        print("to stderr", file=sys.stderr)
        np.log(np.array([-1.0]))  # a numpy RuntimeWarning
        return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))

    assert lesson00.q1.check(noisy).correct
    VECTOR.check(torch.tensor([float("nan"), float("inf"), 1.0]))
    VECTOR.check([[1.0, 2.0], [3.0]])
    lesson00.q1.check(lambda a: a)
    assert capfd.readouterr().err == ""


ODD_ANSWERS = {
    "None": None,
    "string": "not a letter",
    "ragged list": [[1.0, 2.0], [3.0]],
    "object array": np.array([1, "a", None], dtype=object),
    "nan": float("nan"),
    "nan tensor": torch.full((3,), float("nan")),
    "dict": {"a": 1},
    "no-argument function": lambda: 1,
    "function returning None": lambda *args: None,
    "function returning a string": lambda *args: "yes",
    "function that raises": lambda *args: 1 / 0,
}
# Some checkers train or build an index for each answer: a few seconds to half a minute.
SLOW_LESSONS = {"lesson01", "lesson03", "lesson04"}


def _lesson_questions():
    for info in pkgutil.iter_modules(exercises.__path__):
        if info.name.startswith("lesson"):
            module = importlib.import_module(f"mmlearn.exercises.{info.name}")
            marks = [pytest.mark.slow] if info.name in SLOW_LESSONS else []
            for value in vars(module).values():
                if isinstance(value, Question):
                    yield pytest.param(value, id=f"{info.name}.{value.name}", marks=marks)


@pytest.mark.parametrize("question", list(_lesson_questions()))
def test_every_question_gives_every_odd_answer_a_verdict(question, capfd):
    for label, answer in ODD_ANSWERS.items():
        feedback = question.check(answer)
        assert feedback.status in ("incorrect", "not attempted"), (label, feedback)
        assert "Traceback" not in feedback.message
    assert capfd.readouterr().err == ""


# -- the helpers for lesson authors ----------------------------------------------------

def test_choice_checker_accepts_the_letter_however_written():
    q = Question("q", "guess", choice_checker("b", "abc", why_not={"a": "the colour is not "
                                                                     "what CLIP weighs most."}),
                 "h", "s")
    for answer in ("b", "B", " b ", "(b)"):
        assert q.check(answer).correct, answer
    assert "the colour is not" in q.check("a").message
    assert "run the cell below" in q.check("c").message
    assert "not one of the choices" in q.check("e").message
    assert "one letter" in q.check(2).message
    assert q.check(None).status == "not attempted"
    with pytest.raises(ValueError):
        choice_checker("z", "abc")


@pytest.mark.slow
def test_behaviour_checker_runs_the_function_through_a_callback():
    def doubles_in_place(run):
        x = torch.ones(3)
        out = run(x)
        if out is not None:
            raise Incorrect("change x in place and return nothing.")
        if not torch.equal(x, torch.full((3,), 2.0)):
            raise Incorrect("x should hold twice its values afterwards.")

    q = Question("q", "double_", behaviour_checker(doubles_in_place, time_limit=1), "h", "s")
    def double_(x):
        x.mul_(2)

    assert q.check(double_).correct
    assert "twice" in q.check(lambda x: None).message
    assert "RuntimeError: boom" in q.check(lambda x: (_ for _ in ()).throw(RuntimeError("boom")))\
        .message
    assert "took too long" in q.check(lambda x: time.sleep(10**6)).message

    def placeholder(x):
        raise NotImplementedError

    assert q.check(placeholder).status == "not attempted"
    assert "should take 1 argument" in q.check(lambda x, y: None).message


def test_value_checker_still_compares_plain_values():
    q = Question("q", "x", value_checker({"red": 2, "blue": 1}), "h", "s")
    assert q.check({"red": 2, "blue": 1}).correct
    assert q.check({"red": 2}).status == "incorrect"


def test_in_grading_mode_a_check_that_is_not_correct_raises(monkeypatch, tmp_path):
    from mmlearn.exercises import grading
    monkeypatch.setitem(grading._STATE, "on", False)
    monkeypatch.setitem(grading._STATE, "log", None)
    grading.start_grading(tmp_path / "log.jsonl")
    assert NUMBER.check(0.5).correct
    with pytest.raises(NotCorrect) as failure:
        NUMBER.check(0.9)
    assert isinstance(failure.value, AssertionError)
    assert failure.value._render_traceback_()[0].startswith("❌")
    with pytest.raises(NotCorrect):
        NUMBER.check(None)
