"""Train the shape judge (judge.ShapeJudge); ship it as mmlearn/weights/shape_judge.safetensors.

    python scripts/train_judge.py            # 5-9 minutes on one (shared) CPU core

The judge checks VQGAN+CLIP's pictures without using CLIP. It classifies *silhouettes*:
the largest patch of a picture's dominant colour, centred and scaled (mmlearn.judge.
silhouettes). Training data:

- ShapeWorld pictures of all 36 colour x shape combinations, one object each, labelled
  with their shape; half of them slightly stretched, tilted and shifted, half blurred,
  all noised, so that the imperfect, soft pictures a VQGAN decodes look familiar;
- "blob" pictures: random smooth patches (thresholded low-resolution noise) in a
  ShapeWorld colour, so that a shapeless smear has a class of its own.

Then it measures, on pictures drawn with another seed: the judge's colour and shape
accuracy on clean ShapeWorld pictures, on their course-VQGAN reconstructions (what the
generator's decoder makes of real shapes), and how often a blob is called a shape.

Deterministic: same seed, same thread count -> same weights. Writes the fp16 state dict
atomically and records its sha256 in mmlearn/weights/SHA256SUMS.
"""

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as v2

from mmlearn import judge
from mmlearn.checkpoints import WEIGHTS_DIR, half_precision, ship
from mmlearn.config import seed_everything
from mmlearn.images import float_to_uint8
from mmlearn.optim import parameter_count, set_learning_rate, warmup_cosine
from mmlearn.shapes import COLORS, SHAPES, ShapeWorld
from mmlearn.vqgan import load_course_vqgan, to_unit_range, to_vqgan_range

BLOB = len(SHAPES)  # index of "blob" in judge.SHAPE_CLASSES


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", type=int, default=24000, help="ShapeWorld training images")
    parser.add_argument("--blobs", type=int, default=4000, help="random blob training images")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(WEIGHTS_DIR / judge.JUDGE_WEIGHTS))
    return parser.parse_args()


