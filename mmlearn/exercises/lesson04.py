"""Exercises of lesson 04: the pieces of VQGAN+CLIP, written by the learner.

Q1 predicts what a negative prompt draws (committed with a reason before the lesson
shows it), Q2 parses a weighted prompt, Q3 writes the straight-through estimator
(checked on its value *and* its gradient), Q4 counts tokens, Q5 writes the spherical
distance (near-identical and opposite vectors included), and Q6 builds one step of
VQGAN+CLIP from the learner's Q3 and Q5 (checked by what 20 of its steps do to a
picture), with which the lesson then paints.

Every build question names the library functions that already do its work
(``forbidden``) and makes its test inputs afresh at every check. The step of Q6 gets
its own copies of the course VQGAN and CLIP, so an answer that trains, zeroes or
rewires them spoils nothing for the next check.
"""

import copy
import functools
import math

import torch
import torch.nn.functional as F

from mmlearn import vqgan, vqgan_clip
from mmlearn.exercises.core import (
    TIME_LIMIT,
    Incorrect,
    Question,
    call_learner,
    choice_checker,
    compare,
    fresh_generator,
    function_checker,
    value_checker,
)
from mmlearn.images import float_to_uint8

# ---------------------------------------------------------------------------- Q1

q1 = Question(
    name="q1",
    variable="prediction_negative",
    checker=choice_checker("c", "abcd", reason=True, why_not={
        "a": "naming a colour does not paint it: with a negative weight the loss falls as "
             "the picture moves *away* from CLIP's idea of purple, so purple is what goes.",
        "b": "-0.5 is half the weight of the circle part, far from nothing: the purple "
             "that 'a circle' alone gave is gone.",
        "d": "the parts do not cancel: each one pulls (or pushes) the picture on its own, "
             "and 'a circle' still pulls towards coloured shapes."}),
    hint_text="The loss adds each part's spherical distance times its weight. With a negative "
              "weight, which way does a step go to lower the loss: towards CLIP's idea of "
              "the text, or away from it?",
    solution_text="```python\nprediction_negative = \"c: the negative weight rewards every "
                  "step away from purple\"\n```\nThe positive part still pulls towards what "
                  "CLIP calls a circle; the negative part rewards every step *away* from "
                  "CLIP's idea of purple, so the optimiser paints in other colours.",
    predict=True,
    points=1,
)


# ---------------------------------------------------------------------------- Q2

def _parse_prompt(spec: str) -> list[tuple[str, float]]:
    return [(part.text, part.weight) for part in vqgan_clip.parse_prompts(spec)]


PROMPT_WORDS = ("a", "big", "small", "red", "blue", "green", "purple", "circle", "star",
                "square", "photo", "painting", "of", "cat")


def _prompt_cases(generator: torch.Generator) -> list[tuple[str]]:
    """Random weighted prompts: plain texts, weights with and without spaces, negative
    weights, parts without a weight, and a text with a colon of its own."""
    def words(n: int) -> str:
        picks = torch.randint(len(PROMPT_WORDS), (n,), generator=generator).tolist()
        return " ".join(PROMPT_WORDS[i] for i in picks)

    def weight(low: float, high: float) -> str:
        value = float(torch.empty(()).uniform_(low, high, generator=generator))
        return f"{value:.2f}".rstrip("0").rstrip(".")

    return [
        (words(3),),
        (f"{words(3)}:{weight(0.5, 3)} | {words(1)}:-{weight(0.1, 2)}",),
        (f"{words(2)}:{weight(1, 5)}|{words(2)}:-{weight(0.5, 2)}|{words(1)}",),
        (f"{words(1)}: {words(2)}:{weight(0.2, 2)}",),           # the text has a colon too
        (f"  {words(2)} : {weight(1, 3)}  |  {words(2)}  ",),     # spaces everywhere
    ]


q2 = Question(
    name="q2",
    variable="parse_prompt",
    checker=function_checker(_parse_prompt, _prompt_cases),
    hint_text="First cut the spec into its parts at each '|'. In each part, the weight is "
              "whatever follows the *last* colon (a text may contain a colon too); without "
              "a colon the weight is 1. Strip the spaces around the text; the weight is a "
              "float.",
    solution_text="```python\ndef parse_prompt(spec):\n    parts = []\n"
                  "    for part in spec.split('|'):\n"
                  "        if ':' in part:\n            text, _, weight = part.rpartition(':')\n"
                  "        else:\n            text, weight = part, '1'\n"
                  "        parts.append((text.strip(), float(weight)))\n    return parts\n```",
    forbidden=(vqgan_clip.parse_prompts, vqgan_clip.WeightedPrompt, _parse_prompt),
    points=3,
)


