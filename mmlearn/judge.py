"""An independent judge of generated ShapeWorld pictures: which colour, which shape?

VQGAN+CLIP changes an image until *the CLIP it uses* likes it. Asking that same CLIP
whether the result is good would be marking one's own homework: the optimiser may have
found a pattern that fools CLIP and no one else. So the judge uses nothing of CLIP:

- **colour** from pixel statistics: every clearly coloured pixel (chroma, max - min of
  R, G, B, at least ``MIN_CHROMA``) is named after the ShapeWorld colour with the nearest
  hue; the name with most pixels is the picture's dominant colour.
- **shape** from a silhouette: the largest connected patch of the dominant colour, cut
  out, centred and scaled to a fixed size (so position and size do not matter), goes to a
  small CNN trained on silhouettes of ShapeWorld shapes by ``scripts/train_judge.py``.
  Besides the six shapes it knows a seventh class, ``"blob"``: random smooth patches, so
  a shapeless smear is not forced to count as some shape.

    from mmlearn import judge
    verdicts = judge.judge_images(images)       # uint8 [N, 3, H, W] or PIL images
    verdicts[0]                                 # Verdict(colour='red', shape='star', ...)
    judge.hit_rates(verdicts, [("red", "star"), ...])
"""

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from mmlearn import checks
from mmlearn.checkpoints import load_checkpoint, shipped_path
from mmlearn.images import to_uint8_tensor
from mmlearn.shapes import COLORS, SHAPES

JUDGE_WEIGHTS = "shape_judge.safetensors"
SHAPE_CLASSES: tuple[str, ...] = (*SHAPES, "blob")
SIDE = 32                  # the judge looks at pictures of this size
MIN_CHROMA = 60 / 255      # a pixel counts as coloured from this chroma on
EDGE_CHROMA = 20 / 255     # ... and as the soft edge of a silhouette from this one
MIN_PIXELS = 12            # fewer coloured pixels (at 32 px) than this: no colour, no shape
SILHOUETTE_SIDE = 24       # the cut-out silhouette is scaled to fit this square
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
_HUES = torch.tensor([colorsys.rgb_to_hsv(*(np.array(rgb) / 255))[0] for rgb in COLORS.values()])
_CHROMAS = torch.tensor([(max(rgb) - min(rgb)) / 255 for rgb in COLORS.values()])


@dataclass(frozen=True)
class Verdict:
    """What the judge sees: dominant colour, main shape (None: nothing there) and certainty."""

    color: str | None
    shape: str | None
    shape_probability: float = 0.0
    colored_share: float = 0.0  # fraction of the picture's pixels that are clearly coloured


def as_uint8_batch(images) -> torch.Tensor:
    """uint8 [N, 3, H, W] from such a tensor, one [3, H, W] image, or a list of PIL images."""
    if isinstance(images, Image.Image):
        images = [images]
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is empty: give the judge at least one picture.")
        tensors = [to_uint8_tensor(im) for im in images]
        sizes = {tuple(t.shape) for t in tensors}
        if len(sizes) > 1:
            raise ValueError(f"images are of different sizes {sorted(sizes)}; give the judge "
                             f"pictures of one size (image.resize((32, 32))).")
        images = torch.stack(tensors)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise ValueError(f"The judge takes uint8 images [N, 3, H, W] (or PIL images); images "
                         f"is {checks.describe_tensor(images)}. For pictures in [0, 1] use "
                         f"mmlearn.images.float_to_uint8(pictures).")
    images = images[None] if images.ndim == 3 else images
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W]; got shape {tuple(images.shape)}.")
    return images


