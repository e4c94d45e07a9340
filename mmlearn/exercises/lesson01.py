"""Exercises of lesson 01: the contrastive loss, predicted, then trained with your own step.

Q1 (predict, then run): the loss of a perfect batch at temperature 1.
Q2 (predict, then run): where the loss of an untrained CLIP starts.
Q3 (build): ``training_step(model, batch, optimizer)``, which the lesson then uses for
its live training run. It is checked by behaviour: a few steps on one fixed batch,
side by side with a plain reference step, from the same starting weights.
"""

import contextlib
import copy
import random

import numpy as np
import torch

from mmlearn import losses
from mmlearn.exercises.core import Incorrect, Question, behaviour_checker, choice_checker

# A perfectly aligned batch: image i and caption i are the same unit vector, and
# different items are orthogonal.
PERFECT_N = 8
PERFECT_SCALE = 1.0  # temperature 1: no sharpening at all

q1 = Question(
    name="q1",
    variable="prediction_perfect",
    checker=choice_checker("b", "abc", why_not={
        "a": "the loss is a cross-entropy: it is 0 only when the softmax gives the right "
             "caption probability 1. What does a softmax give to scores of 1 and 0?",
        "c": "log N is the loss when every caption gets the same probability; here the right "
             "caption scores 1 and the others 0, so it does get more.",
    }),
    hint_text="Each row of logits holds `PERFECT_SCALE` = 1 for the right caption and 0 for "
              "the 7 others. How much probability does a softmax give to a 1 among seven 0s?",
    solution_text='```python\nprediction_perfect = "b"\n```\nThe right caption gets e / (e + 7) '
                  "≈ 0.28, so the loss is -log 0.28 = log(1 + 7/e) ≈ 1.27: far from 0 although "
                  "the model is perfect, and below log 8 ≈ 2.08. Only a large scale (a low "
                  "temperature) lets the loss of a perfect model go to 0.",
)

CHANCE_BATCH = 128

q2 = Question(
    name="q2",
    variable="prediction_start",
    checker=choice_checker("b", "abc", why_not={
        "a": "a loss near 0 means the model gives the right caption almost all the "
             "probability. Can a model with random weights know which caption is right?",
        "c": "the cross-entropy is -log(probability of the right caption). If the model "
             "guesses among N captions, what is that probability?",
    }),
    hint_text="An untrained model cannot tell which of the N captions belongs to an image. "
              "If it gave each the same probability 1/N, what would -log(probability of the "
              "right one) be?",
    solution_text='```python\nprediction_start = "b"\n```\nA model that cannot tell the '
                  "captions apart gives each about 1/N, and -log(1/N) = log N ≈ 4.85 for "
                  "N = 128. An untrained model starts a little above it (see the cell below).",
)


# -- Q3: the training step -----------------------------------------------------------

def _reference_step(model, batch, optimizer) -> float:
    images, tokens = batch
    image_features, text_features, logit_scale = model(images, tokens)
    loss = losses.clip_loss(image_features, text_features, logit_scale)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@contextlib.contextmanager
def _random_state_kept():
    """Run without changing the learner's random numbers (Python, NumPy, torch)."""
    python, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy_state)


_FIXTURE: dict = {}


def _fixture():
    """A fresh course CLIP and one fixed batch of 16 ShapeWorld pictures (built once)."""
    if not _FIXTURE:
        from mmlearn import shapes, train, zeroshot
        with _random_state_kept():
            model, tokenizer = train.new_course_clip(seed=0)
            data = shapes.ShapeWorld(16, "train", seed=5)
            batch = (zeroshot.to_model_input(data.images, model), tokenizer(data.captions))
        _FIXTURE.update(model=model, batch=batch)
    return copy.deepcopy(_FIXTURE["model"]), _FIXTURE["batch"]


STEPS = 3  # steps checked on the fixed batch
LR = 1e-3


def _optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=LR)


def _parameters(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(x, y, rtol=1e-4, atol=1e-6) for x, y in zip(a, b))


def _as_number(value, step: int) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.detach().float().item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if value is None:
        raise Incorrect("your function returned None: return the batch's loss "
                        "(a number, or a one-element tensor).")
    raise Incorrect(f"at step {step} your function returned a {type(value).__name__}; return "
                    f"the batch's loss (a number, or a one-element tensor).")


def _check_training_step(run) -> None:
    with _random_state_kept():
        # the plain reference: the losses it returns, and the weights after each step
        reference, batch = _fixture()
        reference.train()
        optimizer = _optimizer(reference)
        start = _parameters(reference)
        expected_losses, expected_weights = [], []
        for _ in range(STEPS + 1):  # one more: the loss *after* the last update
            torch.manual_seed(0)
            expected_losses.append(_reference_step(reference, batch, optimizer))
            expected_weights.append(_parameters(reference))

        model, _ = _fixture()
        model.train()
        optimizer = _optimizer(model)
        for step in range(1, STEPS + 1):
            torch.manual_seed(0)
            got = _as_number(run(model, batch, optimizer), step)
            weights = _parameters(model)
            if step == 1 and _same(weights, start):
                raise Incorrect("after one call of your function the model's weights have not "
                                "changed: the optimizer never took its step (or the gradients "
                                "were cleared before it did).")
            if abs(got - expected_losses[step - 1]) > 1e-4 * max(1.0, abs(got)):
                if abs(got - expected_losses[step]) <= 1e-4 * max(1.0, abs(got)):
                    raise Incorrect(f"at step {step} your function returned the loss of the "
                                    f"model *after* its update. Return the loss that the "
                                    f"gradients were computed from, before the step.")
                raise Incorrect(f"at step {step} your function returned {got:.4f}, which is "
                                f"not the contrastive loss of the batch before the update. "
                                f"Call the model on the batch's images and tokens and use "
                                f"the CLIP loss of what it returns.")
            if not _same(weights, expected_weights[step - 1]):
                if step == 1:
                    raise Incorrect("after one step the weights differ from those of a plain "
                                    "step (loss, backward, optimizer step) on the same batch.")
                raise Incorrect(f"step 1 matches a plain step, but step {step} does not: "
                                f"something carries over from one call to the next. What "
                                f"does `backward()` do to `.grad` when it is already there?")


q3 = Question(
    name="q3",
    variable="training_step",
    checker=behaviour_checker(_check_training_step, time_limit=20.0),
    hint_text="Four things, in an order that works: compute the loss of the batch from what "
              "`model(images, tokens)` returns (features of both kinds and the scale, ready "
              "for `losses.clip_loss`); clear the gradients left by the previous step; "
              "backpropagate; let the optimizer update the weights. Return the loss you "
              "computed first, as a number.",
    solution_text="```python\ndef training_step(model, batch, optimizer):\n"
                  "    images, tokens = batch\n"
                  "    image_features, text_features, logit_scale = model(images, tokens)\n"
                  "    loss = losses.clip_loss(image_features, text_features, logit_scale)\n"
                  "    optimizer.zero_grad()\n"
                  "    loss.backward()\n"
                  "    optimizer.step()\n"
                  "    return loss.item()\n```\nWithout `zero_grad()`, `backward()` adds the "
                  "new gradients to the old ones, and every step also repeats the ones before.",
    time_limit=120.0,
)
