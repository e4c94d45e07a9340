"""Lesson 00's exercises: each check accepts a right answer and rejects plausible wrong ones.

For each build question: the right answer passes; an answer that delegates to the library
(or to the checker's own reference) fails and the verdict names the call; an answer that
returns what an earlier check's inputs gave fails on the fresh inputs of the next; the
usual mistakes fail with a message that says what is wrong. Predictions are recorded
first and judged only after their reveal.
"""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from mmlearn.exercises import lesson00
from mmlearn.exercises.core import NotCommitted


def _status(question, answer) -> str:
    return question.check(answer).status


def _message(question, answer) -> str:
    feedback = question.check(answer)
    assert feedback.status == "incorrect", feedback
    return feedback.message


def _recorder(solution):
    """A right answer that remembers its last result: the raw material of a hard-coded one."""
    seen = {}

    def answer(*args):
        seen["result"] = solution(*args)
        return seen["result"]
    return answer, seen


# -- Q1: cosine similarity ------------------------------------------------------------

def cosine_right(a, b):
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def cosine_by_normalising(a, b):
    return (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)


@pytest.mark.parametrize("answer", [cosine_right, cosine_by_normalising])
def test_q1_accepts_a_cosine_written_by_hand(answer):
    assert lesson00.q1.check(answer).correct


@pytest.mark.parametrize("answer, named", [
    (lambda a, b: F.cosine_similarity(a, b, dim=-1), "cosine_similarity"),
    (lambda a, b: torch.cosine_similarity(a, b, dim=-1), "cosine_similarity"),
    (lambda a, b: torch.nn.CosineSimilarity(dim=-1)(a, b), "cosine_similarity"),
    (lambda a, b: 1 - F.cosine_embedding_loss(a.expand_as(b), b, torch.ones(len(b)),
                                              reduction="none"), "cosine_embedding_loss"),
    (lesson00._cosine_similarity, "lesson00._cosine_similarity"),
])
def test_q1_refuses_an_answer_that_delegates_and_names_the_call(answer, named):
    message = _message(lesson00.q1, answer)
    assert "calls `" in message and named in message


def test_q1_refuses_a_hard_coded_answer():
    answer, seen = _recorder(cosine_right)
    assert lesson00.q1.check(answer).correct
    remembered = seen["result"].clone()
    assert _status(lesson00.q1, lambda a, b: remembered) == "incorrect"
    assert _status(lesson00.q1, lambda a, b: torch.tensor(1.0)) == "incorrect"


@pytest.mark.parametrize("answer, complaint", [
    (lambda a, b: (a * b).sum(-1), "dot products"),
    (lambda a, b: (a * b).sum(-1) / a.norm(dim=-1), "length of `a` only"),
    (lambda a, b: (a * b).sum(-1) / b.norm(dim=-1), "length of `b` only"),
    (lambda a, b: (a * b).sum() / (a.norm() * b.norm()), "last dimension"),
    (lambda a, b: None, "returned None"),
])
def test_q1_names_the_usual_mistakes(answer, complaint):
    assert complaint in _message(lesson00.q1, answer)


def test_q1_solution_text_does_not_advertise_the_library():
    assert "cosine_similarity(a, b, dim" not in lesson00.q1.solution_text
    assert "torch.nn.functional" not in lesson00.q1.solution_text


# -- Q2: softmax with a temperature ---------------------------------------------------

def softmax_right(scores, temperature):
    logits = scores / temperature
    logits = logits - logits.max(dim=-1, keepdim=True).values
    weights = logits.exp()
    return weights / weights.sum(dim=-1, keepdim=True)


def softmax_by_logsumexp(scores, temperature):
    logits = scores / temperature
    return (logits - logits.logsumexp(dim=-1, keepdim=True)).exp()


def softmax_naive(scores, temperature):
    weights = (scores / temperature).exp()
    return weights / weights.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize("answer", [softmax_right, softmax_by_logsumexp])
def test_q2_accepts_a_stable_softmax_written_by_hand(answer):
    assert lesson00.q2.check(answer).correct


@pytest.mark.parametrize("answer, named", [
    (lambda s, t: torch.softmax(s / t, dim=-1), "softmax"),
    (lambda s, t: F.softmax(s / t, dim=-1), "softmax"),
    (lambda s, t: (s / t).softmax(-1), "softmax"),
    (lambda s, t: torch.special.softmax(s / t, -1), "softmax"),
    (lambda s, t: torch.nn.Softmax(dim=-1)(s / t), "Softmax"),
    (lambda s, t: (s / t).log_softmax(-1).exp(), "log_softmax"),
    (lambda s, t: F.log_softmax(s / t, dim=-1).exp(), "log_softmax"),
    (lambda s, t: F.softmin(-s / t, dim=-1), "softmin"),
    (lesson00._softmax_with_temperature, "lesson00._softmax_with_temperature"),
])
def test_q2_refuses_an_answer_that_delegates_and_names_the_call(answer, named):
    message = _message(lesson00.q2, answer)
    assert "calls `" in message and named in message


def test_q2_refuses_a_hard_coded_answer():
    answer, seen = _recorder(softmax_right)
    assert lesson00.q2.check(answer).correct
    remembered = seen["result"].clone()
    assert _status(lesson00.q2, lambda s, t: remembered) == "incorrect"
    assert _status(lesson00.q2, lambda s, t: torch.full_like(s, 1 / s.shape[-1])) == \
        "incorrect"