def to_judge_size(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> float [N, 3, 32, 32] in [0, 1] (area-averaged when larger)."""
    pixels = images.float() / 255
    if pixels.shape[-2:] != (SIDE, SIDE):
        pixels = F.interpolate(pixels, size=(SIDE, SIDE), mode="bilinear", antialias=True,
                               align_corners=False).clamp(0, 1)
    return pixels


def color_map(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel of [N, 3, H, W] in [0, 1]: index of the nearest-hue colour, and the chroma.

    Hue ignores how bright or how grey a pixel is: a red shape's anti-aliased edge, half
    red and half dark background, still has red's hue, only less chroma.
    """
    high, low = pixels.max(dim=1).values, pixels.min(dim=1).values
    chroma = high - low
    r, g, b = pixels.unbind(dim=1)
    safe = chroma.clamp_min(1e-6)
    hue = torch.where(high == r, ((g - b) / safe) % 6,
                      torch.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    gap = (hue[..., None] - _HUES).abs()
    names = torch.minimum(gap, 1 - gap).argmin(dim=-1)  # hue is an angle: 0.95 is near 0.05
    return names, chroma


def dominant_color(pixels: torch.Tensor) -> tuple[int | None, float]:
    """Index of the colour with most clearly coloured pixels in one image [3, H, W]; their share."""
    names, chroma = color_map(pixels[None])
    colored = names[chroma >= MIN_CHROMA]
    if len(colored) < MIN_PIXELS * pixels.shape[-1] * pixels.shape[-2] / SIDE ** 2:
        return None, len(colored) / chroma.numel()
    return int(torch.bincount(colored, minlength=len(COLORS)).argmax()), \
        len(colored) / chroma.numel()


# ------------------------------------------------------------------------------ silhouettes


def largest_components(masks: torch.Tensor) -> torch.Tensor:
    """The largest 8-connected patch of each boolean mask [N, H, W].

    Every pixel starts with its own label; repeatedly each takes the largest label among
    its neighbours (a 3x3 max-pool) until nothing changes: then each patch has one label,
    and we keep the label that covers most pixels.
    """
    n, height, width = masks.shape
    labels = torch.arange(1, height * width + 1, dtype=torch.float32).view(1, height, width)
    labels = labels * masks
    while True:
        grown = F.max_pool2d(labels[:, None], 3, stride=1, padding=1)[:, 0] * masks
        if torch.equal(grown, labels):
            break
        labels = grown
    flat = labels.long().view(n, -1)
    counts = torch.zeros(n, height * width + 1).scatter_add_(1, flat, torch.ones(flat.shape))
    counts[:, 0] = 0  # label 0 is "not in the mask"
    return (labels == counts.argmax(dim=1).view(n, 1, 1)) & masks


def soft_masks(pixels: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """How much each pixel of [N, 3, H, W] belongs to a shape of colour ``colours[i]``: [N, H, W].

    Chroma relative to the colour's own: 1 inside a shape, partly on its anti-aliased
    edge (half shape, half grey background has half the chroma), 0 elsewhere.
    """
    names, chroma = color_map(pixels)
    wanted = colors.view(-1, 1, 1)
    return ((chroma / _CHROMAS[wanted]).clamp(0, 1) * (names == wanted)
            * (chroma >= EDGE_CHROMA))


def centred(mask: torch.Tensor) -> torch.Tensor:
    """Cut a soft mask [H, W] to its bounding box, pad it square, scale it into 32x32."""
    rows, cols = (mask > 0).any(dim=1).nonzero()[:, 0], (mask > 0).any(dim=0).nonzero()[:, 0]
    crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    side = max(crop.shape)
    square = torch.zeros(side, side)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
    scaled = F.interpolate(square[None, None], size=(SILHOUETTE_SIDE, SILHOUETTE_SIDE),
                           mode="bilinear", antialias=True, align_corners=False)[0]
    margin = (SIDE - SILHOUETTE_SIDE) // 2
    return F.pad(scaled, (margin, margin, margin, margin)).clamp(0, 1)


def silhouettes(pixels: torch.Tensor, colors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The main patch of colour ``colours[i]`` in each image [N, 3, 32, 32], centred.

    The patch is the largest connected region that clearly has the colour, plus its soft
    edge. Returns the silhouettes [N, 1, 32, 32] and which images have such a patch of at
    least MIN_PIXELS (the others get an empty silhouette: nothing there has a shape).
    """
    soft = soft_masks(pixels, colors)
    core = largest_components(soft >= 0.5)
    found = core.flatten(1).sum(dim=1) >= MIN_PIXELS
    region = F.max_pool2d(core[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
    out = torch.zeros(len(pixels), 1, SIDE, SIDE)
    for i in found.nonzero()[:, 0]:
        out[i] = centred(soft[i] * region[i])
    return out, found


# ------------------------------------------------------------------------------ the shape CNN


class ShapeJudge(nn.Module):
    """A small CNN: silhouette [N, 1, 32, 32] -> logits over SHAPE_CLASSES (6 shapes + blob)."""

    def __init__(self, width: int = 16):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
                    nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(1, width), *block(width, 2 * width),
                                      *block(2 * width, 4 * width))  # 32 -> 4 px
        self.classify = nn.Linear(4 * width * 4 * 4, len(SHAPE_CLASSES))

    def forward(self, silhouettes: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(silhouettes).flatten(1))


def load_shape_judge() -> ShapeJudge:
    """The shipped shape CNN (scripts/train_judge.py), sha256-checked, in eval mode on the CPU."""
    model = ShapeJudge()
    state_dict = load_checkpoint(shipped_path(JUDGE_WEIGHTS))
    model.load_state_dict({k: v.float() for k, v in state_dict.items()})
    return model.eval().requires_grad_(False)


# ------------------------------------------------------------------------------ verdicts

_judge: ShapeJudge | None = None


@torch.no_grad()
def judge_images(images, model: ShapeJudge | None = None, strict: bool = True) -> list[Verdict]:
    """A Verdict per image (uint8 [N, 3, H, W] or PIL images; resized to 32 px).

    ``strict=False`` forbids the "blob" answer: the judge must name the nearest of the
    six ShapeWorld shapes, as a classifier that only knows ShapeWorld would.
    """
    global _judge
    strict = checks.flag(strict, "strict")
    if model is not None:
        checks.instance(model, "model", ShapeJudge, "a judge.ShapeJudge (or None: the course's)")
    if model is None:
        _judge = _judge or load_shape_judge()
        model = _judge
    pixels = to_judge_size(as_uint8_batch(images))
    dominant = [dominant_color(image) for image in pixels]
    colors = torch.tensor([-1 if c is None else c for c, _ in dominant])
    masks, found = silhouettes(pixels, colors.clamp_min(0))
    logits = model(masks)
    if not strict:
        logits[:, SHAPE_CLASSES.index("blob")] = -torch.inf
    probabilities = logits.softmax(dim=-1)
    verdicts = []
    for (color, share), has_shape, p in zip(dominant, found, probabilities):
        if color is None or not has_shape:
            name = None if color is None else COLOR_NAMES[color]
            verdicts.append(Verdict(name, None, 0.0, share))
        else:
            best = int(p.argmax())
            verdicts.append(Verdict(COLOR_NAMES[color], SHAPE_CLASSES[best], float(p[best]),
                                    share))
    return verdicts


def hit_rates(verdicts: Sequence[Verdict], targets: Sequence[tuple[str, str]]) -> dict:
    """Share of pictures whose dominant colour / main shape / both are the (colour, shape) asked."""
    if len(verdicts) != len(targets) or not targets:
        raise ValueError(f"Give one (colour, shape) target per verdict; got {len(verdicts)} "
                         f"verdicts and {len(targets)} targets.")
    color = [v.color == c for v, (c, _) in zip(verdicts, targets)]
    shape = [v.shape == s for v, (_, s) in zip(verdicts, targets)]
    both = [a and b for a, b in zip(color, shape)]
    return {"color": float(np.mean(color)), "shape": float(np.mean(shape)),
            "both": float(np.mean(both)), "n": len(targets)}
