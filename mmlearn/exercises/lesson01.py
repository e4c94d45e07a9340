"""Exercises of lesson 01: the contrastive loss, written by you, predicted, then trained.

Q1 (build, 3 points): ``contrastive_loss(image_features, text_features, logit_scale)``,
CLIP's symmetric cross-entropy (InfoNCE) over the N x N similarity matrix. It is
checked for its value *and* its gradients (features and scale) against open_clip's
``ClipLoss``, on batches of several sizes and scales drawn afresh at every check. The
lesson then computes every loss with it (``losses.clip_loss`` as the fallback).
Q2 (predict, 1 point): the loss of a perfect batch of 8 at temperature 1, a number.
Q3 (predict, 1 point): the loss an untrained CLIP starts at on a batch of 128, a number.
Q4 (build, 3 points): ``training_step(model, batch, optimizer)``, which the lesson then
uses for its live training run, with the learner's loss. It is checked by behaviour: a
few steps on one fixed batch, side by side with a plain reference step, from the same
starting weights, each on its own copy of the model and the batch.
"""

import contextlib
import copy
import math
import random

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from mmlearn import losses
from mmlearn.exercises.core import (
    Incorrect,
    Question,
    behaviour_checker,
    call_learner,
    fresh_generator,
    value_checker,
)

# -- Q1: the contrastive loss ---------------------------------------------------------


def _reference_loss(image_features, text_features, logit_scale) -> torch.Tensor:
    return ClipLoss()(image_features, text_features, logit_scale)


def _loss_cases(generator: torch.Generator) -> list[tuple]:
    """Batches of 2 to about 50 pairs at scales from 1 to 100 (CLIP's clip), drawn afresh."""
    def unit(n: int, d: int) -> torch.Tensor:
        return F.normalize(torch.randn(n, d, generator=generator), dim=-1)

    def number(low: float, high: float) -> float:
        return low + (high - low) * torch.rand(1, generator=generator).item()

    def aligned(n: int, d: int) -> tuple:  # captions close to their images: a low loss
        images = unit(n, d)
        return images, F.normalize(images + 0.4 * unit(n, d), dim=-1)

    n = int(torch.randint(3, 12, (1,), generator=generator))
    return [
        (unit(8, 16), unit(8, 16), 1 / 0.07),                  # CLIP's starting scale
        (*aligned(n, 32), number(2.0, 30.0)),
        (unit(2, 8), unit(2, 8), 1.0),                         # the smallest batch, scale 1
        (*aligned(32, 64), 100.0),                             # CLIP's largest scale
        (unit(n + 40, 16), unit(n + 40, 16), number(5.0, 60.0)),
    ]


def _leaves(image, text, scale) -> list[torch.Tensor]:
    """Fresh leaf tensors that collect gradients (the scale too: CLIP learns it)."""
    return [torch.as_tensor(x, dtype=torch.float32).detach().clone().requires_grad_(True)
            for x in (image, text, scale)]


