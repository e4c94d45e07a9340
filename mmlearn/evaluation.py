"""Measuring the generators: how often a picture shows what its prompt asked for.

Lessons 04-06 compare three ways to draw "a red circle" (VQGAN+CLIP, the tiny DALL-E,
the tiny unCLIP) on the same 36 prompts, with the same independent judge
(``mmlearn.judge``: pixel colours and a small shape CNN, no CLIP). This module holds
that measurement, so that the model modules hold only models.

A report is a dict: ``"prompts"`` (one row per prompt: colour and shape hit rates,
seen or held-out combination) and averages over all / seen / unseen prompts.
"""

import functools
import math

import torch

from mmlearn import checks, shapes
from mmlearn.config import one_cpu_thread
from mmlearn.dalle import rerank, sample_many
from mmlearn.images import Drawn


def color_shape_prompts(combos: list[tuple[str, str]] | None = None) -> list[str]:
    """The plain prompts "a red circle", ... for colour x shape pairs (default: all 36)."""
    if combos is not None:
        if isinstance(combos, str) or not isinstance(combos, list | tuple) or not combos:
            raise TypeError(f"combos must be a non-empty list of (colour, shape) pairs such as "
                            f"[('red', 'circle')], or None for all 36; got "
                            f"{checks.describe(combos)}.")
        for i, pair in enumerate(combos):
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(f"combos[{i}] must be a (colour, shape) pair such as "
                                f"('red', 'circle'); got {checks.describe(pair)}.")
            shapes.class_name(*pair)  # each a known colour and shape, or a ValueError
    combos = combos or [(c, s) for c in shapes.COLORS for s in shapes.SHAPES]
    return [shapes.with_articles(f"a {c} {s}") for c, s in combos]


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a rate ``hits / n`` (lesson 04 derives it).

    Unlike the normal approximation p +- z sqrt(p(1-p)/n), it does not shrink to a point
    at 0 or n hits, where judged rates of small samples often sit.
    """
    checks.integer(hits, "hits", minimum=0)
    checks.integer(n, "n", minimum=1)
    if hits > n:
        raise ValueError(f"hits ({hits}) cannot exceed n ({n}): count the hits among n samples")
    centre = (hits + z**2 / 2) / (n + z**2)
    half = z / (n + z**2) * math.sqrt(hits * (n - hits) / n + z**2 / 4)
    return max(0.0, centre - half), min(1.0, centre + half)


def judged_row(prompt: str, verdicts: list) -> dict:
    """One prompt's row: ``judge.hit_rates`` of its pictures against the asked colour and
    shape, and whether that combination was seen in training."""
    from mmlearn.judge import hit_rates

    claim = shapes.parse_caption(prompt)[0]
    asked = (claim["color"], claim["shape"])
    return {"prompt": prompt, "seen": asked not in shapes.HELD_OUT,
            **hit_rates(verdicts, [asked] * len(verdicts))}


def averages(rows: list[dict], prefix: str = "") -> dict:
    """Hit rates over all, seen and unseen rows (keys ``prefix + group``), each row weighed by
    its number of pictures ``n``: the same figures as ``judge.hit_rates`` on all the
    pictures of the group at once."""
    report = {}
    for group, wanted in (("all", (True, False)), ("seen", (True,)), ("unseen", (False,))):
        chosen = [r for r in rows if r["seen"] in wanted]
        if chosen:
            n = sum(r["n"] for r in chosen)
            report[prefix + group] = {**{key: sum(r[key] * r["n"] for r in chosen) / n
                                         for key in ("color", "shape", "both")}, "n": n}
    return report


def rates_table(report: dict, prefix: str = "") -> dict:
    """``{"all"|"seen"|"unseen": {"color", "shape"}}``, rounded to 4 places: the columns of the
    course's table of generators, from any report of ``averages``."""
    return {group: {key: round(report[prefix + group][key], 4) for key in ("color", "shape")}
            for group in ("all", "seen", "unseen")}


def dalle_hit_rates(model, vqgan, clip, prompts: list[str] | None = None,
                    candidates: int = 32, keep: int = 4, temperature: float = 0.7,
                    top_k: int | None = 32, seed: int = 0, judge=None) -> dict:
    """The tiny DALL-E's hit rates, plain and after CLIP reranking.

    For each prompt draw ``candidates`` pictures; "plain" judges all of them (what one
    random sample gives), "reranked" only the ``keep`` that CLIP likes best. The judge
    must not be the reranking CLIP, or CLIP would grade its own homework.
    """
    prompts, judge = _checked_prompts(prompts), _checked_judge(judge)
    checks.optional_integer(keep, "keep", minimum=1)  # n, temperature, top_k, seed: sample_many
    drawn_sets = []
    for start in range(0, len(prompts), 12):  # 12 prompts per batch: fast, yet little memory
        drawn_sets += sample_many(model, vqgan, prompts[start:start + 12], candidates,
                                  temperature, top_k, seed + start)
    rows = []
    for drawn in drawn_sets:
        with one_cpu_thread():  # small batches again (see config.one_cpu_thread)
            best = rerank(clip, drawn, keep)
            rows.append({**judged_row(drawn.prompt, judge(drawn.images)), "method": "plain"})
            rows.append({**judged_row(drawn.prompt, judge(best.images)), "method": "reranked"})
    report = {"prompts": rows}
    for method in ("plain", "reranked"):
        report.update(averages([r for r in rows if r["method"] == method], prefix=f"{method}/"))
    return report


