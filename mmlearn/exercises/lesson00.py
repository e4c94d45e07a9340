"""Exercises of lesson 00: the two small computations every later lesson rests on.

CLIP compares an image and a caption by the cosine of the angle between their
vectors, and turns a row of similarities into probabilities with a softmax whose
sharpness is set by a temperature. The learner writes both; the lesson then runs them.

Q1 (build, 3 points): ``cosine_similarity(a, b)``, which the lesson uses to score captions.
Q2 (build, 3 points): ``softmax_with_temperature(scores, temperature)``, which turns those
scores into probabilities (and Q4's search can use it).
Q3 (predict, 1 point): how sure is a softmax of cosine similarities at temperature 1?
Four choices, each with a line of why.
Q4 (compute, 2 points): the temperature that makes the best of three close captions 90 %
likely.

Both builds are checked on inputs drawn afresh at every check, and refuse the library
functions that would do the work (``forbidden``).
"""

import math

import torch
import torch.nn.functional as F

from mmlearn import losses
from mmlearn.exercises.core import (
    Incorrect,
    Question,
    check_cases,
    choice_checker,
    fresh_generator,
)

# -- shared by the two builds ---------------------------------------------------------

RTOL, ATOL = 1e-4, 1e-6



# -- Q1: cosine similarity ------------------------------------------------------------

def _cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def _cosine_cases(generator: torch.Generator) -> list[tuple]:
    """Vectors of any length and direction, single and in batches, drawn afresh."""
    def vectors(*shape, scale=1.0):
        return torch.randn(*shape, generator=generator) * scale

    def length() -> float:  # lengths from 0.1 to 100: the answer must not depend on them
        return float(10 ** (torch.rand(1, generator=generator).item() * 3 - 1))

    d = int(torch.randint(3, 12, (1,), generator=generator))
    a = vectors(d)
    ortho = vectors(d)
    ortho = ortho - (ortho @ a) / (a @ a) * a  # at right angles to a: similarity 0
    return [
        (a, a * length()),                                  # same direction: 1
        (a * length(), -a * length()),                      # opposite: -1
        (a * length(), ortho * length()),                   # orthogonal: 0
        (vectors(4, d, scale=length()), vectors(4, d, scale=length())),  # a batch of pairs
        # one picture's vector against five captions' vectors, as the lesson uses it
        (vectors(1, d, scale=length() * 10), vectors(5, d, scale=length())),
    ]


def _cosine_mistakes(a: torch.Tensor, b: torch.Tensor) -> list[tuple]:
    dot = (a * b).sum(-1)
    return [
        (dot, "these are the dot products of the vectors; the cosine also divides by "
              "both lengths, so that it ignores how long the vectors are."),
        (dot / a.norm(dim=-1), "you divide by the length of `a` only; divide by the "
                               "length of `b` too."),
        (dot / b.norm(dim=-1), "you divide by the length of `b` only; divide by the "
                               "length of `a` too."),
        ((a * b).sum() / (a.norm() * b.norm()), "you summed over every number of the batch "
                                                "at once; do each sum and each length over "
                                                "the last dimension only (`dim=-1`)."),
    ]


def _check_cosine(fn) -> None:
    check_cases(fn, _cosine_similarity, _cosine_cases(fresh_generator()), _cosine_mistakes,
                rtol=RTOL, atol=ATOL)


q1 = Question(
    name="q1",
    variable="cosine_similarity",
    checker=_check_cosine,
    hint_text="The cosine of the angle between two vectors is their dot product divided by "
              "the product of their lengths (`.norm`). Do every sum and every length over "
              "the last dimension only (`dim=-1`): then a batch of vectors works too, and "
              "one vector of shape [1, D] against N of shape [N, D] gives N numbers.",
    solution_text="```python\ndef cosine_similarity(a, b):\n"
                  "    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))\n```\n"
                  "The product `a * b` broadcasts [1, D] against [N, D], and `.sum(-1)` adds "
                  "over the D numbers of each vector.",
    time_limit=30.0,
    points=3,
    # torch.nn.CosineSimilarity and F.cosine_embedding_loss (and its module) end in these
    # two builtins, so they are refused through them. (Listing a class would also refuse
    # its __call__, which is nn.Module's own and shared by every module.)
    forbidden=(torch.nn.functional.cosine_similarity, torch.cosine_embedding_loss,
               losses.similarity_matrix, _cosine_similarity),
)


# -- Q2: softmax with a temperature ---------------------------------------------------