def _along_sphere(gradient: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """The part of a gradient that moves unit vectors along the sphere.

    The model normalises its features, so the part along each vector never reaches
    the weights: an answer that normalises again (harmless) may differ there.
    """
    radial = (gradient * features).sum(-1, keepdim=True) * features
    return gradient - radial


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Within 0.1 %, or 1e-5 in all: an aligned batch at a large scale has gradients near
    1e-5, where float32's rounding alone differs by a few 1e-6 between right answers."""
    return bool((got - want).norm() <= 1e-3 * want.norm() + 1e-5)


def _loss_mistakes(image, text, scale) -> list[tuple]:
    logits = scale * image @ text.T
    targets = torch.arange(len(logits))
    rows, columns = F.cross_entropy(logits, targets), F.cross_entropy(logits.T, targets)
    unscaled = image @ text.T
    return [
        (rows, "your loss reads only the rows (image -> which caption?). CLIP's loss also "
               "reads the columns (caption -> which image?) and averages the two."),
        (columns, "your loss reads only the columns (caption -> which image?). CLIP's loss "
                  "also reads the rows (image -> which caption?) and averages the two."),
        (rows + columns, "your loss adds the two directions; CLIP's loss is their mean."),
        ((rows + columns) / 2 * len(logits), "your loss sums over the N pairs of the batch; "
                                             "take the mean (divide by N)."),
        ((F.cross_entropy(unscaled, targets) + F.cross_entropy(unscaled.T, targets)) / 2,
         "your loss ignores `logit_scale`: multiply the similarities by it before the "
         "softmax."),
        ((F.cross_entropy(unscaled / scale, targets) +
          F.cross_entropy(unscaled.T / scale, targets)) / 2,
         "you divide the similarities by `logit_scale`; it is already 1 / temperature, "
         "so multiply by it."),
        ((F.cross_entropy(unscaled * scale.exp(), targets) +
          F.cross_entropy(unscaled.T * scale.exp(), targets)) / 2,
         "`logit_scale` is already exponentiated (it is e^t, 1 / temperature): multiply "
         "the similarities by it as it is."),
    ]


def _named_mistake(loss: torch.Tensor, image, text, scale,
                   closer_than: float = math.inf) -> str | None:
    """The known mistake whose loss is closest to the learner's, if one is within tolerance
    and nearer than ``closer_than`` (two mistakes can land close together on one batch:
    the closest is the one made)."""
    with torch.no_grad():
        mistakes = _loss_mistakes(image, text, torch.tensor(scale))
    near = [(abs(loss.item() - value.item()), message) for value, message in mistakes
            if math.isclose(loss.item(), value.item(), rel_tol=1e-4, abs_tol=1e-5)]
    near = [(distance, message) for distance, message in near if distance < closer_than]
    return min(near)[1] if near else None


def _loss_value(result, number: int) -> torch.Tensor:
    """The learner's loss as a one-element tensor that gradients can flow through."""
    where = f"on test case {number} "
    if result is None:
        raise Incorrect(f"{where}your function returned None: did you forget `return`?")
    if not isinstance(result, torch.Tensor):
        raise Incorrect(f"{where}your function returned a {type(result).__name__}, not a "
                        f"tensor. Training calls `backward()` on the loss: keep it a tensor "
                        f"(no `.item()` or `float()`).")
    if result.numel() != 1:
        raise Incorrect(f"{where}your loss has shape {tuple(result.shape)}; it should be one "
                        f"number for the whole batch (the mean over the pairs).")
    if not result.is_floating_point():
        raise Incorrect(f"{where}your loss is a tensor of {result.dtype}; it should hold a "
                        f"floating-point number.")
    if not bool(torch.isfinite(result).all()):
        raise Incorrect(f"{where}your loss is {result.reshape(()).item()}, not a finite "
                        f"number. At scale 100 a similarity of 0.9 makes a logit of 90, and "
                        f"e^90 is infinite in float32: take the log-softmax without "
                        f"exponentiating large numbers (subtract each row's largest logit "
                        f"first, as in lesson 00, or let `F.cross_entropy` do it).")
    if not result.requires_grad:
        raise Incorrect(f"{where}no gradient flows through your loss: did `.detach()`, "
                        f"`torch.no_grad()` or a conversion to numbers cut it off?")
    return result.reshape(())


def _check_gradients(leaves, reference_leaves, number: int) -> None:
    names = ("image_features", "text_features", "logit_scale")
    for name, mine, theirs in zip(names, leaves, reference_leaves):
        if mine.grad is None:
            why = (" CLIP learns its temperature through this loss: keep the scale a tensor "
                   "(no `.item()` or `float()`)." if name == "logit_scale" else "")
            raise Incorrect(f"on test case {number} no gradient reaches `{name}` from your "
                            f"loss.{why}")
        got, want = mine.grad, theirs.grad
        if name != "logit_scale":
            got, want = _along_sphere(got, theirs.detach()), _along_sphere(want, theirs.detach())
        if not _close(got, want):
            raise Incorrect(f"on test case {number} your loss has the right value but its "
                            f"gradient with respect to `{name}` differs from ClipLoss's: "
                            f"does every term of the loss stay in the computation?")


def _check_contrastive_loss(fn) -> None:
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    cases = _loss_cases(fresh_generator())
    for number, (image, text, scale) in enumerate(cases, start=1):
        reference_leaves = _leaves(image, text, scale)
        expected = _reference_loss(*reference_leaves)
        expected.backward()
        leaves = _leaves(image, text, scale)
        result = call_learner(fn, tuple(leaves), copy=False, reference=_reference_loss,
                              case=f"on test case {number} ")
        loss = _loss_value(result, number)
        if not math.isclose(loss.item(), expected.item(), rel_tol=1e-4, abs_tol=1e-5):
            message = _named_mistake(loss, image, text, scale)
            if message:
                raise Incorrect(f"on test case {number} (of {len(cases)}): {message}")
            raise Incorrect(f"on test case {number} (of {len(cases)}, a batch of "
                            f"{len(image)} at scale {scale:.3g}) your loss is "
                            f"{loss.item():.4f}, which is not CLIP's loss of that batch.")
        try:
            loss.backward()
        except Exception as error:  # a graph the learner built wrongly
            raise Incorrect(f"on test case {number} `backward()` failed on your loss: "
                            f"{type(error).__name__}.") from None
        try:
            _check_gradients(leaves, reference_leaves, number)
        except Incorrect:
            # Rarely a batch's rows and columns score alike, so a one-sided loss has the
            # right value there: its gradient gives it away, and its value names it when
            # that value is closer to the mistake's than to the right one.
            message = _named_mistake(loss, image, text, scale,
                                     closer_than=abs(loss.item() - expected.item()))
            if message:
                raise Incorrect(f"on test case {number} (of {len(cases)}): {message}") from None
            raise


q1 = Question(
    name="q1",
    variable="contrastive_loss",
    checker=_check_contrastive_loss,
    hint_text="Think of the batch as an N x N table of logits: row i holds image i's scaled "
              "similarity to every caption, column j caption j's to every image. Each row is "
              "a classification (which caption belongs to this image?) and each column one "
              "too (which image belongs to this caption?); the right answers are the "
              "matching pairs, on the diagonal. A cross-entropy scores a set of such "
              "classifications given the index of each right answer. Score the rows and the "
              "columns, and return the mean of the two, as a tensor (training needs its "
              "gradient).",
    solution_text="```python\ndef contrastive_loss(image_features, text_features, "
                  "logit_scale):\n"
                  "    logits = logit_scale * image_features @ text_features.T   # N x N\n"
                  "    targets = torch.arange(len(logits), device=logits.device)\n"
                  "    image_to_text = F.cross_entropy(logits, targets)     # each row\n"
                  "    text_to_image = F.cross_entropy(logits.T, targets)   # each column\n"
                  "    return (image_to_text + text_to_image) / 2\n```\n"
                  "`F.cross_entropy` takes the log-softmax of each row and averages "
                  "-log p of the target: the formula's sum over i divided by N.",
    time_limit=60.0,
    points=3,
    # ClipLoss by its forward: a class stands for its __call__ too, which is nn.Module's
    # own, shared by every module (it would refuse nn.CrossEntropyLoss and the model too).
    forbidden=(losses.clip_loss, losses.clip_loss_soft, ClipLoss.forward, _reference_loss),
)


# -- Q2, Q3: predictions ---------------------------------------------------------------

# A perfectly aligned batch: image i and caption i are the same unit vector, and
# different items are orthogonal.
PERFECT_N = 8
PERFECT_SCALE = 1.0  # temperature 1: no sharpening at all
PERFECT_LOSS = math.log(1 + (PERFECT_N - 1) / math.e)  # -log(e / (e + 7)) ≈ 1.27
PERFECT_TOLERANCE = 0.05

q2 = Question(
    name="q2",
    variable="prediction_perfect",
    checker=value_checker(PERFECT_LOSS, rtol=0, atol=PERFECT_TOLERANCE),
    hint_text="Each row of logits holds `PERFECT_SCALE` = 1 for the right caption and 0 for "
              "the 7 others. What probability does a softmax give to a 1 among seven 0s? "
              "The loss of the row is -log of it, and every row and every column is alike.",
    solution_text="```python\nprediction_perfect = math.log(1 + 7 / math.e)   # about 1.27\n"
                  "```\nThe right caption gets e / (e + 7) ≈ 0.28, so the loss is "
                  "-log 0.28 = log(1 + 7/e) ≈ 1.27: far from 0 although the model is "
                  "perfect, and below log 8 ≈ 2.08. Only a large scale (a low temperature) "
                  "lets the loss of a perfect model go to 0.",
    points=1,
    predict=True,
)

CHANCE_BATCH = 128
# Accept 4.6 to 6.0: log 128 = 4.85 (what a model that cannot tell captions apart scores,
# the reasoning asked for) and 5.50 (where the lesson's untrained CLIP really starts).
START_CENTRE = 5.3
START_TOLERANCE = 0.7

q3 = Question(
    name="q3",
    variable="prediction_start",
    checker=value_checker(START_CENTRE, rtol=0, atol=START_TOLERANCE),
    hint_text="An untrained model cannot tell which of the N captions belongs to an image. "
              "If it gave each the same probability 1/N, what would -log(probability of the "
              "right one) be?",
    solution_text="```python\nprediction_start = math.log(128)   # about 4.85\n```\nA model "
                  "that cannot tell the captions apart gives each about 1/N, and "
                  "-log(1/N) = log N ≈ 4.85 for N = 128. An untrained model starts a little "
                  "above it (see the cell below).",
    points=1,
    predict=True,
)


# -- Q4: the training step -----------------------------------------------------------

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
    """Copies of a fresh course CLIP and of one fixed batch of 16 ShapeWorld pictures.

    Built once; every caller gets its own copies, so an answer that puts its model in
    another mode or writes into its batch changes nothing for the next check.
    """
    if not _FIXTURE:
        from mmlearn import clip, shapes, train
        with _random_state_kept():
            model, tokenizer = train.new_course_clip(seed=0)
            data = shapes.ShapeWorld(16, "train", seed=5)
            batch = (clip.to_model_input(data.images, model), tokenizer(data.captions))
        _FIXTURE.update(model=model, batch=batch)
    return copy.deepcopy(_FIXTURE["model"]), copy.deepcopy(_FIXTURE["batch"])


STEPS = 3  # steps checked on the fixed batch
LR = 0.0137  # an unusual rate: a step that updates the weights by hand, not with the
MOMENTUM = 0.5  # optimizer, does not guess it, nor the momentum that carries over steps


def _optimizer(model):
    """SGD with momentum: its update is a sum of gradients, so a loss written in another
    order (float rounding) gives the same weights. Adam's first steps move each weight by
    about ±lr whatever the size of its gradient, and would flip on rounding; so does a
    momentum of 0.9 by the third step. The step moves the weights by thousands of times
    the tolerance of ``_same``."""
    return torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Equal weights, up to the float rounding of a loss written in another order."""
    return all(torch.allclose(x.detach(), y.detach(), rtol=1e-3, atol=1e-5)
               for x, y in zip(a.parameters(), b.parameters()))


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


def _optimizer_calls_message(calls: int, step: int) -> str:
    if calls < step:
        return ("your function changes the weights without calling `optimizer.step()`. "
                "Let the optimizer update them: it holds the learning rate and the state "
                "(such as momentum or Adam's averages) that carry over from step to step.")
    return (f"after {step} call(s) of your function the optimizer took {calls} steps: take "
            f"exactly one per batch.")


def _check_training_step(run) -> None:
    """The learner's step and a plain one, in lockstep on copies of one model and batch.

    Lockstep, so that no snapshot of the weights is kept: both models are compared after
    each step while they exist (a kernel on Binder has 2 GiB for everything).
    """
    with _random_state_kept():
        reference, batch = _fixture()
        reference.train()
        reference_optimizer = _optimizer(reference)
        model, learner_batch = _fixture()
        model.train()
        optimizer = _optimizer(model)
        steps_taken = []
        optimizer.register_step_post_hook(lambda *_: steps_taken.append(1))
        for step in range(1, STEPS + 1):
            torch.manual_seed(0)
            expected = _reference_step(reference, batch, reference_optimizer)
            torch.manual_seed(0)
            got = _as_number(run(model, learner_batch, optimizer), step)
            if not model.training:
                raise Incorrect("after your function the model is in eval mode "
                                "(`model.eval()`). A training step leaves the model in train "
                                "mode, as it was given: there batch norm uses the batch's own "
                                "statistics, and the loss and gradients differ from eval "
                                "mode's.")
            if step == 1 and _same(model, _FIXTURE["model"]):
                raise Incorrect("after one call of your function the model's weights have not "
                                "changed: the optimizer never took its step (or the gradients "
                                "were cleared before it did).")
            if len(steps_taken) != step:
                raise Incorrect(_optimizer_calls_message(len(steps_taken), step))
            if not _same_loss(got, expected):
                if _same_loss(got, _loss_now(reference, batch)):
                    raise Incorrect(f"at step {step} your function returned the loss of the "
                                    f"model *after* its update. Return the loss that the "
                                    f"gradients were computed from, before the step.")
                raise Incorrect(f"at step {step} your function returned {got:.4f}, which is "
                                f"not the contrastive loss of the batch before the update. "
                                f"Call the model on the batch's images and tokens, in the "
                                f"train mode it was given in (not `model.eval()`), and use "
                                f"the contrastive loss (`loss_fn`) of what it returns.")
            if not _same(model, reference):
                if step == 1:
                    raise Incorrect("after one step the weights differ from those of a plain "
                                    "step (loss, backward, optimizer step) on the same batch: "
                                    "let `optimizer` update the weights (its learning rate and "
                                    "momentum are its own, not yours to choose).")
                raise Incorrect(f"step 1 matches a plain step, but step {step} does not: "
                                f"something carries over from one call to the next. What "
                                f"does `backward()` do to `.grad` when it is already there?")


def _same_loss(got: float, expected: float) -> bool:
    return abs(got - expected) <= 1e-4 * max(1.0, abs(got))


def _loss_now(model, batch) -> float:
    """The loss a plain step would return next: the model's loss after its last update."""
    torch.manual_seed(0)
    images, tokens = batch
    with torch.no_grad():
        return losses.clip_loss(*model(images, tokens)).item()


q4 = Question(
    name="q4",
    variable="training_step",
    checker=behaviour_checker(_check_training_step, time_limit=20.0),
    hint_text="Four things, in an order that works: compute the loss of the batch from what "
              "`model(images, tokens)` returns (features of both kinds and the scale: the "
              "three arguments of `loss_fn`, your `contrastive_loss`); clear the gradients "
              "left by the previous step; backpropagate; let the optimizer update the "
              "weights. Return the loss you computed first, as a number.",
    solution_text="```python\ndef training_step(model, batch, optimizer):\n"
                  "    images, tokens = batch\n"
                  "    image_features, text_features, logit_scale = model(images, tokens)\n"
                  "    loss = loss_fn(image_features, text_features, logit_scale)\n"
                  "    optimizer.zero_grad()\n"
                  "    loss.backward()\n"
                  "    optimizer.step()\n"
                  "    return loss.item()\n```\n`loss_fn` is your `contrastive_loss` (or "
                  "`losses.clip_loss` while yours does not pass q1). Without `zero_grad()`, "
                  "`backward()` adds the new gradients to the old ones, and every step also "
                  "repeats the ones before.",
    time_limit=120.0,
    points=3,
    forbidden=(_reference_step,),
)