def blob_images(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random smooth patches in ShapeWorld colours on a dark background: [n, 3, 32, 32] in [0, 1].

    Noise on a coarse grid (4x4 to 6x6), upsampled smoothly and thresholded so that the
    patch covers 4-25 % of the picture, with a soft edge like the drawn shapes.
    """
    images, colors = [], []
    palette = torch.tensor(list(COLORS.values()), dtype=torch.float32) / 255
    for _ in range(n):
        grid = int(torch.randint(4, 7, (1,), generator=generator))
        field = F.interpolate(torch.randn(1, 1, grid, grid, generator=generator),
                              size=(judge.SIDE, judge.SIDE), mode="bicubic", align_corners=False)
        area = float(torch.empty(1).uniform_(0.04, 0.25, generator=generator))
        threshold = field.flatten().quantile(1 - area)
        alpha = torch.sigmoid((field[0] - threshold) * 8)
        color = int(torch.randint(len(COLORS), (1,), generator=generator))
        background = float(torch.randint(10, 51, (1,), generator=generator)) / 255
        images.append(alpha * palette[color].view(3, 1, 1) + (1 - alpha) * background)
        colors.append(color)
    return torch.stack(images).clamp(0, 1), torch.tensor(colors)


def distort(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Stretch (0.8-1.25 along each axis), rotate (+-8 degrees) and shift half of the pictures.

    A generated circle is never perfectly round; slightly stretched or tilted shapes
    should keep their name (a diamond is a square turned 45 degrees, so no more than 8).
    """
    n = len(pixels)
    angle = torch.empty(n).uniform_(-8, 8, generator=generator).deg2rad()
    stretch = torch.empty(n, 2).uniform_(0.8, 1.25, generator=generator)
    shift = torch.empty(n, 2).uniform_(-0.1, 0.1, generator=generator)
    cos, sin = angle.cos(), angle.sin()
    rows = [torch.stack([cos / stretch[:, 0], -sin / stretch[:, 0], shift[:, 0]], dim=1),
            torch.stack([sin / stretch[:, 1], cos / stretch[:, 1], shift[:, 1]], dim=1)]
    theta = torch.stack(rows, dim=1)  # one 2x3 affine matrix per picture
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
    background = pixels[:, :, :1, :1]  # the corner pixel: the background level
    warped = F.grid_sample(pixels - background, grid, align_corners=False) + background
    pick = torch.rand(n, 1, 1, 1, generator=generator) < 0.5
    return torch.where(pick, warped, pixels)


def roughen(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Blur half of the pictures a little and add noise to all: VQGAN output is not crisp."""
    blurred = v2.functional.gaussian_blur(pixels, kernel_size=[3, 3], sigma=[0.7, 0.7])
    pick = torch.rand(len(pixels), 1, 1, 1, generator=generator) < 0.5
    noise = torch.randn(pixels.shape, generator=generator) * 0.03
    return (torch.where(pick, blurred, pixels) + noise).clamp(0, 1)


def training_set(args, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Silhouettes [N, 1, 32, 32] and labels (shape index, BLOB for blobs)."""
    data = ShapeWorld(args.shapes, "all", seed=args.seed)
    pixels = roughen(distort(data.images.float() / 255, generator), generator)
    colors = torch.tensor([judge.COLOR_NAMES.index(o[0]["color"]) for o in data.objects])
    labels = torch.tensor([SHAPES.index(o[0]["shape"]) for o in data.objects])
    blobs, blob_colors = blob_images(args.blobs, generator)
    pixels = torch.cat([pixels, roughen(blobs, generator)])
    colors = torch.cat([colors, blob_colors])
    labels = torch.cat([labels, torch.full((args.blobs,), BLOB)])
    masks, found = judge.silhouettes(pixels, colors)
    return masks[found], labels[found]


def fit(model: judge.ShapeJudge, masks: torch.Tensor, labels: torch.Tensor, args,
        generator: torch.Generator) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * (len(masks) // args.batch_size)
    step = 0
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(masks), generator=generator)
        for start in range(0, len(order) - args.batch_size + 1, args.batch_size):
            batch = order[start:start + args.batch_size]
            # the course's one schedule; a long warm-up (30 %) suits this small CNN's big rate
            set_learning_rate(optimizer, warmup_cosine(step, steps, args.lr, steps * 3 // 10))
            loss = F.cross_entropy(model(masks[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.4f}")
    model.eval()


def accuracy(model, images: torch.Tensor, data: ShapeWorld) -> dict:
    """Colour and shape accuracy of the full judge (dominant colour, silhouette, CNN)."""
    targets = [(o[0]["color"], o[0]["shape"]) for o in data.objects]
    return judge.hit_rates(judge.judge_images(images, model), targets)


@torch.no_grad()
def report(model: judge.ShapeJudge, args, generator: torch.Generator) -> None:
    test = ShapeWorld(args.n_test, "all", seed=args.seed + 1)
    clean = accuracy(model, test.images, test)
    warped = distort(test.images.float() / 255, generator)
    warped = accuracy(model, float_to_uint8(warped), test)
    vqgan = load_course_vqgan("cpu")
    rebuilt = torch.cat([to_unit_range(vqgan.reconstruct(to_vqgan_range(c.float() / 255)))
                         for c in test.images.split(250)])
    rebuilt = accuracy(model, float_to_uint8(rebuilt), test)
    blobs, colors = blob_images(500, generator)
    masks, found = judge.silhouettes(blobs, colors)
    called_blob = (model(masks[found]).argmax(dim=1) == BLOB).float().mean()
    print(f"held-out ShapeWorld ({args.n_test} pictures, all 36 combinations, seed "
          f"{args.seed + 1}): colour {clean['color']:.4f}, shape {clean['shape']:.4f}")
    print(f"the same, half of them stretched/tilted/shifted: colour {warped['color']:.4f}, "
          f"shape {warped['shape']:.4f}")
    print(f"their course-VQGAN reconstructions: colour {rebuilt['color']:.4f}, "
          f"shape {rebuilt['shape']:.4f}")
    print(f"held-out random blobs called 'blob': {called_blob:.4f}")


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    masks, labels = training_set(args, generator)
    print(f"{len(masks)} training silhouettes in {time.perf_counter() - start:.0f} s")
    model = judge.ShapeJudge()
    fit(model, masks, labels, args, generator)
    print(f"trained in {time.perf_counter() - start:.0f} s "
          f"({parameter_count(model)} parameters)")
    shipped = half_precision(model.state_dict())
    model.load_state_dict({k: v.float() for k, v in shipped.items()})  # measure what ships
    report(model, args, generator)
    digest = ship(shipped, args.out)
    print(f"wrote {args.out}" + (f", sha256 {digest} (recorded in SHA256SUMS)" if digest else ""))


if __name__ == "__main__":
    main()
