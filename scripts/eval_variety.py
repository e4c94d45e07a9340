"""How varied are the generators' pictures? The measurements behind lesson 06's trade-off figure.

    python scripts/eval_variety.py --save benchmarks/results/variety.json   # ~12 min, one thread
    python scripts/eval_variety.py --skip-vqgan-clip                        # ~2 min

For the 36 prompts "a {colour} {shape}", each generator's pictures of a prompt are compared
with 16 held-out ShapeWorld pictures of it (``evaluation.variety``): the spread of the
object's centre and size (as a share of the real pictures' spread) and precision/recall
in the course CLIP's image-embedding space (Kynkaenniemi et al. 2019, k = 3); and the
judge's hit rates (``mmlearn.judge``).

1. The trade-off: the tiny unCLIP with each prior (diffusion, regression) at decoder
   guidance 0, 1, 2, 3, 5 (8 pictures per prompt, seed 0, DDIM 25 steps); the diffusion
   prior at its own guidance (2). Then the diffusion prior's own guidance 0, 1, 2, 3, 5
   with the decoder at 3 ("prior_sweep"). And the decoder at 3 given the embeddings of the
   16 other real pictures (seed 2), one picture each ("decoded from real embeddings"): the
   variety a perfect prior would give.
2. The three generators on one table, measured the same way: VQGAN+CLIP guided by the
   augmented-view CLIP (lesson 04's best; 4 seeds per prompt, 150 steps: 144 pictures,
   about 9 minutes), the tiny DALL-E (8 plain samples per prompt, seed 0) and the tiny
   unCLIP at the lesson's defaults.
"""

import argparse
import json
import platform
import shlex
import sys
import time

import torch

from mmlearn import dalle, evaluation, unclip, vqgan_clip
from mmlearn.checkpoints import atomic_write_bytes
from mmlearn.clip import load_clip
from mmlearn.images import Drawn
from mmlearn.judge import judge_images
from mmlearn.vqgan import load_course_vqgan

SCALES = (0.0, 1.0, 2.0, 3.0, 5.0)


def measured(drawn: list[Drawn], clip, seconds: float) -> dict:
    """Hit rates and variety of one generator's pictures, rounded for the record."""
    rates = evaluation.averages([evaluation.judged_row(d.prompt, judge_images(d.images))
                                 for d in drawn])
    variety = evaluation.variety(drawn, clip)
    row = {"pictures": sum(len(d.images) for d in drawn),
           "seconds_per_picture": round(seconds / sum(len(d.images) for d in drawn), 4)}
    for group in ("all", "seen", "unseen"):
        row[group] = {"color": round(rates[group]["color"], 4),
                      "shape": round(rates[group]["shape"], 4),
                      **{key: round(variety[group][key], 4) for key in (
                          "centre", "size", "real_centre", "real_size", "centre_ratio",
                          "size_ratio", "precision", "recall")}}
    return row


def timed(make, *args, **kwargs) -> tuple[list[Drawn], float]:
    """``make(*args, **kwargs)`` and the seconds it took."""
    start = time.perf_counter()
    drawn = make(*args, **kwargs)
    return drawn, time.perf_counter() - start


def show(name: str, row: dict) -> None:
    a = row["all"]
    print(f"{name:48s} colour {a['color']:.3f} shape {a['shape']:.3f} (unseen "
          f"{row['unseen']['shape']:.3f})  centre {a['centre_ratio']:.2f} size "
          f"{a['size_ratio']:.2f}  precision {a['precision']:.3f} recall {a['recall']:.3f}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--save", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-vqgan-clip", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prompts = evaluation.color_shape_prompts()
    clip, vqgan = load_clip("course", "cpu", verbose=False), load_course_vqgan("cpu")
    models = {name: unclip.load_course_unclip(clip, vqgan, prior=name)
              for name in ("diffusion", "regression")}

    sweep = {}
    for name, model in models.items():
        sweep[name] = {}
        for scale in SCALES:
            drawn, seconds = timed(model.generate, prompts, n=8, scale=scale)
            sweep[name][f"{scale:g}"] = row = measured(drawn, clip, seconds)
            show(f"unCLIP, {name} prior, decoder guidance {scale:g}", row)

    prior_sweep = {}
    for scale in SCALES:
        drawn, seconds = timed(models["diffusion"].generate, prompts, n=8, prior_scale=scale)
        prior_sweep[f"{scale:g}"] = row = measured(drawn, clip, seconds)
        show(f"unCLIP, diffusion prior guidance {scale:g}, decoder 3", row)

    def from_real() -> list[Drawn]:
        decoder = models["diffusion"]
        return [Drawn(p, decoder.decode(unclip.image_embeddings(
            clip, evaluation.real_pictures(p, 16, seed=2))[None], n=16)) for p in prompts]
    drawn, seconds = timed(from_real)
    oracle = measured(drawn, clip, seconds)
    show("unCLIP decoder given the real pictures' embeddings", oracle)

    generators = {f"tiny unCLIP ({name} prior)": sweep[name]["3"] for name in models}
    tiny_dalle = dalle.load_course_dalle("cpu")
    drawn, seconds = timed(lambda: [d for start in range(0, 36, 12) for d in dalle.sample_many(
        tiny_dalle, vqgan, prompts[start:start + 12], 8, seed=start)])
    generators["tiny DALL-E (plain)"] = measured(drawn, clip, seconds)
    show("tiny DALL-E (plain)", generators["tiny DALL-E (plain)"])
    if not args.skip_vqgan_clip:
        guide = load_clip("course-augmented", "cpu", verbose=False)

        def paint() -> list[Drawn]:
            return [Drawn(p, torch.cat([evaluation_picture(p, guide, vqgan, seed)
                                        for seed in range(4)])) for p in prompts]
        drawn, seconds = timed(paint)
        name = "VQGAN+CLIP (augmented-view CLIP, 16 augmented cutouts)"
        generators[name] = measured(drawn, clip, seconds)
        show(name, generators[name])

    if args.save:
        result = {"command": "python " + shlex.join(sys.argv),
                  "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch thread(s)",
                  "prompts": "the 36 'a {colour} {shape}' prompts; seen = 29, unseen = 7",
                  "real": "16 held-out ShapeWorld pictures per prompt (evaluation.real_pictures,"
                          " seed 1)",
                  "judge": "mmlearn.judge.judge_images", "sweep": sweep,
                  "prior_sweep": prior_sweep, "decoded from real embeddings": oracle,
                  "generators": generators}
        atomic_write_bytes(args.save, json.dumps(result, indent=1).encode() + b"\n")


def evaluation_picture(prompt: str, guide, vqgan, seed: int) -> torch.Tensor:
    """One VQGAN+CLIP picture with the GenerationConfig defaults, uint8 [1, 3, 32, 32]."""
    from mmlearn.images import to_uint8_tensor
    return to_uint8_tensor(vqgan_clip.generate(prompt, guide, vqgan, seed=seed).image)[None]


if __name__ == "__main__":
    main()
