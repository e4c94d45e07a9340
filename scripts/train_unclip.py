"""Train the course's tiny unCLIP (two priors + diffusion decoder) on ShapeWorld and ship it.

    python scripts/train_unclip.py                  # about 13 min on one (shared) CPU core
    python scripts/train_unclip.py --train diffusion-prior   # only that (about 2 min)
    python scripts/train_unclip.py --evaluate-only  # measure the shipped model (~30 s)

1. Draw 8000 ShapeWorld training images (one shape each, "train" split: the held-out
   colour x shape combinations never appear). Embed each with the course CLIP's image
   encoder (64 numbers) and encode it with the course VQGAN into its quantised 16x8x8
   latent grid; embed each caption with the course CLIP's text encoder (95 s).
2. Prior: a residual MLP from the caption's text embedding to the picture's image
   embedding (loss 1 - cosine, 1500 steps, a few seconds), ``mmlearn.unclip.PriorMLP``.
3. Decoder: a TinyUNet (widths 48, 96; 0.89 M parameters) that denoises the latent grid
   given the image embedding: cosine schedule, T = 200, predict the noise; condition
   dropped 10 % of the time for classifier-free guidance; times drawn as T * sqrt(u)
   (more training where the noise is large, see ``unclip.decoder_loss``); 6000 steps of
   64, AdamW lr 3e-3 with warm-up and cosine decay; the EMA of its weights is shipped.
4. Diffusion prior (``mmlearn.diffusion_prior``, DALL-E 2's kind): a residual MLP that
   denoises an image embedding given the caption's text embedding, trained on 64000 more
   (caption, picture) pairs (CLIP embeddings only, 20 s to make), 3000 steps of 256;
   guidance 2 by default (lesson 06 shows why).
5. Write the fp16 checkpoints atomically and record their sha256.
6. Evaluate both priors with the decoder: 36 prompts "a {colour} {shape}" x 8 samples
   (DDIM, 25 steps, guidance 3, seed 0), judged by ``mmlearn.judge``, and the variety of
   each prompt's pictures (``evaluation.variety``); the time for 8 samples of one prompt.

The shipped weights' figures, and the command that re-measures them, are in
benchmarks/results/recorded.md.

Deterministic: same seed and thread count -> same weights.
"""

import argparse
import os
import time

import torch

from mmlearn import diffusion_prior, evaluation, unclip
from mmlearn.checkpoints import WEIGHTS_DIR, load_checkpoint, ship
from mmlearn.config import seed_everything
from mmlearn.judge import judge_images
from mmlearn.optim import parameter_count
from mmlearn.shapes import ShapeWorld

PARTS = ("prior", "decoder", "diffusion-prior")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-images", type=int, default=8000)
    parser.add_argument("--steps", type=int, default=6000, help="decoder training steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--prior-steps", type=int, default=1500)
    parser.add_argument("--train", nargs="+", default=list(PARTS), choices=PARTS,
                        help="what to train (the rest is read from --out-dir)")
    parser.add_argument("--diffusion-prior-images", type=int, default=64000)
    parser.add_argument("--diffusion-prior-steps", type=int, default=3000)
    parser.add_argument("--widths", type=int, nargs="+", default=[48, 96])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out-dir", default=str(WEIGHTS_DIR),
                        help="where to write the weights; the default ships them")
    parser.add_argument("--cache", default=None,
                        help="a .pt file to keep the embedded training set in (not shipped)")
    parser.add_argument("--evaluate-only", action="store_true")
    parser.add_argument("--scale", type=float, default=3.0, help="decoder guidance for evaluation")
    parser.add_argument("--prior-scale", type=float, default=None,
                        help="diffusion prior guidance for evaluation (default: its own)")
    parser.add_argument("--sampling-steps", type=int, default=25)
    return parser.parse_args()


def training_set(args, clip, vqgan) -> dict:
    """Embedded training pairs: CLIP image and text embeddings, VQGAN latents."""
    if args.cache and os.path.exists(args.cache):
        return torch.load(args.cache, weights_only=True)
    data = ShapeWorld(args.train_images, "train", seed=args.seed, max_objects=1)
    captions = sorted(set(data.captions))
    text_of = dict(zip(captions, clip.encode_texts(captions)))
    pairs = {"image_embedding": unclip.image_embeddings(clip, data.images),
             "text_embedding": torch.stack([text_of[c] for c in data.captions]),
             "latents": unclip.vqgan_latents(vqgan, data.images)}
    if args.cache:
        torch.save(pairs, args.cache)
    return pairs


def prior_pairs(args, clip) -> dict:
    """Many more (caption, picture) pairs for the diffusion prior: CLIP embeddings only."""
    data = ShapeWorld(args.diffusion_prior_images, "train", seed=args.seed + 1, max_objects=1)
    captions = sorted(set(data.captions))
    text_of = dict(zip(captions, clip.encode_texts(captions)))
    return {"image_embedding": unclip.image_embeddings(clip, data.images),
            "text_embedding": torch.stack([text_of[c] for c in data.captions])}