def _softmax_with_temperature(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(scores / temperature, dim=-1)


OVERFLOW = 88.7  # float32's exp is infinite above log(3.4e38)
OVERFLOW_FLOAT64 = 709.8  # and float64's above log(1.8e308)
UNDERFLOW = 103.9  # float32's exp is 0 below -103.9 (the smallest subnormal, 1.4e-45)


def _softmax_cases(generator: torch.Generator) -> list[tuple]:
    """Rows of scores and temperatures as CLIP meets them, plus rows a plain exp overflows
    (in float64 too) and a batch whose rows lie far apart (a batch-wide maximum fails)."""
    def uniform(low, high) -> float:
        return low + (high - low) * torch.rand(1, generator=generator).item()

    def similarities(*shape):  # cosine similarities lie in [-1, 1]
        return torch.rand(*shape, generator=generator) * 2 - 1

    n = int(torch.randint(3, 8, (1,), generator=generator))
    # scores / T from 1000 up: e^x is infinite there in float32 and in float64 alike
    large = torch.rand(2, n, generator=generator) * 20 + uniform(1100, 1500)
    # one row near +0.9, one near -0.9, one anywhere: at T <= 0.008 the low row's scores / T
    # lie more than 200 below the batch's largest, so e^(x - batch max) is 0 for all of them
    apart = torch.stack([similarities(n) * 0.05 + 0.9, similarities(n) * 0.05 - 0.9,
                         similarities(n)])
    apart = apart[torch.randperm(3, generator=generator)]
    return [
        (similarities(n), 1.0),                             # temperature 1: no change
        (similarities(n), uniform(0.2, 3.0)),               # one row of scores
        (similarities(4, n), uniform(0.05, 0.5)),           # a batch: one softmax per row
        (similarities(n) * 0.3, uniform(0.01, 0.03)),       # close scores, a CLIP temperature
        (large, uniform(0.9, 1.1)),                         # e^(score / T) overflows
        (apart, uniform(0.004, 0.008)),                     # rows far apart in one batch
        (similarities(3, n) + 0.95, uniform(0.004, 0.008)),  # overflows: 0.95 / 0.005 = 190
    ]


def _softmax_mistakes(scores: torch.Tensor, temperature: float) -> list[tuple]:
    mistakes = [
        (torch.softmax(scores * temperature, dim=-1),
         "you multiply the scores by the temperature; divide them by it (a small "
         "temperature makes the softmax sharper)."),
        (torch.softmax(scores, dim=-1),
         "the temperature changes nothing in your function; divide the scores by it "
         "before the exponential."),
        ((scores / temperature).exp(),
         "these are the weights e^(s / T); divide each by the sum of its row so that "
         "the probabilities add up to 1."),
    ]
    if scores.ndim == 2:
        mistakes.append((torch.softmax(scores / temperature, dim=0),
                         "each column of yours sums to 1; every row is one softmax, so "
                         "sum over the last dimension (`dim=-1`)."))
        mistakes.append((torch.softmax((scores / temperature).flatten(), dim=0)
                         .reshape(scores.shape),
                         "the whole batch of yours sums to 1; every row is one softmax, "
                         "so sum over the last dimension (`dim=-1`, `keepdim=True`)."))
    return mistakes


def _dtype_message(got, scores: torch.Tensor, temperature: float) -> str | None:
    """The teaching message when an answer hands back another dtype than it was given."""
    if not isinstance(got, torch.Tensor) or got.dtype == scores.dtype:
        return None
    return (f"your function returns {got.dtype} for scores of {scores.dtype}: return "
            f"probabilities of the dtype it was given (the model that uses them computes in "
            f"{scores.dtype}). Computing in float64 does not remove the overflow either: "
            f"e^x is infinite in float64 above x ≈ {OVERFLOW_FLOAT64}.")


def _underflow_message(got, scores: torch.Tensor, temperature: float) -> str | None:
    """The teaching message when whole rows underflow: the batch's maximum was subtracted."""
    if not isinstance(got, torch.Tensor) or got.shape != scores.shape or scores.ndim != 2:
        return None
    sums = got.detach().double().sum(-1)
    dead = ~torch.isfinite(sums) | (sums == 0)  # 0 / 0, or a row of weights that are all 0
    tops = (scores / temperature).max(-1).values
    below = tops.max() - tops  # how far each row's largest value lies below the batch's
    if not dead.any() or dead[tops.argmax()] or not bool((below[dead] > UNDERFLOW).all()):
        return None
    row = int(dead.nonzero()[0])
    return (f"row {row} of yours (counting from 0) sums to 0 or is NaN. Its largest "
            f"score / temperature is {below[row]:.0f} below the largest of the whole batch; "
            f"subtract that batch-wide value and every e^(x - m) of the row is below "
            f"e^-{UNDERFLOW:.0f}, which float32 rounds to 0: the row's weights sum to 0. "
            f"Subtract each row's own largest value.")


def _overflow_message(got, scores: torch.Tensor, temperature: float) -> str | None:
    """The teaching message when an answer breaks where e^(score / T) overflows."""
    if (scores / temperature).max() < OVERFLOW or not isinstance(got, torch.Tensor):
        return None
    if not got.is_floating_point() or bool(torch.isfinite(got).all()):
        return None
    return (f"scores / temperature reach {(scores / temperature).max():.0f} here, and "
            f"e^x is infinite in float32 above x ≈ {OVERFLOW} (in float64 above "
            f"{OVERFLOW_FLOAT64}), so your result holds NaN or infinity. Subtracting the same "
            f"number from every score of a row does not change its softmax: subtract the "
            f"row's largest score first.")


def _first_look(got, scores: torch.Tensor, temperature: float) -> str | None:
    """What an answer gets wrong before its values are compared, most telling first."""
    for look in (_dtype_message, _underflow_message, _overflow_message):
        message = look(got, scores, temperature)
        if message:
            return message
    return None


def _rows_message(got, scores: torch.Tensor, temperature: float) -> str | None:
    """The teaching message when the rows of an answer of the right shape do not sum to 1."""
    if not isinstance(got, torch.Tensor) or got.shape != scores.shape:
        return None
    sums = got.detach().double().sum(-1)
    if torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        return None
    return (f"the rows of yours add up to {sums.min():.3g} to {sums.max():.3g}, not 1: divide "
            f"each row's weights by their sum.")


def _check_softmax(fn) -> None:
    check_cases(fn, _softmax_with_temperature, _softmax_cases(fresh_generator()),
                _softmax_mistakes, first_look=_first_look, last_look=_rows_message,
                rtol=RTOL, atol=ATOL)


q2 = Question(
    name="q2",
    variable="softmax_with_temperature",
    checker=_check_softmax,
    hint_text="Divide the scores by the temperature, take `exp`, and divide each weight by "
              "the sum of its row, so that every row adds up to 1 (a sum over the last "
              "dimension that keeps that dimension, so that it lines up with the row). A small "
              "temperature makes the numbers large, and e^x is infinite in float32 above "
              "x ≈ 88.7: first subtract from each row its own largest value, found the same "
              "way as the sum. The softmax does not change, because "
              "e^(x - m) / Σ e^(x - m) = e^x / Σ e^x. Keep the dtype of the scores.",
    solution_text="```python\ndef softmax_with_temperature(scores, temperature):\n"
                  "    logits = scores / temperature\n"
                  "    logits = logits - logits.max(dim=-1, keepdim=True).values  # no overflow\n"
                  "    weights = logits.exp()\n"
                  "    return weights / weights.sum(dim=-1, keepdim=True)\n```\n"
                  "After the subtraction the largest logit of each row is 0, so every "
                  "weight lies between 0 and 1, and the sum is at least 1.",
    time_limit=30.0,
    points=3,
    # Modules by their forward (a class would stand for nn.Module.__call__ too, see q1).
    forbidden=(torch.softmax, torch.nn.functional.softmax, torch.Tensor.softmax,
               torch.special.softmax, torch._softmax, torch.nn.Softmax.forward,
               torch.log_softmax, torch.nn.functional.log_softmax, torch.Tensor.log_softmax,
               torch.special.log_softmax, torch._log_softmax, torch.nn.LogSoftmax.forward,
               torch.nn.functional.softmin, torch.nn.Softmin.forward, F.gumbel_softmax,
               _softmax_with_temperature),
)


# -- Q3: predict how sure a softmax of cosine similarities is --------------------------

q3 = Question(
    name="q3",
    variable="prediction_t1",
    checker=choice_checker("c", "abcd", reason=True, why_not={
        "a": "a softmax at temperature 1 turns the differences of the scores into ratios "
             "e^(s1 - s2). Cosine similarities lie between -1 and 1, so how large can those "
             "ratios be?",
        "b": "a softmax keeps the order of the scores: the largest score always gets the "
             "largest probability, it just may not get much more than the others.",
        "d": "to take more than the three others together, the right caption's e^s must beat "
             "their sum. The wrong captions here are partly right (the same colour, the same "
             "shape), so their cosines are far above -1: how far ahead can e^0.83 be?",
    }),
    hint_text="Cosine similarities lie between -1 and 1. At temperature 1 a softmax gives "
              "caption j a weight proportional to e^(s_j); how far apart can the weights of "
              "four captions be when their s_j lie between -1 and 1?",
    solution_text='```python\nprediction_t1 = "c: cosines lie between -1 and 1, so the '
                  'weights e^s differ by a factor of a few"\n```\nCosine similarities lie '
                  "between -1 and 1, so two scores differ by at most 2 and their weights e^s "
                  "by at most a factor e^2 ≈ 7.4. Here the right caption's 0.83 lies 0.37 "
                  "above the next score (0.46) and 1.08 above the last (-0.25): its weight is "
                  "1.4 to 2.9 times theirs, the most of the four but under a half. Only "
                  "dividing by a small temperature makes the softmax sure.",
    points=1,
    predict=True,
)


# -- Q4: a temperature for 90 % -------------------------------------------------------

# Similarities of one picture to three captions: two close together, and a third.
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


q4 = Question(
    name="q4",
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
                  "temperature_for_90 = middle\n```\n(Your own "
                  "`softmax_with_temperature(SIMILARITIES, middle)[0]` does the same as the "
                  "`torch.softmax` line.) About 0.023, three times lower than CLIP's "
                  "starting 0.07: with two captions this close, only a low temperature makes "
                  "the model sure.",
    points=2,
)
