"""Lessons 00-02: each check accepts the reference solution and rejects plausible wrong answers."""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmlearn import losses
from mmlearn.exercises import lesson00, lesson01, lesson02


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


# -- lesson 01 ------------------------------------------------------------------------

def test_lesson01_predictions():
    assert lesson01.q1.check("b").correct and lesson01.q2.check("b").correct
    for wrong in ("a", "c"):
        assert _status(lesson01.q1, wrong) == "incorrect"
        assert _status(lesson01.q2, wrong) == "incorrect"


def test_lesson01_perfect_batch_answer_is_true():
    n, eye = lesson01.PERFECT_N, torch.eye(lesson01.PERFECT_N)
    loss = losses.clip_loss(eye, eye, lesson01.PERFECT_SCALE).item()
    assert 0.5 < loss < np.log(n)  # "well above 0", below the loss of a blind guess


def _forward_loss(model, batch):
    image_features, text_features, logit_scale = model(*batch)
    return losses.clip_loss(image_features, text_features, logit_scale)


def step_right(model, batch, optimizer):
    loss = _forward_loss(model, batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_right_zero_grad_last(model, batch, optimizer):
    loss = _forward_loss(model, batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss  # a one-element tensor is fine


def step_without_zero_grad(model, batch, optimizer):
    loss = _forward_loss(model, batch)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_without_step(model, batch, optimizer):
    loss = _forward_loss(model, batch)
    optimizer.zero_grad()
    loss.backward()
    return loss.item()


def step_returning_the_loss_after_the_update(model, batch, optimizer):
    step_right(model, batch, optimizer)
    with torch.no_grad():
        return _forward_loss(model, batch).item()


def step_clearing_gradients_before_the_step(model, batch, optimizer):
    loss = _forward_loss(model, batch)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def step_returning_nothing(model, batch, optimizer):
    step_right(model, batch, optimizer)


@pytest.mark.parametrize("step", [step_right, step_right_zero_grad_last])
def test_lesson01_training_step_accepts_a_plain_step(step, one_thread):
    assert lesson01.q3.check(step).correct, lesson01.q3.check(step)


@pytest.mark.parametrize("step, complaint", [
    (step_without_zero_grad, "carries over"),
    (step_without_step, "never took its step"),
    (step_clearing_gradients_before_the_step, "never took its step"),
    (step_returning_the_loss_after_the_update, "after"),
    (step_returning_nothing, "None"),
])
def test_lesson01_training_step_rejects_broken_steps(step, complaint, one_thread):
    feedback = lesson01.q3.check(step)
    assert feedback.status == "incorrect" and complaint in feedback.message, feedback


def test_lesson01_check_leaves_the_learners_random_numbers_alone(one_thread):
    def draws():
        return random.random(), np.random.rand(), torch.rand(1).item()

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = draws()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    lesson01.q3.check(step_right)
    assert draws() == expected


# -- lesson 02 ------------------------------------------------------------------------

def test_lesson02_ensemble_classifier():
    right = lambda p: F.normalize(F.normalize(p, dim=-1).mean(1), dim=-1).T  # noqa: E731
    assert lesson02.q1.check(right).correct
    wrong = {
        "no inner normalisation": lambda p: F.normalize(p.mean(1), dim=-1).T,
        "no outer normalisation": lambda p: F.normalize(p, dim=-1).mean(1).T,
        "classes in rows": lambda p: F.normalize(F.normalize(p, dim=-1).mean(1), dim=-1),
        "mean over classes": lambda p: F.normalize(F.normalize(p, dim=-1).mean(0), dim=-1).T,
    }
    for name, answer in wrong.items():
        assert _status(lesson02.q1, answer) == "incorrect", name


def test_lesson02_templates_are_measured_against_the_class_name(one_thread):
    assert lesson02.q2.check(["a {}", "a picture of a {}"]).correct
    assert lesson02.q2.check(["a {}"]).correct
    for wrong in (["{}"], ["{} shape"], ["a big {}", "a small {}"], "a {}", ["a red circle"],
                  ["a {} {}"], []):
        assert _status(lesson02.q2, wrong) == "incorrect", wrong
    assert "held-out" in lesson02.q2.check(["{} shape"]).message


def test_lesson02_prediction():
    assert lesson02.q3.check("c").correct
    assert _status(lesson02.q3, "a") == "incorrect"
    assert _status(lesson02.q3, "b") == "incorrect"
