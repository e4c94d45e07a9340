"""Exercises of lesson 04: the pieces of VQGAN+CLIP, written by the learner.

Q1 predicts what a negative prompt draws (before the lesson shows it), Q2 parses a
weighted prompt, Q3 writes the straight-through estimator (checked on its value *and*
its gradient), Q4 counts tokens, Q5 builds one step of VQGAN+CLIP (checked by what 40 of
its steps do to a picture), with which the lesson then paints.
"""

import functools
import math

import torch

from mmlearn import generate
from mmlearn.exercises.core import (
    Incorrect,
    NotAttempted,
    Question,
    choice_checker,
    function_checker,
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


q2 = Question(
    name="q2",
    variable="parse_prompt",
    checker=function_checker(_parse_prompt, [
        ("a red circle",),
        ("a red circle:1 | blue:-0.5",),
        ("a big star:2|a small star:-1|green",),
        ("a photo: a cat:0.5",),
    ]),
    hint_text="First cut the spec into its parts at each '|'. In each part, the weight is "
              "whatever follows the *last* colon (a text may contain a colon too); without "
              "a colon the weight is 1. Strip the spaces around the text; the weight is a "
              "float.",
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
    hint_text="You need an expression whose *value* is z_q, but whose gradient with respect "
              "to z is 1, as if quantising were the identity. Which tensor does the gradient "
              "have to flow through, and which part of the expression must it not see?",
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


# ---------------------------------------------------------------------------- Q1

q1 = Question(
    name="q1",
    variable="prediction_negative",
    checker=choice_checker("b", "abc", why_not={
        "a": "the weight on 'purple' is negative: the loss falls as the picture moves *away* "
             "from CLIP's idea of purple. Run the cell below.",
        "c": "the first part, 'a circle' with weight 1, still pulls towards a circle; only "
             "purple is pushed away. Run the cell below."}),
    hint_text="The loss adds each part's distance times its weight. With a negative weight, "
              "what lowers the loss: moving towards 'purple' or away from it? And which part "
              "still pulls towards a circle?",
    solution_text="```python\nprediction_negative = \"b\"\n```\nThe positive part still pulls "
                  "towards a circle; the negative part rewards every step *away* from CLIP's "
                  "idea of purple, so the optimiser picks another colour.",
)


# ---------------------------------------------------------------------------- Q5

STEPS, PROMPT = 40, "a red star"


@functools.lru_cache(maxsize=1)
def _course_models():
    from mmlearn.clip import load_clip
    from mmlearn.vqgan import load_course_vqgan

    return load_course_vqgan("cpu"), load_clip("course", "cpu", verbose=False)


def _similarity(z: torch.Tensor, vqgan, clip, target: torch.Tensor) -> tuple[float, object]:
    """CLIP's cosine similarity of the picture z decodes to and the prompt, and the picture."""
    with torch.no_grad():
        image = generate.decode_latent(vqgan, z)
        embedding = clip.model.encode_image(clip.normalize(image))
        embedding = torch.nn.functional.normalize(embedding, dim=-1)
    return float(embedding[0] @ target[0]), image


def paint_with(step, prompt: str, vqgan, clip, steps: int = STEPS, seed: int = 0,
               lr: float = 0.1) -> tuple[list, list[float]]:
    """Run a learner's ``step(z, optimizer, target, vqgan, clip)`` from a random latent.

    Returns the pictures (uint8 [1, 3, H, W], one every 10 steps and the last) and the
    losses the step returned. The cutouts draw from torch's global generator: it is
    seeded here and restored afterwards.
    """
    target = clip.encode_texts([prompt]).to(clip.device)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        z = generate.random_latent(vqgan, 32, seed).detach().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        frames, losses = [], []
        for i in range(steps):
            if i % 10 == 0:
                frames.append(_similarity(z, vqgan, clip, target)[1])
            losses.append(step(z, optimizer, target, vqgan, clip))
        frames.append(_similarity(z, vqgan, clip, target)[1])
    return [(f.clamp(0, 1) * 255).round().byte() for f in frames], losses


def _check_paint_step(fn) -> None:
    """Behaviour: one call moves z; 40 calls bring the picture closer to 'a red star'
    in CLIP's eyes, and the independent judge sees red."""
    from mmlearn import judge

    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    vqgan, clip = _course_models()
    target = clip.encode_texts([PROMPT])
    start = generate.random_latent(vqgan, 32, 0)
    before, _ = _similarity(start, vqgan, clip, target)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        z = start.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=0.1)
        for i in range(STEPS):
            try:
                loss = fn(z, optimizer, target, vqgan, clip)
            except NotImplementedError:
                raise NotAttempted() from None
            except Exception as error:  # the learner's bug, reported as feedback
                raise Incorrect(f"step {i + 1} raised {type(error).__name__}: {error}") from None
            if i == 0:
                if isinstance(loss, torch.Tensor) and loss.numel() == 1:
                    loss = loss.item()
                if not isinstance(loss, (int, float)) or not math.isfinite(loss):
                    raise Incorrect("return the loss of the step as a number (`loss.item()`).")
                if torch.equal(z.detach(), start):
                    raise Incorrect("after one step z has not changed: either no gradient "
                                    "reached it (is the snapping to codes straight-through?) "
                                    "or the optimiser never stepped.")
    after, image = _similarity(z, vqgan, clip, target)
    if after < before + 0.1:
        raise Incorrect(f"after {STEPS} steps CLIP's similarity between the picture and "
                        f"{PROMPT!r} went from {before:.2f} to {after:.2f}; it should rise "
                        f"clearly. Is the loss a distance that the step makes smaller?")
    verdict = judge.judge_images((image.clamp(0, 1) * 255).round().byte())[0]
    if verdict.colour != "red":
        raise Incorrect(f"CLIP likes the picture better ({before:.2f} -> {after:.2f}), but the "
                        f"judge sees mostly {verdict.colour}, not red.")


q5 = Question(
    name="q5",
    variable="paint_step",
    checker=_check_paint_step,
    hint_text="Follow the pipeline drawn in Part 3, one line per arrow: snap z to its nearest "
              "codes *straight-through* (your Q3, with `vqgan.nearest_codes` and "
              "`vqgan.lookup_codes`), decode, map to [0, 1], make cutouts, embed them with "
              "`clip.model.encode_image` (after `clip.normalize`), normalise, "
              "take the mean spherical distance to `target`, then zero the gradients, "
              "backward, step. Return `loss.item()`.",
    solution_text="```python\ntransform = generate.cutout_transform(32)\n\n"
                  "def paint_step(z, optimizer, target, vqgan, clip):\n"
                  "    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))\n"
                  "    image = to_unit_range(vqgan.decode(straight_through(z, z_q)))\n"
                  "    views = generate.make_cutouts(image, 16, transform)\n"
                  "    embeddings = clip.model.encode_image(clip.normalize(views))\n"
                  "    embeddings = torch.nn.functional.normalize(embeddings, dim=-1)\n"
                  "    loss = generate.spherical_distance(embeddings, target).mean()\n"
                  "    optimizer.zero_grad()\n    loss.backward()\n    optimizer.step()\n"
                  "    return loss.item()\n```\n`generate.generation_step` is the same, with "
                  "weighted prompts, several guides and the clamp to the codebook's range.",
)
