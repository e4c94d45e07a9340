"""Measure VQGAN+CLIP with the course models: hit rates by the independent judge, and speed.

    python scripts/eval_generation.py --save benchmarks/results/generation.json   # ~30 min
    python scripts/eval_generation.py --seeds 0 --steps 100 --classes "red star" "blue circle"
    python scripts/eval_generation.py --runs "course CLIP, one plain view" --threads 2

For every colour x shape class of ShapeWorld it generates pictures from the plain
prompt ("a red star") with the course VQGAN, in four runs: guided by the course CLIP
with 16 augmented cutouts (the GenerationConfig defaults); by the course CLIP with one
plain view of the whole image; by the CLIP trained on augmented views
(load_clip("course-augmented")) with 16 augmented cutouts; and by both CLIPs together
(their losses added) with 16 augmented cutouts. The judge (mmlearn.judge, not
the CLIP that was optimised) names the dominant colour and the main shape. It prints the
hit rates over all prompts and separately for the colour x shape combinations CLIP saw in
training (seen) and the held-out ones (unseen), plus seconds per picture.

Each prompt is run with every seed of ``--seeds`` (default 0 1 2: the random start and
the random cutouts). One seed is not enough to compare two runs: the shape rate moves a
lot from seed to seed (benchmarks/results/recorded.md).
The rates are over all pictures of all seeds; ``shape_by_seed`` shows the spread. ``--grid``
saves the pictures as one PNG; ``--save`` writes the figures as JSON (lesson 04 shows
benchmarks/results/generation.json).
"""

import argparse
import json
import platform
import shlex
import sys
import time

import numpy as np
import torch

from mmlearn import evaluation, judge, shapes, vqgan_clip
from mmlearn.clip import load_clip
from mmlearn.files import atomic_write_bytes
from mmlearn.vqgan import load_course_vqgan
from mmlearn.zeroshot import plain_prompt

WITHOUT = {"cutouts": 1, "min_crop": 1.0, "augment": False}
# name -> (the CLIPs that guide, changes to the GenerationConfig defaults)
RUNS = {
    "course CLIP, 16 augmented cutouts": (["course"], {}),
    "course CLIP, one plain view": (["course"], WITHOUT),
    "augmented-view CLIP, 16 augmented cutouts": (["course-augmented"], {}),
    "both CLIPs together, 16 augmented cutouts": (["course", "course-augmented"], {}),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", nargs="*", default=shapes.CLASSES)
    parser.add_argument("--runs", nargs="*", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--grid", default=None, help="save all pictures to this PNG")
    parser.add_argument("--save", default=None, help="write the figures to this JSON file")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    for name, value in vars(vqgan_clip.GenerationConfig()).items():
        if name != "seed":
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=None)
    return parser.parse_args()


def split_rates(verdicts: list, names: list[str]) -> dict:
    """Hit rates over all pictures, and over those of seen / unseen combinations."""
    return evaluation.averages([evaluation.judged_row(name, [verdict])
                                for verdict, name in zip(verdicts, names)])


def run(classes: list[str], seeds: list[int], guides: list, vqgan,
        config: vqgan_clip.GenerationConfig) -> dict:
    """One picture per class and seed, all judged; rates overall / seen / unseen, timing."""
    pictures, seconds, names = [], [], []
    for seed in seeds:
        for name in classes:
            result = vqgan_clip.generate(plain_prompt(name), guides, vqgan, config, seed=seed)
            pictures.append(result.image)
            seconds.append(result.seconds)
            names.append(name)
    verdicts = judge.judge_images(pictures)
    n = len(classes)  # the pictures of seed k are pictures[k * n:(k + 1) * n]
    by_seed = [split_rates(verdicts[k * n:(k + 1) * n], classes)["all"]["shape"]
               for k in range(len(seeds))]
    return {"rates": split_rates(verdicts, names), "shape_by_seed": by_seed,
            "verdicts": verdicts, "names": names, "pictures": pictures,
            "seconds": float(np.mean(seconds))}


def print_report(label: str, outcome: dict) -> None:
    print(f"\n{label}: {outcome['seconds']:.2f} s per picture")
    for split, r in outcome["rates"].items():
        print(f"  {split:<7} n={r['n']:>3}  colour {r['color']:.3f}  shape {r['shape']:.3f}  "
              f"both {r['both']:.3f}")
    print("  shape rate by seed: " + ", ".join(f"{x:.3f}" for x in outcome["shape_by_seed"]))
    misses = [f"{name} -> {v.color} {v.shape}"
              for name, v in zip(outcome["names"], outcome["verdicts"])
              if (v.color, v.shape) != tuple(name.split())]
    print("  misses: " + ("; ".join(misses) or "none"))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: getattr(args, k) for k in vars(vqgan_clip.GenerationConfig())
                 if getattr(args, k, None) is not None}
    vqgan = load_course_vqgan("cpu")
    print(f"{args.threads} thread(s); seeds {args.seeds}; overrides {overrides}")
    grids, runs = [], {}
    for label in args.runs:
        clip_sources, extra = RUNS[label]
        guides = [load_clip(source) for source in clip_sources]
        config = vqgan_clip.GenerationConfig(**{**overrides, **extra})
        start = time.perf_counter()
        outcome = run(args.classes, args.seeds, guides, vqgan, config)
        print_report(f"{label} ({config})", outcome)
        print(f"  total {time.perf_counter() - start:.0f} s")
        grids.append(judge.as_uint8_batch(outcome["pictures"]))
        verdicts = {name: [] for name in args.classes}
        for name, v in zip(outcome["names"], outcome["verdicts"]):
            verdicts[name].append([v.color, v.shape])      # one per seed, in --seeds order
        runs[label] = {"clip": " + ".join(guide.name for guide in guides),
                       "config": {**vars(config), "seed": args.seeds},
                       "seconds_per_image": outcome["seconds"],
                       "rates": outcome["rates"], "shape_by_seed": outcome["shape_by_seed"],
                       "verdicts": verdicts}
    if args.save:
        machine = f"{platform.machine()} CPU, {torch.get_num_threads()} torch thread(s)"
        report = {"command": "python " + shlex.join(sys.argv),
                  "machine": machine, "runs": runs}
        atomic_write_bytes(args.save, json.dumps(report, indent=1).encode() + b"\n")
    if args.grid:
        shapes.image_grid(torch.cat(grids), columns=len(shapes.SHAPES), scale=3).save(args.grid)


if __name__ == "__main__":
    main()
