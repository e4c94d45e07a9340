"""Train the course VQGAN on ShapeWorld and ship it as mmlearn/weights/vqgan_shapeworld.safetensors.

    python scripts/train_vqgan.py            # the VQGAN: reconstruction + codebook + GAN
    python scripts/train_vqgan.py --no-gan --out vqvae.safetensors   # without the GAN term

The model is the one described by mmlearn/model_configs/vqgan-shapeworld.yaml. The loss
is a squared-error reconstruction loss plus VQ-VAE's codebook and commitment terms and,
from step ``--gan-start`` on, VQGAN's adversarial term (mmlearn.adversarial: taming's patch
discriminator, hinge loss, the paper's adaptive weight). Before that step the run is the
same, draw for draw, as a ``--no-gan`` run: the discriminator only joins once the
reconstructions are good enough to be worth criticising, as in the paper.

Why squared error and not L1 (taming's choice)? Shapes cover a small part of a ShapeWorld
image. L1 pulls on every wrong pixel equally, so early on the dark background wins and
for thousands of steps every shape comes out as the same orange blob; the squared error
pulls hardest on the largest errors - the shapes.

The original VQGAN also adds a perceptual loss (LPIPS, a pretrained VGG16). It is left out:
its weights cannot be downloaded here, and ImageNet features say little about flat shapes.

Codes that no batch picks for a while are "dead": they get no gradient and never come
back by themselves. Every ``--restart-every`` steps such codes are moved onto encoder
outputs of the current batch, where they are sure to be used. At step 0 every code is
unused, so the codebook starts from real encoder outputs instead of tiny random values.

Deterministic: same seed, same thread count -> same weights. Writes the fp16 state dict
atomically, records its sha256 in mmlearn/weights/SHA256SUMS, prints the run time and
held-out reconstruction figures (benchmarks/results/recorded.md keeps the measured ones).
"""

import argparse
import time

import torch
import torch.nn.functional as F

from mmlearn.adversarial import (
    adaptive_weight,
    discriminator_loss,
    generator_loss,
    patch_discriminator,
)
from mmlearn.checkpoints import (
    WEIGHTS_DIR,
    half_precision,
    load_checkpoint,
    ship,
)
from mmlearn.config import seed_everything
from mmlearn.optim import parameter_count, set_learning_rate, warmup_cosine
from mmlearn.shapes import ShapeWorld
from mmlearn.vqgan import (
    COURSE_CONFIG,
    COURSE_WEIGHTS,
    VQGAN,
    codebook_usage,
    reconstruction_report,
    to_vqgan_range,
    vqgan_from_config,
)

RECONSTRUCTION_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--train-images", type=int, default=40000)
    parser.add_argument("--max-objects", type=int, default=3)
    parser.add_argument("--reconstruction-loss", choices=["l1", "mse"], default="mse")
    parser.add_argument("--gan-start", type=int, default=1500,
                        help="step at which the discriminator and its loss join")
    parser.add_argument("--gan-weight", type=float, default=0.5,
                        help="factor on the adaptive weight (taming's disc_weight)")
    parser.add_argument("--disc-lr", type=float, default=2e-4,
                        help="the discriminator's peak learning rate")
    parser.add_argument("--no-gan", action="store_true",
                        help="train a plain VQ-VAE: no discriminator at all")
    parser.add_argument("--restart-every", type=int, default=100,
                        help="steps between checks for unused codes (0: never restart)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", default=str(COURSE_CONFIG),
                        help="taming-style YAML describing the model (default: the course's)")
    parser.add_argument("--out", default=str(WEIGHTS_DIR / COURSE_WEIGHTS),
                        help="where to write the weights; the default ships them")
    return parser.parse_args()


@torch.no_grad()
def restart_dead_codes(model: VQGAN, latents: torch.Tensor, usage: torch.Tensor,
                       generator: torch.Generator) -> int:
    """Move every code with zero ``usage`` onto a random encoder output; return how many."""
    dead = (usage == 0).nonzero().flatten()
    if len(dead) > 0:
        vectors = latents.permute(0, 2, 3, 1).reshape(-1, model.embed_dim)
        picks = torch.randint(len(vectors), (len(dead),), generator=generator)
        model.codebook[dead] = vectors[picks]
    return len(dead)


def learning_rate(step: int, steps: int, peak: float, warmup: int = 100) -> float:
    """Linear warm-up, then a cosine decay to 5 % of the peak."""
    return warmup_cosine(step, steps, peak, warmup, floor=0.05)


def adversarial_term(model: VQGAN, discriminator: torch.nn.Module,
                     reconstruction: torch.Tensor, reconstruction_loss: torch.Tensor,
                     gan_weight: float) -> tuple[torch.Tensor, float]:
    """The decoder's GAN loss, scaled by the paper's adaptive weight; returns (term, weight)."""
    fooling = generator_loss(discriminator(reconstruction))
    weight = gan_weight * adaptive_weight(reconstruction_loss, fooling,
                                          model.decoder.conv_out.weight)
    return weight * fooling, float(weight)


