"""Exercises of lesson 05: DALL-E's token stream, its causal mask, and how it samples.

Q1 counts DALL-E 1's sequence, Q2 builds the causal mask, Q3 writes top-k filtering,
Q4 writes softmax with a temperature.
"""

import torch

from mmlearn import dalle
from mmlearn.exercises.core import (
    Incorrect,
    NotAttempted,
    Question,
    function_checker,
    value_checker,
)


def _check_mask(fn) -> None:
    """Run the learner's causal_mask on a few sizes and say what is wrong, in words."""
    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    for n in (1, 4, 76):
        try:
            mask = torch.as_tensor(fn(n))
        except NotImplementedError:
            raise NotAttempted() from None
        except Exception as error:  # the learner's bug, reported as feedback
            raise Incorrect(f"causal_mask({n}) raised {type(error).__name__}: {error}") from None
        if mask.shape != (n, n):
            raise Incorrect(f"causal_mask({n}) has shape {tuple(mask.shape)}, not ({n}, {n}).")
        if mask.dtype != torch.bool:
            raise Incorrect(f"causal_mask({n}) holds {mask.dtype}; use True/False (torch.bool).")
        if mask.triu(1).any():
            raise Incorrect(f"in causal_mask({n}) some position may look at a *later* one "
                            f"(True above the diagonal): that is the future it must predict.")
        if not mask.equal(dalle.causal_mask(n)):
            raise Incorrect(f"in causal_mask({n}) some position may not look at itself or at "
                            f"an earlier position; it should see all of them.")


def _probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits / temperature, dim=-1)


def _logits(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3


q1 = Question(
    name="q1",
    variable="dalle1_sequence_length",
    checker=value_checker(256 + 32 * 32),
    hint_text="DALL-E 1 reads up to 256 text tokens, then the image: a 256x256 picture that its "
              "discrete VAE turns into a 32x32 grid of tokens. How many tokens in total?",
    solution_text="```python\ndalle1_sequence_length = 256 + 32 * 32  # 1280\n```\n"
                  "The course's tiny DALL-E reads 12 + 8 * 8 = 76. Attention compares every "
                  "position with every earlier one, so its cost grows with the square of this "
                  "length: (1280 / 76)^2, almost 300 times more per layer.",
)

q2 = Question(
    name="q2",
    variable="causal_mask",
    checker=_check_mask,
    hint_text="Return a bool tensor of shape [n, n] where `mask[i, j]` is True when position i "
              "may attend to position j: itself and everything before it (j <= i). "
              "`torch.tril` keeps the lower triangle of a matrix.",
    solution_text="```python\ndef causal_mask(n):\n"
                  "    return torch.ones(n, n, dtype=torch.bool).tril()\n```",
)

q3 = Question(
    name="q3",
    variable="top_k_filter",
    checker=function_checker(dalle.top_k_filter, [
        (torch.tensor([[1.0, 3.0, 2.0, 0.5]]), 2),
        (_logits(3, 256, seed=0), 1),
        (_logits(8, 256, seed=1), 64),
    ]),
    hint_text="For each row, find the k-th largest logit (`logits.topk(k, dim=-1).values` gives "
              "the k largest, largest first). Every logit smaller than it becomes "
              "`float('-inf')`, which softmax turns into probability 0 "
              "(`logits.masked_fill(condition, value)`).",
    solution_text="```python\ndef top_k_filter(logits, k):\n"
                  "    kth_largest = logits.topk(k, dim=-1).values[..., -1:]\n"
                  "    return logits.masked_fill(logits < kth_largest, float('-inf'))\n```",
)

q4 = Question(
    name="q4",
    variable="probabilities",
    checker=function_checker(_probabilities, [
        (torch.tensor([2.0, 1.0, 0.0]), 1.0),
        (torch.tensor([2.0, 1.0, 0.0]), 0.5),
        (_logits(4, 256, seed=2), 2.0),
    ]),
    hint_text="Divide the logits by the temperature, then take the softmax over the last "
              "dimension. A small temperature makes the largest logit win more often.",
    solution_text="```python\ndef probabilities(logits, temperature):\n"
                  "    return torch.softmax(logits / temperature, dim=-1)\n```",
)