def unclip_hit_rates(model, prompts: list[str] | None = None, n: int = 8, scale: float = 3.0,
                     steps: int = 25, seed: int = 0, judge=None) -> dict:
    """The tiny unCLIP's hit rates: ``n`` pictures per prompt, no reranking."""
    prompts, judge = _checked_prompts(prompts), _checked_judge(judge)  # n, scale...: generate
    rows = [judged_row(drawn.prompt, judge(drawn.images))
            for drawn in model.generate(prompts, n, scale, steps, seed=seed)]
    return {"prompts": rows, **averages(rows)}


def _checked_prompts(prompts) -> list[str]:
    """None (the 36 plain prompts) or a list of prompts that each name a colour and a shape.

    Why: each prompt's pictures are judged against the colour and shape it names; a prompt
    without them used to fail only after every picture had been drawn.
    """
    if prompts is None:
        return color_shape_prompts()
    prompts = checks.texts(prompts, "prompts", "a red circle")
    for i, prompt in enumerate(prompts):
        try:
            shapes.parse_caption(prompt)
        except ValueError as error:
            raise ValueError(f"prompts[{i}]: {error}") from None
    return prompts


def _checked_judge(judge):
    """None (the course's shape judge) or a function of uint8 pictures -> verdicts."""
    if judge is None:
        from mmlearn.judge import judge_images
        return judge_images
    if not callable(judge):
        raise TypeError(f"judge must be a function of uint8 pictures that returns verdicts, "
                        f"such as judge.judge_images (or None); got {checks.describe(judge)}.")
    return judge