def evaluate(model: unclip.UnCLIP, args, name: str) -> None:
    start = time.perf_counter()
    prompts = evaluation.color_shape_prompts()
    drawn = model.generate(prompts, n=8, scale=args.scale, steps=args.sampling_steps,
                           prior_scale=args.prior_scale)
    rows = [evaluation.judged_row(d.prompt, judge_images(d.images)) for d in drawn]
    report, variety = evaluation.averages(rows), evaluation.variety(drawn, model.clip)
    print(f"{name} prior: 36 prompts x 8 samples (DDIM {args.sampling_steps} steps, guidance "
          f"{args.scale}) judged in {time.perf_counter() - start:.0f} s")
    for group in ("all", "seen", "unseen"):
        rates, v = report[group], variety[group]
        print(f"  {group:7s} colour {rates['color']:.3f}  shape {rates['shape']:.3f}  "
              f"centre spread {v['centre']:.2f} px ({v['centre_ratio']:.2f} of real)  size "
              f"spread {v['size']:.4f} ({v['size_ratio']:.2f})  precision {v['precision']:.3f}"
              f"  recall {v['recall']:.3f}")
    weak = [f"{r['prompt']} {r['shape']:.2f}" for r in rows if r["shape"] < 0.75]
    print("  prompts with shape < 0.75:", ", ".join(weak) or "none")
    model.generate(["a red star"], n=8)  # warm-up
    start = time.perf_counter()
    model.generate(["a big blue triangle"], n=8, steps=args.sampling_steps)
    print(f"  8 samples of one prompt: {time.perf_counter() - start:.2f} s "
          f"({torch.get_num_threads()} thread(s), DDIM {args.sampling_steps} steps, guidance "
          f"{args.scale}: {2 * args.sampling_steps} UNet passes on a batch of 8)")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    start = time.perf_counter()
    from mmlearn.clip import load_clip
    from mmlearn.vqgan import load_course_vqgan

    clip, vqgan = load_clip("course", "cpu", verbose=False), load_course_vqgan("cpu")
    paths = {part: os.path.join(args.out_dir, name) for part, name in (
        ("decoder", unclip.DECODER_WEIGHTS), ("prior", unclip.PRIOR_WEIGHTS),
        ("diffusion-prior", unclip.DIFFUSION_PRIOR_WEIGHTS))}
    trained = {}
    if not args.evaluate_only and {"prior", "decoder"} & set(args.train):
        pairs = training_set(args, clip, vqgan)
        print(f"{len(pairs['latents'])} pictures embedded in {time.perf_counter() - start:.0f} s",
              flush=True)
    if not args.evaluate_only and "prior" in args.train:
        torch.manual_seed(args.seed)
        prior = unclip.PriorMLP()
        unclip.train_prior(prior, pairs["text_embedding"], pairs["image_embedding"],
                           steps=args.prior_steps, seed=args.seed, log_every=500)
        trained["prior"] = unclip.prior_checkpoint(prior)
    if not args.evaluate_only and "decoder" in args.train:
        config = unclip.DecoderConfig(
            widths=tuple(args.widths), latent_scale=round(float(pairs["latents"].std()), 4))
        torch.manual_seed(args.seed)
        unet = config.new_unet()
        print(f"decoder: {parameter_count(unet):,} parameters", flush=True)
        ema, losses = unclip.train_decoder(unet, pairs["latents"], pairs["image_embedding"],
                                           config, steps=args.steps, batch_size=args.batch_size,
                                           lr=args.lr, seed=args.seed, log_every=200)
        config.history = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                          "train_images": len(pairs["latents"]), "seed": args.seed,
                          "final_loss": round(sum(losses[-100:]) / len(losses[-100:]), 4)}
        trained["decoder"] = unclip.decoder_checkpoint(ema, config)
    if not args.evaluate_only and "diffusion-prior" in args.train:
        pairs = prior_pairs(args, clip)
        print(f"{len(pairs['text_embedding'])} pairs for the diffusion prior after "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        torch.manual_seed(args.seed)
        prior = diffusion_prior.DiffusionPrior()
        print(f"diffusion prior: {parameter_count(prior):,} parameters", flush=True)
        diffusion_prior.train_prior(prior, pairs["text_embedding"], pairs["image_embedding"],
                                    steps=args.diffusion_prior_steps, seed=args.seed,
                                    log_every=500)
        trained["diffusion-prior"] = diffusion_prior.checkpoint(prior)
    for part, checkpoint in trained.items():
        digest = ship(checkpoint, paths[part])
        print(f"{os.path.basename(paths[part])}: {os.path.getsize(paths[part]) / 1e6:.2f} MB"
              + (f", sha256 {digest} (recorded in SHA256SUMS)" if digest else ""), flush=True)
    if trained:
        print(f"training done in {time.perf_counter() - start:.0f} s", flush=True)
    # evaluate the weights as written (fp16)
    unet, config = unclip.decoder_from_checkpoint(load_checkpoint(paths["decoder"]))
    priors = {
        "diffusion": diffusion_prior.from_checkpoint(load_checkpoint(paths["diffusion-prior"])),
        "regression": unclip.prior_from_checkpoint(load_checkpoint(paths["prior"]))}
    for name, prior in priors.items():
        evaluate(unclip.UnCLIP(clip, vqgan, unet, config, prior), args, name)
    print(f"total run time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
