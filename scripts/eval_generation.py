"""Measure VQGAN+CLIP with the course models: hit rates by the independent judge, and speed.

    python scripts/eval_generation.py --save benchmarks/results/generation.json   # ~12 min
    python scripts/eval_generation.py --steps 100 --classes "red star" "blue circle"
    python scripts/eval_generation.py --runs "course CLIP, one plain view" --threads 2

For every colour x shape class of ShapeWorld it generates one picture from the plain
prompt ("a red star") with the course VQGAN, in three runs: guided by the course CLIP
with 16 augmented cutouts (the GenerationConfig defaults); by the course CLIP with one
plain view of the whole image; and by the CLIP trained on augmented views
(load_clip("course-augmented")) with 16 augmented cutouts. The judge (mmlearn.judge, not
the CLIP that was optimised) names the dominant colour and the main shape. It prints the
hit rates over all prompts and separately for the colour x shape combinations CLIP saw in
training (seen) and the held-out ones (unseen), plus seconds per picture. ``--grid``
saves the pictures as one PNG; ``--save`` writes the figures as JSON (lesson 04 shows
benchmarks/results/generation.json).
"""

import argparse
import json
import platform
import time

import numpy as np
import torch

from mmlearn import generate, judge, shapes
from mmlearn.checkpoints import atomic_write_bytes
from mmlearn.clip import load_clip
from mmlearn.vqgan import load_course_vqgan
from mmlearn.zeroshot import plain_prompt

WITHOUT = {"cutouts": 1, "min_crop": 1.0, "augment": False}
# name -> (the CLIP that guides, changes to the GenerationConfig defaults)
RUNS = {
    "course CLIP, 16 augmented cutouts": ("course", {}),
    "course CLIP, one plain view": ("course", WITHOUT),
    "augmented-view CLIP, 16 augmented cutouts": ("course-augmented", {}),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", nargs="*", default=shapes.CLASSES)
    parser.add_argument("--runs", nargs="*", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grid", default=None, help="save all pictures to this PNG")
    parser.add_argument("--save", default=None, help="write the figures to this JSON file")
    for name, value in vars(generate.GenerationConfig()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=None)
    return parser.parse_args()


def run(classes: list[str], clip, vqgan, config: generate.GenerationConfig) -> dict:
    """Generate one picture per class, judge them all; rates overall / seen / unseen, timing."""
    pictures, seconds = [], []
    for name in classes:
        result = generate.generate(plain_prompt(name), clip, vqgan, config)
        pictures.append(result.image)
        seconds.append(result.seconds)
    verdicts = judge.judge_images(pictures)
    targets = [tuple(name.split()) for name in classes]
    rates = {"all": judge.hit_rates(verdicts, targets)}
    for split, members in (("seen", shapes.SEEN_CLASSES), ("unseen", shapes.UNSEEN_CLASSES)):
        keep = [i for i, name in enumerate(classes) if name in members]
        if keep:
            rates[split] = judge.hit_rates([verdicts[i] for i in keep],
                                           [targets[i] for i in keep])
    return {"rates": rates, "verdicts": verdicts, "pictures": pictures,
            "seconds": float(np.mean(seconds))}


def print_report(label: str, classes: list[str], outcome: dict) -> None:
    print(f"\n{label}: {outcome['seconds']:.2f} s per picture")
    for split, r in outcome["rates"].items():
        print(f"  {split:<7} n={r['n']:>2}  colour {r['colour']:.3f}  shape {r['shape']:.3f}  "
              f"both {r['both']:.3f}")
    misses = [f"{name} -> {v.colour} {v.shape}" for name, v in zip(classes, outcome["verdicts"])
              if (v.colour, v.shape) != tuple(name.split())]
    print("  misses: " + ("; ".join(misses) or "none"))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: getattr(args, k) for k in vars(generate.GenerationConfig())
                 if getattr(args, k) is not None}
    vqgan = load_course_vqgan("cpu")
    print(f"{args.threads} thread(s); overrides {overrides}")
    grids, runs = [], {}
    for label in args.runs:
        clip_source, extra = RUNS[label]
        clip = load_clip(clip_source)
        config = generate.GenerationConfig(**{**overrides, **extra})
        start = time.perf_counter()
        outcome = run(args.classes, clip, vqgan, config)
        print_report(f"{label} ({config})", args.classes, outcome)
        print(f"  total {time.perf_counter() - start:.0f} s")
        grids.append(judge.as_uint8_batch(outcome["pictures"]))
        runs[label] = {"clip": clip.name, "config": vars(config),
                       "seconds_per_image": outcome["seconds"],
                       "rates": outcome["rates"],
                       "verdicts": {name: [v.colour, v.shape] for name, v
                                    in zip(args.classes, outcome["verdicts"])}}
    if args.save:
        machine = f"{platform.machine()} CPU, {torch.get_num_threads()} torch thread(s)"
        report = {"command": "python scripts/eval_generation.py --save " + args.save,
                  "machine": machine, "runs": runs}
        atomic_write_bytes(args.save, json.dumps(report, indent=1).encode() + b"\n")
    if args.grid:
        shapes.image_grid(torch.cat(grids), columns=len(shapes.SHAPES), scale=3).save(args.grid)


if __name__ == "__main__":
    main()
