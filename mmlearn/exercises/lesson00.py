"""Exercises of lesson 00: the two small computations every later lesson rests on.

CLIP compares an image and a caption by the cosine of the angle between their
vectors, and turns a row of similarities into probabilities with a softmax whose
sharpness is set by a temperature.

Q1 (build): ``cosine_similarity``, which the lesson then uses to score captions.
Q2 (predict, then run): how sure is a softmax of cosine similarities, at temperature 1?
Q3: find the temperature that makes the best of three close captions 90 % likely.
"""

import math

import torch

from mmlearn.exercises.core import Incorrect, Question, choice_checker, function_checker


def _cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


_generator = torch.Generator().manual_seed(0)
_cases = [
    (torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])),
    (torch.tensor([3.0, 4.0]), torch.tensor([6.0, 8.0])),
    (torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0, -2.0, -3.0])),
    (torch.randn(4, 8, generator=_generator), torch.randn(4, 8, generator=_generator) * 5),
    # one image vector against several caption vectors, as the lesson uses it
    (torch.randn(1, 8, generator=_generator) * 30, torch.randn(5, 8, generator=_generator) * 3),
]

q1 = Question(
    name="q1",
    variable="cosine_similarity",
    checker=function_checker(_cosine_similarity, _cases),
    hint_text="The cosine of the angle between two vectors is their dot product divided by "
              "the product of their lengths (`.norm`). Do every sum and every length over "
              "the last dimension only (`dim=-1`): then a batch of vectors works too, and "
              "one vector of shape [1, D] against N of shape [N, D] gives N numbers.",
    solution_text="```python\ndef cosine_similarity(a, b):\n"
                  "    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))\n```\n"
                  "`torch.nn.functional.cosine_similarity(a, b, dim=-1)` does the same.",
)

q2 = Question(
    name="q2",
    variable="prediction_t1",
    checker=choice_checker("c", "abc", why_not={
        "a": "a softmax at temperature 1 turns the differences of the scores into ratios "
             "e^(s1 - s2). Cosine similarities lie between -1 and 1, so how large can those "
             "ratios be?",
        "b": "a softmax keeps the order of the scores: the largest score always gets the "
             "largest probability, it just may not get much more than the others.",
    }),
    hint_text="Cosine similarities lie between -1 and 1. At temperature 1 a softmax gives "
              "caption j the weight e^(s_j); how far apart can e^(s_j) of four captions be "
              "when the s_j differ by about 1?",
    solution_text='```python\nprediction_t1 = "c"\n```\nThe scores differ by about 1, so '
                  "the weights e^s differ by about a factor e ≈ 2.7: the right caption "
                  "gets the most, but under a half. Only dividing by a small temperature makes "
                  "the softmax sure.",
)

# Similarities of one picture to three captions that score close together.
SIMILARITIES = torch.tensor([0.30, 0.25, 0.10])
TARGET_PROBABILITY = 0.9
TOLERANCE = 0.01  # in probability


def _best_probability(temperature: float) -> float:
    return torch.softmax(SIMILARITIES / temperature, dim=0)[0].item()


def _check_temperature(answer) -> None:
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise Incorrect(f"expected a number (the temperature), got a {type(answer).__name__}.")
    if not math.isfinite(answer) or answer <= 0:
        raise Incorrect("a temperature is a positive number: the scores are divided by it.")
    best = _best_probability(float(answer))
    if abs(best - TARGET_PROBABILITY) > TOLERANCE:
        way = ("too sharp: raise the temperature" if best > TARGET_PROBABILITY
               else "not sharp enough: lower the temperature")
        raise Incorrect(f"at temperature {answer:.4g} the first caption gets {best:.3f}, "
                        f"{way}.")


q3 = Question(
    name="q3",
    variable="temperature_for_90",
    checker=_check_temperature,
    hint_text="The smaller the temperature, the larger the best caption's probability. Try a "
              "few temperatures and print the probability for each; then narrow the range "
              "between one that is too small and one that is too large (halving it each "
              "time is called bisection).",
    solution_text="```python\nlow, high = 0.001, 1.0   # 0.9 is reached between these two\n"
                  "for _ in range(50):\n"
                  "    middle = (low + high) / 2\n"
                  "    if torch.softmax(SIMILARITIES / middle, dim=0)[0] > 0.9:\n"
                  "        low = middle      # too sharp: the answer is higher\n"
                  "    else:\n"
                  "        high = middle\n"
                  "temperature_for_90 = middle\n```\nAbout 0.023, three times lower than "
                  "CLIP's starting 0.07: with captions this close, a model has to learn a "
                  "low temperature to be sure. CLIP learns its temperature during training.",
)
