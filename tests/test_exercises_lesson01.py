"""Lesson 01's exercises: each check accepts a right answer and rejects plausible wrong ones.

For each build question: the right answer passes (also when written another way, whose
float rounding differs); an answer that delegates to the library or to the checker's own
reference fails and the verdict names the call; a hard-coded answer fails; the usual
mistakes fail with a message that says what is wrong. Predictions are numbers, recorded
first and judged after their reveal.
"""

import dataclasses
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from mmlearn import losses
from mmlearn.exercises import lesson01
from mmlearn.exercises.core import NotCommitted


def _status(question, answer) -> str:
    return question.check(answer).status


def _message(question, answer) -> str:
    feedback = question.check(answer)
    assert feedback.status == "incorrect", feedback
    return feedback.message


# -- Q1: the contrastive loss ---------------------------------------------------------

def loss_right(image_features, text_features, logit_scale):
    logits = logit_scale * image_features @ text_features.T
    targets = torch.arange(len(logits))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def loss_by_logsumexp(image_features, text_features, logit_scale):
    logits = logit_scale * image_features @ text_features.T
    rows = (logits - logits.logsumexp(dim=1, keepdim=True)).diagonal()
    columns = (logits - logits.logsumexp(dim=0, keepdim=True)).diagonal()
    return -(rows.mean() + columns.mean()) / 2


def loss_normalising_again(image_features, text_features, logit_scale):
    return loss_right(F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1),
                      logit_scale)


def loss_with_a_module(image_features, text_features, logit_scale):
    logits = logit_scale * image_features @ text_features.T
    targets, cross_entropy = torch.arange(len(logits)), torch.nn.CrossEntropyLoss()
    return (cross_entropy(logits, targets) + cross_entropy(logits.T, targets)) / 2


@pytest.mark.parametrize("answer", [loss_right, loss_by_logsumexp, loss_normalising_again,
                                    loss_with_a_module])
def test_q1_accepts_a_loss_written_by_hand(answer):
    assert lesson01.q1.check(answer).correct, lesson01.q1.check(answer)


def test_q1_checks_against_open_clip_on_several_batch_sizes_and_scales():
    cases = lesson01._loss_cases(torch.Generator().manual_seed(0))
    assert len({len(image) for image, _, _ in cases}) >= 4
    assert len({round(float(scale), 3) for _, _, scale in cases}) >= 4
    assert min(float(s) for _, _, s in cases) == 1.0 and max(float(s) for _, _, s in cases) == 100
    for image, text, scale in cases:  # the reference is open_clip's ClipLoss itself
        expected = ClipLoss()(image, text, torch.tensor(scale))
        assert torch.isclose(lesson01._reference_loss(image, text, torch.tensor(scale)),
                             expected)


@pytest.mark.parametrize("answer, named", [
    (losses.clip_loss, "mmlearn.losses.clip_loss"),
    (lambda i, t, s: losses.clip_loss(i, t, s), "mmlearn.losses.clip_loss"),
    (lambda i, t, s: losses.clip_loss_soft(i, t, s, torch.eye(len(i), dtype=torch.bool)),
     "clip_loss_soft"),
    (lambda i, t, s: ClipLoss()(i, t, s), "ClipLoss"),
    (lesson01._reference_loss, "lesson01._reference_loss"),
])
def test_q1_refuses_an_answer_that_delegates_and_names_the_call(answer, named):
    message = _message(lesson01.q1, answer)
    assert "calls `" in message and named in message


def test_q1_refuses_a_hard_coded_answer():
    seen = []

    def recorder(image_features, text_features, logit_scale):
        seen.append(loss_right(image_features, text_features, logit_scale).item())
        return loss_right(image_features, text_features, logit_scale)
    assert lesson01.q1.check(recorder).correct
    remembered = seen[0]
    assert _status(lesson01.q1, lambda i, t, s: torch.tensor(remembered, requires_grad=True)) \
        == "incorrect"
    # a constant wired to the inputs has gradients, but not the right ones
    assert _status(lesson01.q1, lambda i, t, s: (i.sum() + t.sum() + s) * 0 + remembered) == \
        "incorrect"


def rows_only(i, t, s):
    logits = s * i @ t.T
    return F.cross_entropy(logits, torch.arange(len(logits)))


def columns_only(i, t, s):
    logits = s * i @ t.T
    return F.cross_entropy(logits.T, torch.arange(len(logits)))