# ---------------------------------------------------------------------------- Q3

def _latent_pair(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A latent z and its 'codes' z_q, both of a random grid shape, both requiring grad."""
    channels, side = (int(n) for n in torch.randint(2, 9, (2,), generator=generator))
    z = torch.randn(1, channels, side, side, generator=generator)
    z_q = torch.randn(1, channels, side, side, generator=generator)
    return z.requires_grad_(True), z_q.requires_grad_(True)


def _check_straight_through(fn) -> None:
    """Forward: exactly z_q. Backward: the gradient reaches z unchanged (and not z_q)."""
    z, z_q = _latent_pair(fresh_generator())
    out = call_learner(fn, (z, z_q), copy=False, reference=vqgan.straight_through)
    if not isinstance(out, torch.Tensor) or out.shape != z.shape:
        raise Incorrect("return a tensor of the same shape as z.")
    if not torch.allclose(out, z_q, atol=1e-6):
        raise Incorrect("going forward the result must equal z_q (the decoder sees real codes).")
    if not out.requires_grad:
        raise Incorrect("the value is right, but no gradient can flow back through it: "
                        "the optimiser would never move z.")
    incoming = torch.randn(out.shape, generator=fresh_generator())
    (out * incoming).sum().backward()
    if z.grad is None or not torch.allclose(z.grad, incoming, atol=1e-6):
        raise Incorrect("the value is right, but the gradient with respect to z should be "
                        "the incoming gradient, unchanged. Which part must be detached?")
    if z_q.grad is not None and z_q.grad.abs().sum() > 0:
        raise Incorrect("the value is right, but the gradient also flows into z_q; in VQGAN+CLIP "
                        "only z is optimised, and the codebook lookup should get no gradient.")


q3 = Question(
    name="q3",
    variable="straight_through",
    checker=_check_straight_through,
    hint_text="You need an expression whose *value* is z_q, but whose gradient with respect "
              "to z is 1, as if quantising were the identity. Which tensor does the gradient "
              "have to flow through, and which part of the expression must it not see?",
    solution_text="```python\ndef straight_through(z, z_q):\n"
                  "    return z + (z_q - z).detach()\n```",
    forbidden=(vqgan.straight_through, vqgan.VQGAN.quantize_straight_through,
               vqgan.VQGAN.encode, vqgan.VQGAN.forward, vqgan_clip.decode_latent),
    points=3,
)


# ---------------------------------------------------------------------------- Q4

q4 = Question(
    name="q4",
    variable="pretrained_tokens",
    checker=value_checker((256 // 16) ** 2),
    hint_text="taming's f16 model: every token covers a 16x16 square of pixels. How many such "
              "squares tile a 256x256 image?",
    solution_text="```python\npretrained_tokens = (256 // 16) ** 2   # 16 x 16 = 256 tokens\n```\n"
                  f"Each is one of 16,384 codes: about 10^{256 * math.log10(16384):.0f} "
                  "possible token grids, which is why a random one is almost never a picture.",
    points=2,
)


# ---------------------------------------------------------------------------- Q5

def _unit(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=generator), dim=-1)


def _opposite_pairs(generator: torch.Generator, dim: int) -> torch.Tensor:
    """Unit vectors x (to pair with -x), half of them ones for which |x - (-x)| / 2 rounds
    to a hair above 1 in float32: the rows where an unclamped arcsin gives NaN."""
    candidates = _unit(generator, 512, dim)
    over = (2 * candidates).norm(dim=-1) / 2 > 1
    rows = torch.cat([candidates[over][:4], candidates[~over][:4]])
    return rows


def _distance_cases(generator: torch.Generator) -> list[tuple[str, tuple, float, float]]:
    """(what the case is, its arguments, rtol, atol) for the spherical distance."""
    near = _unit(generator, 6, 64)
    nudged = F.normalize(near + 1e-4 * torch.randn(6, 64, generator=generator), dim=-1)
    opposite = _opposite_pairs(generator, 32)
    return [
        ("random unit vectors [5, 8] and [5, 8]", (_unit(generator, 5, 8), _unit(generator, 5, 8)),
         1e-4, 1e-6),
        ("16 cutout embeddings [16, 32] and one prompt [1, 32]",
         (_unit(generator, 16, 32), _unit(generator, 1, 32)), 1e-4, 1e-6),
        ("nearly identical vectors", (near, nudged), 1e-3, 1e-12),
        ("opposite vectors (x and -x)", (opposite, -opposite), 1e-2, 1e-5),
    ]


def _check_spherical_distance(fn) -> None:
    """Compare with the library on fresh vectors; say which kind of case went wrong."""
    for what, args, rtol, atol in _distance_cases(fresh_generator()):
        expected = vqgan_clip.spherical_distance(*args)
        got = call_learner(fn, args, reference=vqgan_clip.spherical_distance,
                           case=f"for {what} ")
        if got is None:
            raise Incorrect(f"for {what} your function returned None: did you forget `return`?")
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                got.detach().isnan().any():
            if "opposite" in what:
                raise Incorrect("for opposite vectors your result holds NaN. There "
                                "|x - y| / 2 should be 1, but in floating point it can come "
                                "out a hair above 1, where arcsin is not defined: clamp it "
                                "to at most 1 first.")
            if "identical" in what:
                raise Incorrect("for nearly identical vectors your result holds NaN: a dot "
                                "product of unit vectors can round to a hair above 1. The "
                                "formula needs no dot product, only the length |x - y|.")
        try:
            compare(got, expected, rtol=rtol, atol=atol)
        except Incorrect as wrong:
            if "identical" in what and "values are off" in str(wrong):
                raise Incorrect("for nearly identical vectors your values are off, though "
                                "they are tiny: near the target a dot product of unit vectors "
                                "is 1 minus a few float32 steps and loses the angle. Measure "
                                "the length |x - y|, as the formula does.") from None
            raise Incorrect(f"for {what}: {wrong}") from None


q5 = Question(
    name="q5",
    variable="spherical_distance",
    checker=_check_spherical_distance,
    hint_text="Draw two unit vectors at angle θ and the chord between them: how long is "
              "x - y, in terms of θ? Which function then gives back θ / 2 from that length, "
              "and what must happen first to a number that rounding can push a hair above "
              "1? (No dot product is needed; broadcasting pairs 16 rows with one.)",
    solution_text="```python\ndef spherical_distance(x, y):\n"
                  "    half_chord = ((x - y).norm(dim=-1) / 2).clamp(max=1)\n"
                  "    return 2 * half_chord.arcsin() ** 2\n```",
    forbidden=(vqgan_clip.spherical_distance,),
    points=3,
)


# ---------------------------------------------------------------------------- Q6

STEPS, PROMPT = 20, "a red star"  # 20 right steps lift the similarity by 0.3 or more
LEARNING_RATE = 0.1
MAX_MOVE = 5 * LEARNING_RATE  # one Adam step moves an entry of z by about lr, never this far
FLAT_LOSS = math.pi ** 2 / 2  # opposite vectors' distance: |x - y| / 2 clamped to 1
LEFT_GRADIENT = 1e6           # written into z.grad between steps: a step that keeps it never zeroed


@functools.lru_cache(maxsize=1)
def _course_models():
    from mmlearn.clip import load_clip
    from mmlearn.vqgan import load_course_vqgan

    return load_course_vqgan("cpu"), load_clip("course", "cpu", verbose=False)


def _similarity(z: torch.Tensor, vqgan_model, clip, target: torch.Tensor) -> tuple[float, object]:
    """CLIP's cosine similarity of the picture z decodes to and the prompt, and the picture."""
    with torch.no_grad():
        image = vqgan_clip.decode_latent(vqgan_model, z)
        embedding = clip.model.encode_image(clip.normalize(image))
        embedding = torch.nn.functional.normalize(embedding, dim=-1)
    return float(embedding[0] @ target[0]), image


def paint_with(step, prompt: str, vqgan_model, clip, steps: int = STEPS, seed: int = 0,
               lr: float = LEARNING_RATE) -> tuple[list, list[float]]:
    """Run a learner's ``step(z, optimizer, target, vqgan, clip)`` from a random latent.

    Returns the pictures (uint8 [1, 3, H, W], one every 10 steps and the last) and the
    losses the step returned. The cutouts draw from torch's global generator: it is
    seeded here and restored afterwards.
    """
    target = clip.encode_texts([prompt]).to(clip.device)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        z = vqgan_clip.random_latent(vqgan_model, 32, seed).detach().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=lr)
        frames, losses = [], []
        for i in range(steps):
            if i % 10 == 0:
                frames.append(_similarity(z, vqgan_model, clip, target)[1])
            losses.append(step(z, optimizer, target, vqgan_model, clip))
        frames.append(_similarity(z, vqgan_model, clip, target)[1])
    return [float_to_uint8(f) for f in frames], losses


