"""Lesson 01's exercises: each check accepts a right answer and rejects plausible wrong ones."""

import random

import numpy as np
import pytest
import torch

from mmlearn import losses
from mmlearn.exercises import lesson01


def _status(question, answer) -> str:
    return question.check(answer).status


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


