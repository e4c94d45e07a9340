"""Exercises of lesson 04: the pieces of VQGAN+CLIP, written by the learner.

Q1 writes the spherical distance loss, Q2 parses a weighted prompt, Q3 writes the
straight-through estimator (checked on its value *and* its gradient), Q4 counts tokens.
"""

import math

import torch

from mmlearn import generate
from mmlearn.exercises.core import (
    Incorrect,
    NotAttempted,
    Question,
    function_checker,
    unit_vectors,
    value_checker,
)


def _parse_prompt(spec: str) -> list[tuple[str, float]]:
    return [(part.text, part.weight) for part in generate.parse_prompts(spec)]


def _check_straight_through(fn) -> None:
    """Forward: exactly z_q. Backward: the gradient reaches z unchanged (and not z_q)."""
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(1, 4, 3, 3, generator=generator, requires_grad=True)
    z_q = torch.randn(1, 4, 3, 3, generator=generator, requires_grad=True)
    try:
        out = fn(z, z_q)
    except NotImplementedError:
        raise NotAttempted() from None
    if not isinstance(out, torch.Tensor) or out.shape != z.shape:
        raise Incorrect("return a tensor of the same shape as z.")
    if not torch.allclose(out, z_q, atol=1e-6):
        raise Incorrect("going forward the result must equal z_q (the decoder sees real codes).")
    if not out.requires_grad:
        raise Incorrect("the value is right, but no gradient can flow back through it: "
                        "the optimiser would never move z.")
    weights = torch.arange(out.numel(), dtype=torch.float32).view_as(out)
    (out * weights).sum().backward()
    if z.grad is None or not torch.allclose(z.grad, weights):
        raise Incorrect("the value is right, but the gradient with respect to z should be "
                        "the incoming gradient, unchanged. Which part must be detached?")
    if z_q.grad is not None and z_q.grad.abs().sum() > 0:
        raise Incorrect("the value is right, but the gradient also flows into z_q; in VQGAN+CLIP "
                        "only z is optimised, and the codebook lookup should get no gradient.")


q1 = Question(
    name="q1",
    variable="spherical_distance",
    checker=function_checker(generate.spherical_distance, [
        (unit_vectors(8, seed=0), unit_vectors(8, seed=1)),
        (unit_vectors(5, 16, seed=2), unit_vectors(5, 16, seed=3)),
        (unit_vectors(4, seed=4), unit_vectors(4, seed=4)),
    ], atol=1e-5),
    hint_text="For unit vectors a and b: take the length of a - b along the last dimension "
              "(`.norm(dim=-1)`), halve it, take `torch.arcsin`, square it, double it.",
    solution_text="```python\ndef spherical_distance(a, b):\n"
                  "    return 2 * ((a - b).norm(dim=-1) / 2).arcsin().pow(2)\n```\n"
                  "|a - b| = 2 sin(θ/2) for unit vectors at angle θ, so this is θ²/2.",
)

q2 = Question(
    name="q2",
    variable="parse_prompt",
    checker=function_checker(_parse_prompt, [
        ("a red circle",),
        ("a red circle:1 | blue:-0.5",),
        ("a big star:2|a small star:-1|green",),
        ("a photo: a cat:0.5",),
    ]),
    hint_text="`spec.split('|')` gives the parts. In each part, the weight is whatever follows "
              "the *last* colon (`part.rpartition(':')`); without a colon the weight is 1. "
              "Strip the spaces around the text and turn the weight into a float.",
    solution_text="```python\ndef parse_prompt(spec):\n    parts = []\n"
                  "    for part in spec.split('|'):\n"
                  "        if ':' in part:\n            text, _, weight = part.rpartition(':')\n"
                  "        else:\n            text, weight = part, '1'\n"
                  "        parts.append((text.strip(), float(weight)))\n    return parts\n```",
)

q3 = Question(
    name="q3",
    variable="straight_through",
    checker=_check_straight_through,
    hint_text="You need an expression that *equals* z_q, but whose gradient with respect to z "
              "is 1. Start from z, and add the difference z_q - z with its gradient switched "
              "off (`.detach()`).",
    solution_text="```python\ndef straight_through(z, z_q):\n"
                  "    return z + (z_q - z).detach()\n```",
)

q4 = Question(
    name="q4",
    variable="pretrained_tokens",
    checker=value_checker((256 // 16) ** 2),
    hint_text="taming's f16 model: every token covers a 16x16 square of pixels. How many such "
              "squares tile a 256x256 image?",
    solution_text="```python\npretrained_tokens = (256 // 16) ** 2   # 16 x 16 = 256 tokens\n```\n"
                  f"Each is one of 16,384 codes: about 10^{256 * math.log10(16384):.0f} "
                  "possible token grids, which is why a random one is almost never a picture.",
)
