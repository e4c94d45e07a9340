"""Exercises of lesson 06: diffusion's forward jump, classifier-free guidance, and a prediction.

Q1 predicts, before the lesson shows it, what guidance scale 0 draws; Q2 builds the
forward jump q(x_t | x_0), with which the lesson then noises a picture; Q3 builds the
classifier-free guidance combination, which the lesson's hand-written sampling loop uses.
"""

import torch

from mmlearn import diffusion
from mmlearn.exercises.core import (
    Incorrect,
    Question,
    behaviour_checker,
    choice_checker,
    function_checker,
)

# ---------------------------------------------------------------------------- Q1

q1 = Question(
    name="q1",
    variable="prediction_scale_zero",
    checker=choice_checker("b", "abc", why_not={
        "a": "at scale 0 the formula eps_u + 0 * (eps_c - eps_u) keeps only eps_u: the "
             "condition is not used at all. Run the cell below.",
        "c": "the unconditional model was trained too (on the 10 % of steps whose condition "
             "was dropped), so it denoises into ShapeWorld pictures, only not the asked "
             "ones. Run the cell below."}),
    hint_text="Write out eps_u + scale * (eps_c - eps_u) for scale = 0. Which model is left, "
              "and what did that model learn in training?",
    solution_text="```python\nprediction_scale_zero = \"b\"\n```\nScale 0 leaves the "
                  "unconditional model alone: it learnt to draw ShapeWorld pictures in "
                  "general, so it draws some shape in some colour, whatever the prompt.",
)


# ---------------------------------------------------------------------------- Q2


def _forward_cases() -> list[tuple]:
    schedule = diffusion.cosine_schedule(200)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 16, 8, 8, generator=g), torch.randn(4, 16, 8, 8, generator=g)
    return [(x0, torch.tensor([0, 50, 120, 199]), noise, schedule),
            (x0[:1], torch.tensor([100]), noise[:1], schedule),
            (torch.ones(2, 3, 4, 4), torch.tensor([10, 190]), torch.zeros(2, 3, 4, 4),
             diffusion.cosine_schedule(200))]


q2 = Question(
    name="q2",
    variable="add_noise",
    checker=function_checker(diffusion.add_noise, _forward_cases(), rtol=1e-4, atol=1e-5),
    hint_text="x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * noise, with "
              "abar_t = schedule.alpha_bar[t] (one number per sample: reshape it to "
              "[B, 1, 1, 1] with `.view(-1, 1, 1, 1)` so it multiplies whole pictures, and "
              "make it float32 with `.float()`).",
    solution_text="```python\ndef add_noise(x0, t, noise, schedule):\n"
                  "    abar = schedule.alpha_bar[t].float().view(-1, 1, 1, 1)\n"
                  "    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise\n```",
)


# ---------------------------------------------------------------------------- Q3


def _check_guidance(run) -> None:
    """The combination by value for several scales, and scale 0 = unconditional exactly."""
    g = torch.Generator().manual_seed(1)
    uncond, cond = torch.randn(3, 16, 8, 8, generator=g), torch.randn(3, 16, 8, 8, generator=g)
    for scale in (0.0, 1.0, 3.0, 7.5):
        got = torch.as_tensor(run(uncond.clone(), cond.clone(), scale))
        if got.shape != uncond.shape:
            raise Incorrect(f"the result should have the noise guesses' shape "
                            f"{tuple(uncond.shape)}, yours has {tuple(got.shape)}.")
        want = uncond + scale * (cond - uncond)
        if not torch.allclose(got.float(), want, atol=1e-5):
            if scale == 0:
                raise Incorrect("at scale 0 the result must be the unconditional guess itself.")
            if scale == 1:
                raise Incorrect("at scale 1 the result must be the conditional guess itself.")
            raise Incorrect(f"at scale {scale} the result differs from the guided guess: start "
                            f"from the unconditional one and move `scale` times the "
                            f"difference towards the conditional one.")


q3 = Question(
    name="q3",
    variable="guide",
    checker=behaviour_checker(_check_guidance),
    hint_text="Start at the unconditional guess and step `scale` times the difference "
              "(conditional minus unconditional) away from it.",
    solution_text="```python\ndef guide(eps_uncond, eps_cond, scale):\n"
                  "    return eps_uncond + scale * (eps_cond - eps_uncond)\n```",
)