def both_added(i, t, s):
    return 2 * loss_right(i, t, s)


def summed_over_the_batch(i, t, s):
    return len(i) * loss_right(i, t, s)


def one_direction_cut_off(i, t, s):
    logits = s * i @ t.T
    targets = torch.arange(len(logits))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.detach().T, targets)) / 2


def naive_exp(i, t, s):
    logits = s * i @ t.T
    rows = logits.exp() / logits.exp().sum(1, keepdim=True)
    columns = logits.exp() / logits.exp().sum(0, keepdim=True)
    return -(rows.diagonal().log().mean() + columns.diagonal().log().mean()) / 2


@pytest.mark.parametrize("answer, complaint", [
    (rows_only, "only the rows"),
    (columns_only, "only the columns"),
    (both_added, "their mean"),
    (summed_over_the_batch, "divide by N"),
    (lambda i, t, s: loss_right(i, t, 1.0), "ignores `logit_scale`"),
    (lambda i, t, s: loss_right(i, t, 1 / s), "multiply by it"),
    (lambda i, t, s: loss_right(i, t, s.exp()), "already exponentiated"),
    (lambda i, t, s: loss_right(i, t, s).item(), "not a tensor"),
    (lambda i, t, s: loss_right(i, t, s).detach(), "no gradient flows"),
    (lambda i, t, s: loss_right(i, t, s.item()), "no gradient reaches `logit_scale`"),
    (lambda i, t, s: loss_right(i, t.detach(), s), "no gradient reaches `text_features`"),
    (one_direction_cut_off, "gradient with respect to"),
    (naive_exp, "e^90 is infinite"),
    (lambda i, t, s: torch.stack([loss_right(i, t, s)] * 2), "one number"),
    (lambda i, t, s: None, "returned None"),
])
def test_q1_names_the_usual_mistakes(answer, complaint):
    assert complaint in _message(lesson01.q1, answer)


# -- Q2, Q3: predictions ----------------------------------------------------------------

def _fresh(question):
    """The same question with no prediction recorded yet."""
    return dataclasses.replace(question)


def test_q2_perfect_batch_is_log_1_plus_7_over_e_and_open_clip_agrees():
    eye = torch.eye(lesson01.PERFECT_N)
    loss = ClipLoss()(eye, eye, torch.tensor(lesson01.PERFECT_SCALE)).item()
    assert math.isclose(loss, math.log(1 + 7 / math.e), rel_tol=1e-5)
    assert math.isclose(lesson01.PERFECT_LOSS, loss, rel_tol=1e-5)


@pytest.mark.parametrize("question, right, wrong", [
    (lesson01.q2, 1.27, 2.08),   # log 8: a blind guess
    (lesson01.q2, 1.3, 0.0),     # zero: "the model is perfect"
    (lesson01.q3, 4.85, 128),    # N itself
    (lesson01.q3, 5.5, 0.7),
    (lesson01.q3, 4.85, 4.5),    # below log N: an untrained model does not beat chance
    (lesson01.q3, 5.5, 6.1),
])
def test_predictions_are_recorded_then_judged_within_a_tolerance(question, right, wrong):
    for answer, correct in ((right, True), (wrong, False)):
        fresh = _fresh(question)
        with pytest.raises(NotCommitted):
            fresh.reveal()
        assert fresh.check(answer).status == "recorded"
        fresh.reveal()
        assert fresh.check(answer).correct == correct
        assert fresh.check(right if not correct else wrong).correct == correct  # first counts


def test_predictions_that_are_not_numbers_are_not_recorded():
    fresh = _fresh(lesson01.q2)
    assert fresh.check("1.27").status == "incorrect"  # a string: told to remove the quotes
    assert fresh.check(1.27).status == "recorded"


def test_q3_range_holds_log_n_and_the_untrained_start():
    low = lesson01.START_CENTRE - lesson01.START_TOLERANCE
    high = lesson01.START_CENTRE + lesson01.START_TOLERANCE
    assert math.isclose(low, 4.6) and math.isclose(high, 6.0)
    # the reasoning's log 128 and the lesson's measured start, 5.50, both well inside
    assert low + 0.2 < math.log(128) < 5.5 < high - 0.2


def test_points_builds_three_predictions_one():
    questions = (lesson01.q1, lesson01.q2, lesson01.q3, lesson01.q4)
    assert [q.points for q in questions] == [3, 1, 1, 3]
    assert [q.predict for q in questions] == [False, True, True, False]