def _learners_copies(vqgan_model, clip) -> tuple[object, object, dict]:
    """Copies of the models for the learner's step, watched: what the decoder was given
    (codebook vectors or not) and how many views CLIP scored at once."""
    vqgan_model, clip = copy.deepcopy(vqgan_model), copy.deepcopy(clip)
    seen = {"decoded": 0, "off_codebook": 0.0, "views": 0, "views_differ": False}
    codebook = vqgan_model.codebook.detach().clone()

    def decoder_input(module, inputs) -> None:
        vectors = inputs[0].detach().permute(0, 2, 3, 1).reshape(-1, codebook.shape[1])
        gap = torch.cdist(vectors, codebook, compute_mode="donot_use_mm_for_euclid_dist")
        gap = gap.min(dim=1).values.max()
        seen["decoded"] += 1
        seen["off_codebook"] = max(seen["off_codebook"], float(gap))

    def clip_input(module, inputs) -> None:
        views = inputs[0].detach()
        seen["views"] = max(seen["views"], len(views))
        seen["views_differ"] |= bool((views != views[:1]).any())

    vqgan_model.post_quant_conv.register_forward_pre_hook(decoder_input)
    clip.model.visual.register_forward_pre_hook(clip_input)
    return vqgan_model, clip, seen


def _check_first_step(loss, z: torch.Tensor, start: torch.Tensor, seen: dict) -> None:
    """After one call: a number came back, the step decoded, CLIP scored many views, z moved."""
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        loss = loss.item()
    if isinstance(loss, float) and math.isnan(loss):
        raise Incorrect("the loss of the first step is NaN. Are CLIP's embeddings unit "
                        "length before the distance? Normalise them.")
    if not isinstance(loss, (int, float)) or isinstance(loss, bool) or not math.isfinite(loss):
        raise Incorrect("return the loss of the step as a number (`loss.item()`).")
    if seen["decoded"] == 0:
        raise Incorrect("your step never decoded a picture with `vqgan.decode`.")
    if seen["views"] < 2:
        raise Incorrect("CLIP scored a single view of the picture per step: make the 16 "
                        "cutouts with `transform` and score them all (Part 5 shows why one "
                        "view is not enough).")
    if not seen["views_differ"]:
        raise Incorrect(f"CLIP scored {seen['views']} views, but they are all the same picture: "
                        f"each cutout should be a different random crop, made by `transform` "
                        f"(Part 3, \"One step, by hand\").")
    if torch.equal(z.detach(), start) and abs(loss - FLAT_LOSS) < 0.05:
        raise Incorrect(f"z has not changed, and the loss is {loss:.2f}, about π²/2: the loss "
                        f"is flat, the distance of opposite vectors whatever the picture. Are "
                        f"the embeddings unit length? CLIP's raw embeddings are long vectors, "
                        f"so |x - y| / 2 is clamped to 1 and no gradient is left: normalise "
                        f"them first.")
    if torch.equal(z.detach(), start):
        raise Incorrect("after one step z has not changed: either no gradient "
                        "reached it (is the snapping to codes straight-through?) "
                        "or the optimiser never stepped.")