def train(model: VQGAN, images: torch.Tensor, held_out: torch.Tensor,
          args: argparse.Namespace) -> None:
    """Adam on reconstruction (``--reconstruction-loss``, squared error by default) + codebook
    loss (+ the adversarial term from ``--gan-start``), batches drawn with a seeded generator.

    Each step with the GAN on has two updates, as in taming: the VQGAN's (whose loss
    includes fooling the discriminator), then the discriminator's on real pictures and the
    detached reconstructions. Every 500 steps it prints the reconstruction figures on a few
    ``held_out`` images.
    """
    generator = torch.Generator().manual_seed(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    discriminator = None if args.no_gan else patch_discriminator()
    if discriminator is not None:  # taming's betas for both players of the game
        disc_optimizer = torch.optim.Adam(discriminator.parameters(), lr=args.disc_lr,
                                          betas=(0.5, 0.9))
    usage, restarted, gan_note = torch.zeros(model.n_embed), 0, ""
    model.train()
    for step in range(args.steps):
        batch = images[torch.randint(len(images), (args.batch_size,), generator=generator)]
        x = to_vqgan_range(batch.float() / 255)
        if args.restart_every and step % args.restart_every == 0:
            restarted = restart_dead_codes(model, model.encode_latent(x), usage, generator)
            usage.zero_()
        set_learning_rate(optimizer, learning_rate(step, args.steps, args.lr))
        reconstruction, vq_loss, indices = model(x)
        reconstruction_loss = RECONSTRUCTION_LOSSES[args.reconstruction_loss](reconstruction, x)
        loss = reconstruction_loss + vq_loss
        gan_on = discriminator is not None and step >= args.gan_start
        if gan_on:
            term, weight = adversarial_term(model, discriminator, reconstruction,
                                            reconstruction_loss, args.gan_weight)
            loss = loss + term
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if gan_on:
            set_learning_rate(disc_optimizer, learning_rate(step, args.steps, args.disc_lr))
            d_loss = discriminator_loss(discriminator(x), discriminator(reconstruction.detach()))
            disc_optimizer.zero_grad()
            d_loss.backward()
            disc_optimizer.step()
            gan_note = f"  gan weight {weight:.3f}  disc {d_loss.item():.3f}"
        usage += torch.bincount(indices.flatten(), minlength=model.n_embed)
        if step % 250 == 0 or step == args.steps - 1:
            stats = codebook_usage(indices, model.n_embed)
            print(f"step {step:5d}  {args.reconstruction_loss} {reconstruction_loss.item():.4f}"
                  f"  vq {vq_loss.item():.4f}"
                  f"  codes in batch {stats['used']:3d}  perplexity {stats['perplexity']:5.1f}"
                  f"  restarted {restarted}{gan_note}", flush=True)
        if (step + 1) % 500 == 0:
            model.eval()
            report = reconstruction_report(model, held_out)
            model.train()
            print(f"      held-out psnr {report['psnr']:.1f} dB  colour agreement "
                  f"{report['color_agreement']:.3f}  sharpness {report['sharpness']:.3f}"
                  f"  codes used {report['used']}", flush=True)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    seed_everything(args.seed)
    train_set = ShapeWorld(args.train_images, "train", seed=args.seed,
                           max_objects=args.max_objects)
    print(f"{len(train_set)} training images in {time.perf_counter() - start:.1f} s")
    model = vqgan_from_config(args.config)
    print(f"VQGAN from {args.config}: {parameter_count(model):,} "
          f"parameters, {model.n_embed} codes")
    check_set = ShapeWorld(200, "test_seen", seed=args.seed + 1, max_objects=args.max_objects)
    train(model, train_set.images, check_set.images, args)
    model.eval()
    digest = ship(half_precision(model.state_dict()), args.out)
    print(f"training done in {time.perf_counter() - start:.0f} s; wrote {args.out}")
    if digest:
        print(f"sha256 {digest} (recorded in SHA256SUMS)")
    # Evaluate the weights as shipped (fp16), on images the model never saw.
    model.load_state_dict(load_checkpoint(args.out))
    for split in ("test_seen", "test_unseen"):
        held_out = ShapeWorld(1000, split, seed=args.seed, max_objects=args.max_objects)
        report = reconstruction_report(model, held_out.images)
        print(f"{split:11s}  mse {report['mse']:.5f}  psnr {report['psnr']:.1f} dB  "
              f"codes used {report['used']}/{report['total']}  perplexity "
              f"{report['perplexity']:.1f}  colour agreement {report['color_agreement']:.3f}  "
              f"sharpness {report['sharpness']:.3f}")
    print(f"total run time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