def test_q2_a_plain_exp_overflows_and_is_told_to_subtract_the_max():
    # the lesson's own scores pass with it; the check's large ones do not
    assert torch.allclose(softmax_naive(lesson00.SIMILARITIES, 0.05),
                          torch.softmax(lesson00.SIMILARITIES / 0.05, dim=0))
    message = _message(lesson00.q2, softmax_naive)
    assert "88.7" in message and "largest" in message


def softmax_naive_in_float64(scores, temperature):
    return softmax_naive(scores.double(), temperature)


def softmax_naive_in_float64_handed_back_in_float32(scores, temperature):
    return softmax_naive(scores.double(), temperature).to(scores.dtype)


def softmax_minus_the_batch_maximum(scores, temperature):
    logits = scores / temperature
    weights = (logits - logits.max()).exp()  # one number for the whole batch, not per row
    return weights / weights.sum(dim=-1, keepdim=True)


REPEATS = 25  # fresh inputs at every check: a flaw must be caught at every one of them


def test_q2_overflow_case_exceeds_float64_and_far_rows_underflow_at_every_draw():
    for seed in range(300):
        cases = lesson00._softmax_cases(torch.Generator().manual_seed(seed))
        logits = [scores / temperature for scores, temperature in cases]
        assert any(x.min() >= 1000 for x in logits)  # e^1000 is infinite in float64 too
        tops = [x.max(-1).values for x in logits if x.ndim == 2]
        assert any((top.max() - top).max() > 200 for top in tops)  # e^-200 is 0 in float32


def test_q2_refuses_an_answer_in_another_dtype_every_time():
    for _ in range(REPEATS):
        message = _message(lesson00.q2, softmax_naive_in_float64)
        assert "float64" in message and "dtype" in message


def test_q2_a_plain_exp_in_float64_overflows_every_time():
    for _ in range(REPEATS):
        message = _message(lesson00.q2, softmax_naive_in_float64_handed_back_in_float32)
        assert "709.8" in message and "largest" in message


def test_q2_subtracting_the_batch_maximum_is_caught_every_time_and_told_why():
    # it is right for a single row (the batch's largest value is the row's)
    row = torch.tensor([0.3, 0.9, -0.2])
    assert torch.allclose(softmax_minus_the_batch_maximum(row, 0.01), softmax_right(row, 0.01))
    for _ in range(REPEATS):
        message = _message(lesson00.q2, softmax_minus_the_batch_maximum)
        assert "each row's own largest value" in message and "sums to 0" in message
        assert "infinite" not in message


def softmax_over_columns(scores, temperature):
    return softmax_right(scores.mT, temperature).mT if scores.ndim == 2 else \
        softmax_right(scores, temperature)


@pytest.mark.parametrize("answer, complaint", [
    (lambda s, t: softmax_right(s * t * t, t), "divide them by it"),
    (lambda s, t: softmax_right(s, 1.0), "temperature changes nothing"),
    (softmax_over_columns, "each column"),
    (lambda s, t: (s / t - (s / t).max(-1, keepdim=True).values).exp(), "add up to"),
    (lambda s, t: None, "returned None"),
])
def test_q2_names_the_usual_mistakes(answer, complaint):
    assert complaint in _message(lesson00.q2, answer)


# -- Q3: predict, then run ------------------------------------------------------------

def _fresh(question):
    """The same question with no prediction recorded yet (its checker, its points)."""
    return dataclasses.replace(question)


def test_q3_is_recorded_before_its_reveal_and_judged_after():
    question = _fresh(lesson00.q3)
    with pytest.raises(NotCommitted):
        question.reveal()
    assert "add one line of why" in _message(question, "c")  # no reason: nothing stored
    first = question.check("a: the model is trained and sure")
    assert first.status == "recorded" and "stored" in first.message
    question.reveal()
    assert question.check("c: changed my mind after seeing it").status == "incorrect"


@pytest.mark.parametrize("letter", "abcd")
def test_q3_takes_only_the_right_letter(letter):
    question = _fresh(lesson00.q3)
    question.check(f"{letter}: a guess with a reason")
    question.reveal()
    assert question.check(f"{letter}: a guess with a reason").correct == (letter == "c")


def test_q3_answer_matches_what_the_lesson_shows():
    # cosine similarities within [-1, 1]: at temperature 1 the best of four is under 1/2
    scores = torch.tensor([0.83, 0.38, 0.46, -0.25])
    assert 0.25 < softmax_right(scores, 1.0).max() < 0.5


# -- Q4: a temperature for 90 % --------------------------------------------------------

def test_q4_temperature_is_checked_by_what_it_does():
    low, high = 1e-3, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        if softmax_right(lesson00.SIMILARITIES, middle)[0] > 0.9:
            low = middle
        else:
            high = middle
    assert lesson00.q4.check(middle).correct
    assert lesson00.q4.check(torch.tensor(middle)).correct
    assert lesson00.q4.check(round(middle, 3)).correct  # any temperature close enough
    for wrong in (0.07, 1.0, 0.01, -0.02, 0.0, "0.023"):
        assert _status(lesson00.q4, wrong) == "incorrect", wrong
    assert "raise the temperature" in lesson00.q4.check(0.01).message


def test_points_builds_three_predictions_one():
    assert [q.points for q in (lesson00.q1, lesson00.q2, lesson00.q3, lesson00.q4)] == \
        [3, 3, 1, 2]
    assert lesson00.q3.predict and not lesson00.q1.predict
