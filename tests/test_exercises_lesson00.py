"""Lesson 00's exercises: each check accepts a right answer and rejects plausible wrong ones."""


import pytest
import torch
import torch.nn.functional as F

from mmlearn.exercises import lesson00


def _status(question, answer) -> str:
    return question.check(answer).status


# -- lesson 00 ------------------------------------------------------------------------

def test_lesson00_cosine_similarity_must_normalise_and_broadcast():
    def right(a, b):
        return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))

    assert lesson00.q1.check(right).correct
    assert lesson00.q1.check(lambda a, b: F.cosine_similarity(a, b, dim=-1)).correct
    assert _status(lesson00.q1, lambda a, b: (a * b).sum(-1)) == "incorrect"  # no lengths
    assert _status(lesson00.q1, lambda a, b: (a * b).sum(-1) / a.norm(dim=-1)) == "incorrect"
    # one vector against several only works if the sums run over the last dimension
    assert _status(lesson00.q1, lambda a, b: (a * b).sum() / (a.norm() * b.norm())) == \
        "incorrect"


@pytest.mark.parametrize("wrong", ["a", "b", "d", 3])
def test_lesson00_prediction_takes_only_the_right_letter(wrong):
    assert lesson00.q2.check("c").correct and lesson00.q2.check(" C ").correct
    assert _status(lesson00.q2, wrong) == "incorrect"


def test_lesson00_prediction_matches_what_the_lesson_shows():
    # cosine similarities within [-1, 1]: at temperature 1 the best of four is under 1/2
    scores = torch.tensor([0.83, 0.38, 0.46, -0.25])
    assert 0.25 < torch.softmax(scores, dim=0).max() < 0.5


def test_lesson00_temperature_is_checked_by_what_it_does():
    low, high = 1e-3, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        if torch.softmax(lesson00.SIMILARITIES / middle, dim=0)[0] > 0.9:
            low = middle
        else:
            high = middle
    assert lesson00.q3.check(middle).correct
    assert lesson00.q3.check(torch.tensor(middle)).correct
    assert lesson00.q3.check(round(middle, 3)).correct  # any temperature close enough
    for wrong in (0.07, 1.0, 0.01, -0.02, 0.0, "0.023"):
        assert _status(lesson00.q3, wrong) == "incorrect", wrong
    assert "raise the temperature" in lesson00.q3.check(0.01).message