def format_report(report: dict) -> str:
    """A report's averages as a small table."""
    lines = [f"{'':22s} {'colour':>7s} {'shape':>7s}"]
    for key, value in report.items():
        if key != "prompts":
            lines.append(f"{key:22s} {value['color']:7.3f} {value['shape']:7.3f}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ variety
# A generator can hit every prompt and still draw the same picture every time. These measure
# how much one prompt's pictures differ (issue 25: DALL-E 2's diffusion prior is about this).


def object_layout(images) -> dict:
    """Where each picture's main object is, how big it is, and its shade.

    The object is what the judge cuts out: the largest connected patch of clearly coloured
    pixels of the picture's dominant colour (``mmlearn.judge``), at the judge's 32 px. For
    uint8 pictures [N, 3, H, W] (or PIL images) it returns ``centre`` [N, 2] (x, y in pixels
    of the 32 px picture), ``size`` [N] (the patch's share of the picture) and ``shade``
    [N, 3] (the patch's mean RGB, 0..1); rows are NaN where the judge sees no colour.
    """
    from mmlearn import judge

    pixels = judge.to_judge_size(judge.as_uint8_batch(images))
    dominant = torch.tensor([-1 if c is None else c
                             for c, _ in (judge.dominant_color(p) for p in pixels)])
    names, chroma = judge.color_map(pixels)
    masks = (names == dominant[:, None, None]) & (chroma >= judge.MIN_CHROMA)
    patches = judge.largest_components(masks & (dominant >= 0)[:, None, None]).float()
    area = patches.sum(dim=(1, 2))
    ys, xs = torch.meshgrid(torch.arange(judge.SIDE), torch.arange(judge.SIDE), indexing="ij")
    centre = torch.stack([(patches * xs).sum(dim=(1, 2)), (patches * ys).sum(dim=(1, 2))], 1)
    shade = (pixels * patches[:, None]).sum(dim=(2, 3))
    seen = (area > 0)[:, None]
    return {"centre": torch.where(seen, centre / area[:, None].clamp_min(1), torch.nan),
            "size": torch.where(seen[:, 0], area / judge.SIDE ** 2, torch.nan),
            "shade": torch.where(seen, shade / area[:, None].clamp_min(1), torch.nan)}


def spread(layout: dict) -> dict:
    """How much one prompt's pictures vary: root mean squared distance of the objects'
    centres from their mean (px), standard deviation of their sizes (share of the picture),
    and root mean squared distance of their shades from the mean shade (RGB, 0..1).
    Pictures without an object are left out; fewer than two left: NaN."""
    keep = ~torch.isnan(layout["size"])
    if int(keep.sum()) < 2:
        return {"centre": math.nan, "size": math.nan, "shade": math.nan}

    def rms(values: torch.Tensor) -> float:
        return float((values - values.mean(dim=0)).pow(2).sum(dim=-1).mean().sqrt())

    return {"centre": rms(layout["centre"][keep]), "size": float(layout["size"][keep].std()),
            "shade": rms(layout["shade"][keep])}


def precision_recall(real: torch.Tensor, generated: torch.Tensor, k: int = 3) -> dict:
    """Precision and recall of a generator (Kynkäänniemi et al., 2019), on embeddings.

    Each set of points [N, D] stands for the region of the space it covers: the union of
    balls around its points, each as wide as the distance to its ``k``-th nearest neighbour
    in the same set. **Precision** is the share of generated points inside the real region
    (are the pictures realistic?); **recall** the share of real points inside the generated
    region (does the generator cover what real pictures do?). A generator that draws one
    good picture again and again has high precision and low recall.
    """
    checks.tensor(real, "real", ndim=2, dtype="float")
    checks.tensor(generated, "generated", ndim=2, dtype="float", shape=(None, real.shape[1]))
    checks.finite_vectors(real, "real")
    checks.finite_vectors(generated, "generated")
    k = checks.integer(k, "k", minimum=1)
    if k >= min(len(real), len(generated)):
        raise ValueError(f"k must be smaller than the number of points in each set (real "
                         f"{len(real)}, generated {len(generated)}); got k={k}.")

    def radii(points: torch.Tensor) -> torch.Tensor:
        return torch.cdist(points, points).kthvalue(k + 1, dim=1).values  # +1: itself, at 0

    def inside(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        return (torch.cdist(points, centres) <= radii(centres)[None, :]).any(dim=1)

    real, generated = real.float(), generated.float()
    return {"precision": float(inside(generated, real).float().mean()),
            "recall": float(inside(real, generated).float().mean())}


@functools.cache
def _held_out_world(split: str, seed: int, count: int) -> shapes.ShapeWorld:
    return shapes.ShapeWorld(count, split, seed=seed, max_objects=1)


def real_pictures(prompt: str, n: int = 16, seed: int = 1) -> torch.Tensor:
    """``n`` held-out ShapeWorld pictures of the prompt's colour and shape, uint8 [n, 3, 32, 32].

    One object each, of any size and in any place, drawn from the test split that holds
    the combination (seen or held-out): the world a generator's pictures of this prompt
    are compared with, never a picture any course model trained on.
    """
    claim = shapes.parse_caption(checks.text(prompt, "prompt", "a red circle"))[0]
    combo = (claim["color"], claim["shape"])
    n = checks.integer(n, "n", minimum=1, maximum=1000)
    split = "test_unseen" if combo in shapes.HELD_OUT else "test_seen"
    label = shapes.CLASSES.index(shapes.class_name(*combo))
    count = 64 * len(shapes.split_combos(split))  # about 64 pictures of each combination
    while True:
        world = _held_out_world(split, checks.seed(seed), count)
        chosen = (world.labels == label).nonzero()[:, 0]
        if len(chosen) >= n:
            return world.images[chosen[:n]]
        count *= 2


def variety(drawn: list, clip, real_per_prompt: int = 16, seed: int = 1, k: int = 3) -> dict:
    """How varied each prompt's pictures are, against held-out ShapeWorld pictures of it.

    ``drawn``: what a generator returned (``Drawn``, one per prompt that names a colour and
    a shape). Per prompt: the ``spread`` of the drawn pictures and of ``real_per_prompt``
    real ones, and the ``precision_recall`` of the drawn against the real in ``clip``'s
    image-embedding space. Returns ``{"prompts": rows, "all"|"seen"|"unseen": means}``,
    with ``centre_ratio`` and ``size_ratio``: the drawn pictures' spread over the real ones'.
    """
    from mmlearn.unclip import image_embeddings

    if not isinstance(drawn, list | tuple) or not drawn:
        raise TypeError(f"drawn must be a non-empty list of Drawn (what generate returns); "
                        f"got {checks.describe(drawn)}.")
    rows = []
    for item in drawn:
        checks.instance(item, "each item of drawn", Drawn,
                        "a Drawn, what a generator returns for one prompt")
        real = real_pictures(item.prompt, real_per_prompt, seed)
        mine, theirs = spread(object_layout(item.images)), spread(object_layout(real))
        embedded = precision_recall(image_embeddings(clip, real),
                                    image_embeddings(clip, item.images), k)
        claim = shapes.parse_caption(item.prompt)[0]
        rows.append({"prompt": item.prompt, "n": len(item.images),
                     "seen": (claim["color"], claim["shape"]) not in shapes.HELD_OUT,
                     **mine, **{f"real_{key}": value for key, value in theirs.items()},
                     **embedded})
    report = {"prompts": rows}
    keys = ("centre", "size", "shade", "real_centre", "real_size", "real_shade", "precision",
            "recall")
    for group, wanted in (("all", (True, False)), ("seen", (True,)), ("unseen", (False,))):
        chosen = [r for r in rows if r["seen"] in wanted]
        means = {key: _nanmean([r[key] for r in chosen]) for key in keys}
        means["centre_ratio"] = means["centre"] / means["real_centre"]
        means["size_ratio"] = means["size"] / means["real_size"]
        report[group] = means
    return report


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan
