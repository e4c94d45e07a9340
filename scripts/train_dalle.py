"""Train the tiny DALL-E on ShapeWorld; ship it as mmlearn/weights/dalle_shapeworld.safetensors.

    python scripts/train_dalle.py                  # about 15 min on one (shared) CPU core
    python scripts/train_dalle.py --evaluate-only  # measure the shipped model (~40 s)

1. Draw ShapeWorld training images (one shape each, "train" split: the held-out colour x
   shape combinations never appear) and turn each into 8x8 = 64 tokens with the course
   VQGAN, once, up front. Captions become 12 word ids.
2. Train ``mmlearn.dalle.TinyDalle`` on [text ids, image tokens] with next-token
   cross-entropy (image tokens 7/8, text tokens 1/8 of the loss), AdamW, warm-up then
   cosine decay.
3. Write the fp16 checkpoint (sizes, vocabulary, weights) atomically, record its sha256.
4. Evaluate: for each of the 36 prompts "a {colour} {shape}", draw ``--candidates``
   images (temperature 0.7, top-k 32), rerank them with the course CLIP and keep the best
   ``--keep``. An independent judge (``mmlearn.judge``: pixel colours and a shape CNN, no
   CLIP) names the colour and shape of every image; we report how often they match the
   prompt, with and without reranking, for seen and unseen combinations
   (``evaluation.dalle_hit_rates``).

The shipped model's figures, and the command that re-measures them, are in
benchmarks/results/recorded.md.

Deterministic: same seed and thread count -> same weights.
"""

import argparse
import os
import time

import torch

from mmlearn import dalle, evaluation
from mmlearn.checkpoints import WEIGHTS_DIR, load_checkpoint, ship
from mmlearn.config import seed_everything
from mmlearn.optim import decay_groups, parameter_count, set_learning_rate, warmup_cosine
from mmlearn.shapes import ShapeWorld
from mmlearn.vqgan import load_course_vqgan


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--train-images", type=int, default=20000)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(WEIGHTS_DIR / dalle.COURSE_WEIGHTS),
                        help="where to write the weights; the default ships them")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="skip training; evaluate the file at --out")
    parser.add_argument("--clip", default="course", help="CLIP for reranking (load_clip source)")
    parser.add_argument("--candidates", type=int, default=32, help="samples per prompt")
    parser.add_argument("--keep", type=int, default=4, help="best samples kept after reranking")
    return parser.parse_args()


def learning_rate(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up, then a cosine decay to 10 % of the peak."""
    return warmup_cosine(step, args.steps, args.lr, args.warmup, floor=0.1)


def make_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """AdamW with GPT's betas; weight decay on matrices only (not biases, norms)."""
    return torch.optim.AdamW(decay_groups(model, 0.01), lr=lr, betas=(0.9, 0.95))


def train(model: dalle.TinyDalle, text: torch.Tensor, image: torch.Tensor,
          args: argparse.Namespace) -> None:
    """Next-token training on random batches drawn with a seeded generator."""
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = make_optimizer(model, args.lr)
    model.train()
    start = time.perf_counter()
    for step in range(args.steps):
        batch = torch.randint(len(text), (args.batch_size,), generator=generator)
        set_learning_rate(optimizer, learning_rate(step, args))
        loss, parts = dalle.dalle_loss(model, text[batch], image[batch], model.tokenizer.pad_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.3f}  text {parts['text']:.3f}  "
                  f"image {parts['image']:.3f}  {time.perf_counter() - start:.0f} s", flush=True)
    model.eval()


def evaluate(model: dalle.TinyDalle, vqgan, clip, args: argparse.Namespace) -> None:
    """Colour and shape hit rates over the 36 prompts, with and without CLIP reranking."""
    start = time.perf_counter()
    report = evaluation.dalle_hit_rates(model, vqgan, clip, candidates=args.candidates,
                                        keep=args.keep, seed=args.seed)
    print(f"evaluation ({args.candidates} samples per prompt, best {args.keep} by "
          f"{clip.name}) in {time.perf_counter() - start:.0f} s")
    print(evaluation.format_report(report))
    prompt = "a big blue triangle"
    start = time.perf_counter()
    dalle.sample(model, vqgan, prompt, n=8)
    print(f"8 samples for {prompt!r}: {time.perf_counter() - start:.2f} s "
          f"({torch.get_num_threads()} thread(s))")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    seed_everything(args.seed)
    vqgan = load_course_vqgan("cpu")
    if args.evaluate_only:
        model = dalle.dalle_from_checkpoint(load_checkpoint(args.out), "cpu")
    else:
        data = ShapeWorld(args.train_images, "train", seed=args.seed, max_objects=1)
        model = dalle.new_dalle(args.seed, width=args.width, layers=args.layers,
                                heads=args.heads)
        text, image = dalle.tokenize_pairs(vqgan, model.tokenizer, data.images, data.captions,
                                           batch_size=500)  # as for the shipped weights
        print(f"{len(data)} images tokenized in {time.perf_counter() - start:.0f} s; model "
              f"{parameter_count(model):,} parameters, {model.config}", flush=True)
        train(model, text, image, args)
        digest = ship(dalle.checkpoint_dict(model), args.out)
        print(f"training done in {time.perf_counter() - start:.0f} s; wrote {args.out} "
              f"({os.path.getsize(args.out) / 1e6:.2f} MB)")
        if digest:
            print(f"sha256 {digest} (recorded in SHA256SUMS)")
        # evaluate the weights as shipped (fp16)
        model = dalle.dalle_from_checkpoint(load_checkpoint(args.out), "cpu")
    from mmlearn.clip import COURSE_MODEL, load_clip

    architecture = COURSE_MODEL if os.path.isfile(args.clip) else None  # a course CLIP file
    evaluate(model, vqgan, load_clip(args.clip, "cpu", model=architecture), args)
    print(f"total run time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