# -- Q4: the training step ----------------------------------------------------------------

def _forward_loss(model, batch, loss_fn=losses.clip_loss):
    image_features, text_features, logit_scale = model(*batch)
    return loss_fn(image_features, text_features, logit_scale)


def step_right(model, batch, optimizer):
    loss = _forward_loss(model, batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_with_the_learners_loss(model, batch, optimizer):
    """As in the notebook: the loss is the learner's own, written in another order."""
    loss = _forward_loss(model, batch, loss_by_logsumexp)
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


def step_by_hand(model, batch, optimizer):
    """Ignores the optimizer: plain gradient descent at a rate of its own."""
    loss = _forward_loss(model, batch)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.grad is not None:
                parameter -= 0.01 * parameter.grad
    return loss.item()


def step_by_hand_at_the_optimizers_rate(model, batch, optimizer):
    """Reads the rate from the optimizer, but not its momentum."""
    loss = _forward_loss(model, batch)
    model.zero_grad()
    loss.backward()
    rate = optimizer.param_groups[0]["lr"]
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.grad is not None:
                parameter -= rate * parameter.grad
    return loss.item()


def step_in_eval_mode(model, batch, optimizer):
    model.eval()
    return step_right(model, batch, optimizer)


def step_in_eval_mode_then_back(model, batch, optimizer):
    model.eval()
    loss = _forward_loss(model, batch)
    model.train()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_stepping_twice(model, batch, optimizer):
    loss = step_right(model, batch, optimizer)
    optimizer.step()
    return loss


@pytest.mark.parametrize("step", [step_right, step_with_the_learners_loss,
                                  step_right_zero_grad_last])
def test_q4_accepts_a_plain_step(step, one_thread):
    assert lesson01.q4.check(step).correct, lesson01.q4.check(step)


@pytest.mark.parametrize("step, complaint", [
    (step_without_zero_grad, "carries over"),
    (step_without_step, "never took its step"),
    (step_clearing_gradients_before_the_step, "never took its step"),
    (step_returning_the_loss_after_the_update, "after"),
    (step_returning_nothing, "None"),
    (step_by_hand, "without calling `optimizer.step()`"),
    (step_by_hand_at_the_optimizers_rate, "without calling `optimizer.step()`"),
    (step_in_eval_mode, "train mode"),
    (step_in_eval_mode_then_back, "train mode"),
    (step_stepping_twice, "exactly one"),
])
def test_q4_rejects_broken_steps(step, complaint, one_thread):
    feedback = lesson01.q4.check(step)
    assert feedback.status == "incorrect" and complaint in feedback.message, feedback


def test_q4_checks_with_an_optimizer_no_hand_written_update_guesses():
    model = torch.nn.Linear(2, 2)
    optimizer = lesson01._optimizer(model)
    group = optimizer.param_groups[0]
    assert group["lr"] not in (0.1, 0.01, 0.001, 3e-3) and group["momentum"] > 0


@pytest.mark.slow
def test_q4_refuses_the_checkers_own_step_and_a_hard_coded_loss(one_thread):
    message = _message(lesson01.q4, lesson01._reference_step)
    assert "calls `" in message and "_reference_step" in message
    losses_seen = []

    def recorder(model, batch, optimizer):
        losses_seen.append(step_right(model, batch, optimizer))
        return losses_seen[-1]
    assert lesson01.q4.check(recorder).correct

    def replay(model, batch, optimizer):  # the right step, returning remembered losses
        step_right(model, batch, optimizer)
        return 0.0
    assert _status(lesson01.q4, replay) == "incorrect"


@pytest.mark.slow
def test_q4_a_step_that_spoils_its_model_and_batch_spoils_nothing_after(one_thread):
    def vandal(model, batch, optimizer):
        images, tokens = batch
        images.fill_(float("nan"))
        model.eval()
        for parameter in model.parameters():
            parameter.data.zero_()
        return 0.0
    assert _status(lesson01.q4, vandal) == "incorrect"
    assert lesson01.q4.check(step_right).correct
    assert "carries over" in _message(lesson01.q4, step_without_zero_grad)


def test_q4_check_leaves_the_learners_random_numbers_alone(one_thread):
    def draws():
        return random.random(), np.random.rand(), torch.rand(1).item()

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = draws()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    lesson01.q4.check(step_right)
    assert draws() == expected
