"""Measuring the generators: how often a picture shows what its prompt asked for.

Lessons 04-06 compare three ways to draw "a red circle" (VQGAN+CLIP, the tiny DALL-E,
the tiny unCLIP) on the same 36 prompts, with the same independent judge
(``mmlearn.judge``: pixel colours and a small shape CNN, no CLIP). This module holds
that measurement, so that the model modules hold only models.

A report is a dict: ``"prompts"`` (one row per prompt: colour and shape hit rates,
seen or held-out combination) and averages over all / seen / unseen prompts.
"""

from mmlearn import checks, shapes
from mmlearn.config import one_cpu_thread
from mmlearn.dalle import rerank, sample_many


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