def _problem_after(step: int, z: torch.Tensor, previous: torch.Tensor, seen: dict) -> str | None:
    """What is wrong after a step (the decoder's input off the codebook, z jumped), if anything."""
    if seen["off_codebook"] > 1e-3:  # z starts on codes: from step 2 on it lies between them
        return ("the decoder was given vectors that are not codebook entries: snap z to its "
                "nearest codes (your straight_through) before decoding.")
    if not torch.isfinite(z).all() or (z.detach() - previous).abs().max() > MAX_MOVE:
        return (f"step {step} moved z further than one optimiser step can: let "
                f"`optimizer.step()` change z, do not set it yourself.")
    return None


def _later_steps(fn, args: tuple, seen: dict, progress: dict) -> None:
    """Steps 2 to STEPS of the learner's step, in one watched call (a thread per step would
    cost more than the step); stops at the first problem, written into ``progress``."""
    z = args[0]
    for step in range(2, STEPS + 1):
        progress["step"] = step
        previous = z.detach().clone()
        planted = _plant_left_gradient(z)
        fn(*args)
        if planted and z.grad is not None and \
                bool(((z.grad - LEFT_GRADIENT).abs() < 1).all()):
            progress["problem"] = (f"step {step} added its gradient to the one the step before "
                                   f"left in `z.grad`: gradients add up until they are zeroed. "
                                   f"What must every step do before `backward()`?")
            return
        progress["problem"] = _problem_after(step, z, previous, seen)
        if progress["problem"]:
            return


def _plant_left_gradient(z: torch.Tensor) -> bool:
    """Where the last step left a gradient in z.grad, replace it with a marker, so that a
    step which forgets to zero the gradients shows it (a step that zeroes them, before or
    after its update, never sees the marker)."""
    if z.grad is None or not bool(z.grad.abs().sum() > 0):
        return False
    with torch.no_grad():
        z.grad.fill_(LEFT_GRADIENT)
    return True


def _check_paint_step(fn) -> None:
    """Behaviour: one call moves z by one optimiser step through real codes and many views;
    20 calls from a random start (new at every check) bring the picture closer to 'a red
    star' in CLIP's eyes (the checker's own CLIP, not the learner's copy), and the
    independent judge sees red."""
    from mmlearn import judge

    if not callable(fn):
        raise Incorrect(f"expected a function, got a {type(fn).__name__}.")
    vqgan_model, clip = _course_models()
    learner_vqgan, learner_clip, seen = _learners_copies(vqgan_model, clip)
    target = clip.encode_texts([PROMPT])
    seed = int(torch.randint(2**31, (), generator=fresh_generator()))
    start = vqgan_clip.random_latent(vqgan_model, 32, seed)
    before, _ = _similarity(start, vqgan_model, clip, target)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        z = start.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=LEARNING_RATE)
        args = (z, optimizer, target.clone(), learner_vqgan, learner_clip)
        loss = call_learner(fn, args, copy=False, case="at step 1 ")
        _check_first_step(loss, z, start, seen)
        progress = {"step": 1, "problem": _problem_after(1, z, start, seen)}
        if progress["problem"] is None:
            try:
                call_learner(_later_steps, (fn, args, seen, progress), copy=False,
                             time_limit=STEPS * TIME_LIMIT)
            except Incorrect as wrong:
                raise Incorrect(f"at step {progress['step']} {wrong}") from None
        if progress["problem"]:
            raise Incorrect(progress["problem"])
    after, image = _similarity(z, vqgan_model, clip, target)
    if after < before + 0.1:
        raise Incorrect(f"after {STEPS} steps CLIP's similarity between the picture and "
                        f"{PROMPT!r} went from {before:.2f} to {after:.2f}; it should rise "
                        f"clearly. Is the loss a distance that the step makes smaller?")
    verdict = judge.judge_images(float_to_uint8(image))[0]
    if verdict.color != "red":
        raise Incorrect(f"CLIP likes the picture better ({before:.2f} -> {after:.2f}), but the "
                        f"judge sees mostly {verdict.color}, not red.")


q6 = Question(
    name="q6",
    variable="paint_step",
    checker=_check_paint_step,
    hint_text="Read the pipeline drawn in Part 3 top to bottom: each arrow is about one line "
              "of your step, and the cell \"One step, by hand\" writes most of them with the "
              "library. Which of them does `snap_to_codes(z, z_q)` replace, and which "
              "`distance(embeddings, target)`? A spherical distance assumes unit vectors: are "
              "CLIP's raw embeddings unit length (what does `vqgan_clip.prompt_loss` do to them "
              "first)? And which three optimiser calls make one step, in which order?",
    solution_text="```python\ndef paint_step(z, optimizer, target, vqgan, clip):\n"
                  "    z_q = vqgan.lookup_codes(vqgan.nearest_codes(z))\n"
                  "    image = to_unit_range(vqgan.decode(snap_to_codes(z, z_q)))\n"
                  "    views = vqgan_clip.make_cutouts(image, 16, transform)\n"
                  "    embeddings = clip.model.encode_image(clip.normalize(views))\n"
                  "    embeddings = torch.nn.functional.normalize(embeddings, dim=-1)\n"
                  "    loss = distance(embeddings, target).mean()\n"
                  "    optimizer.zero_grad()\n    loss.backward(inputs=[z])\n"
                  "    optimizer.step()\n    return loss.item()\n```\n"
                  "`vqgan_clip.generation_step` is the same, with weighted prompts, several "
                  "guides and the clamp to the codebook's range.",
    forbidden=(vqgan_clip.generation_step, paint_with, vqgan_clip.decode_latent,
               vqgan.VQGAN.quantize_straight_through, vqgan_clip.prompt_loss),
    points=3,
)
