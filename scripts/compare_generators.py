"""The three generators of lessons 04-06 on one judged table: VQGAN+CLIP, tiny DALL-E, tiny unCLIP.

    python scripts/compare_generators.py --save benchmarks/results/generators.json   # ~1 min

Same 36 prompts "a {colour} {shape}", same judge (``mmlearn.judge``), seen and unseen
(held-out) colour x shape combinations, seconds per picture on one CPU thread:

- VQGAN+CLIP (lesson 04): *read* from benchmarks/results/generation.json (made by
  scripts/eval_generation.py, ~30 min): one picture per prompt and seed, seeds 0-2
  (108 pictures), 150 optimisation steps each; rerunning it here would take half an hour.
- tiny DALL-E (lesson 05): *recomputed*:
  ``evaluation.dalle_hit_rates(candidates=8, keep=2, seed=0)``
  as lesson 05 runs it: 8 samples per prompt, "plain" judges all 8, "reranked" the
  2 the course CLIP likes best.
- tiny unCLIP (lesson 06): *recomputed*: ``evaluation.unclip_hit_rates(n=8, seed=0)``: 8 samples
  per prompt (DDIM 25 steps, guidance 3), with the diffusion prior (the default), with the
  regression prior, and with the caption's CLIP *text* embedding instead of a prior's
  output (what a prior is worth); the last two also at guidance scales 1 and 2
  ("prior_vs_text": strong guidance hides much of the difference).

Seconds per picture: the whole 36 x 8 run divided by 288 (batched as each module batches).
"""

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

from mmlearn import dalle, evaluation, unclip
from mmlearn.checkpoints import atomic_write_bytes
from mmlearn.clip import load_clip
from mmlearn.vqgan import load_course_vqgan

ROOT = Path(__file__).resolve().parents[1]
VQGAN_CLIP_RUNS = ("course CLIP, 16 augmented cutouts", "augmented-view CLIP, 16 augmented cutouts")


class TextAsImage:
    """No prior: the caption's CLIP text embedding itself goes to the decoder."""

    def sample(self, text: torch.Tensor, n: int = 1, **_) -> torch.Tensor:
        return text[:, None].expand(-1, n, -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--save", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    recorded = json.loads((ROOT / "benchmarks/results/generation.json").read_text())
    for name in VQGAN_CLIP_RUNS:
        run = recorded["runs"][name]
        rows[f"VQGAN+CLIP ({name})"] = {
            "lesson": "04", "source": "read from benchmarks/results/generation.json",
            "samples": "1 per prompt and seed, seeds 0-2",
            "rates": evaluation.rates_table(run["rates"]),
            "seconds_per_picture": round(run["seconds_per_image"], 3)}

    clip, vqgan = load_clip("course", "cpu", verbose=False), load_course_vqgan("cpu")
    model = dalle.load_course_dalle("cpu")
    start = time.perf_counter()
    report = evaluation.dalle_hit_rates(model, vqgan, clip, candidates=8, keep=2, seed=0)
    seconds = (time.perf_counter() - start) / (36 * 8)  # sampling, reranking and judging
    for method, label in (("plain", "plain"), ("reranked", "best 2 of 8 by CLIP")):
        rows[f"tiny DALL-E ({label})"] = {
            "lesson": "05", "source": "recomputed", "samples": "8 per prompt, seed 0",
            "rates": evaluation.rates_table(report, f"{method}/"),
            "seconds_per_picture": round(seconds, 3)}

    model = unclip.load_course_unclip(clip, vqgan)  # the diffusion prior, the default
    regression = unclip.load_course_unclip(clip, vqgan, prior="regression")
    no_prior = unclip.UnCLIP(clip, vqgan, model.unet, model.config, TextAsImage())
    for label, variant in (("diffusion prior", model), ("regression prior", regression),
                           ("no prior: text embedding", no_prior)):
        start = time.perf_counter()
        report = evaluation.unclip_hit_rates(variant, n=8, seed=0)
        rows[f"tiny unCLIP ({label})"] = {
            "lesson": "06", "source": "recomputed",
            "samples": "8 per prompt, seed 0, DDIM 25 steps, guidance 3",
            "rates": evaluation.rates_table(report),
            "seconds_per_picture": round((time.perf_counter() - start) / (36 * 8), 3)}

    prior_vs_text = {}
    for scale in (1.0, 2.0, 3.0):
        for label, variant in (("regression prior", regression), ("text embedding", no_prior)):
            report = evaluation.unclip_hit_rates(variant, n=8, seed=0, scale=scale)
            prior_vs_text[f"scale {scale:g}, {label}"] = evaluation.rates_table(report)
            r = report
            print(f"guidance {scale:g}, {label:16s} shape seen {r['seen']['shape']:.3f} "
                  f"unseen {r['unseen']['shape']:.3f}  colour {r['all']['color']:.3f}")

    for name, row in rows.items():
        r = row["rates"]
        print(f"{name:58s} colour {r['seen']['color']:.3f}/{r['unseen']['color']:.3f}  "
              f"shape {r['seen']['shape']:.3f}/{r['unseen']['shape']:.3f}  "
              f"{row['seconds_per_picture']:.3f} s/picture  ({row['source']})")
    if args.save:
        result = {"command": "python " + shlex.join(sys.argv),
                  "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch thread(s)",
                  "prompts": "the 36 'a {colour} {shape}' prompts; seen = 29, unseen = 7",
                  "judge": "mmlearn.judge.judge_images", "rows": rows,
                  "prior_vs_text": prior_vs_text}
        atomic_write_bytes(args.save, json.dumps(result, indent=1).encode() + b"\n")


if __name__ == "__main__":
    main()
