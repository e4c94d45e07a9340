"""VQGAN+CLIP: paint a picture by asking CLIP, step after step, how well it fits a prompt.

VQGAN can decode any grid of codebook vectors into an image, but a *random* grid decodes
to a patchwork of fragments: nothing in the decoder knows what the picture should show.
CLIP knows how well an image fits a sentence. So we optimise the grid itself:

    z (a continuous latent grid, [1, embed_dim, h, w])
      -> snap every vector to its nearest codebook entry, straight-through gradient
      -> VQGAN decoder -> image
      -> several random crops ("cutouts") of the image, resized to CLIP's input, augmented
      -> CLIP image embeddings, compared with the prompt embeddings (spherical distance)
      -> loss; backpropagate into z; Adam step; keep z inside the codebook's range.

Why cutouts: one image scored once lets the optimiser find a few pixels that fool CLIP
(an adversarial pattern). Averaging the score over many random crops, flips and small
rotations rewards only what CLIP recognises from every view: the object itself.

Augmentations used (``RandomViews``, one random draw per cutout, all cutouts in one call):
a square crop (side ``min_crop``..1 of the image, as torchvision's ``RandomResizedCrop``
draws it) resized to CLIP's input, a horizontal flip half of the time, +-10 degrees of
rotation, a 5 % shift and Gaussian noise (sigma 0.02). No colour jitter: colour is what the
prompts ask for.

Prompts are written ``"a red circle:1 | blue:-0.5"``: ``text:weight`` parts joined by
``|``; a negative weight pushes the image away from that text. Weights lie within
-10..10 and at least one must be positive: something has to pull the picture.

    from mmlearn import vqgan_clip, vqgan
    from mmlearn.clip import load_clip
    result = vqgan_clip.generate("a red star", load_clip("course"), vqgan.load_course_vqgan())
    result.image                      # a PIL image; result.frames: the optimisation

The same code runs with a pretrained CLIP and taming's ImageNet VQGAN on a GPU::

    clip = load_clip("ViT-B-32:laion2b_s34b_b79k")
    model = vqgan.load_taming_vqgan("last.ckpt", "model.yaml")   # vqgan_imagenet_f16_16384
    vqgan_clip.generate("a watercolour of a lighthouse", clip, model, PRETRAINED_SETTINGS)

There: 256 px images (16x16 tokens), 32 cutouts, 300 steps. Time and GPU memory for that
setting have not been measured by the course (no GPU where it is built); lesson 04 prints
both when it runs on a GPU. The VQGAN decoder's activations at 256 px take most of the
memory, so fewer cutouts or a smaller size fit a smaller GPU. On a CPU it is far too slow.

Several CLIPs can guide together (``vqgan_clip.generate("a red star", [clip_a, clip_b],
vqgan)``): each scores the same cutouts and their losses add up.
"""

import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from mmlearn import checks
from mmlearn.config import seed_everything
from mmlearn.files import atomic_write_bytes
from mmlearn.images import float_to_uint8, to_uint8_tensor
from mmlearn.vqgan import VQGAN, to_unit_range, to_vqgan_range

# ------------------------------------------------------------------------------ prompts

MAX_WEIGHT = 10.0  # |weight| above this drowns the other parts and throws z out of range


@dataclass(frozen=True)
class WeightedPrompt:
    """One part of a prompt: a text and how much it counts (negative: steer away from it)."""

    text: str
    weight: float = 1.0


def parse_prompts(spec: str) -> list[WeightedPrompt]:
    """Parse ``"a red circle:1 | blue:-0.5"`` into weighted prompts.

    Parts are separated by ``|``. A part is ``text`` (weight 1) or ``text:weight``; the
    weight is whatever follows the last colon and must be a number within -10..10.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("The prompt is empty. Write e.g. 'a red circle' or "
                         "'a red circle:1 | blue:-0.5' (text:weight parts joined by '|').")
    prompts = []
    for number, part in enumerate(spec.split("|"), start=1):
        text, weight = part, "1"
        if ":" in part:
            text, weight = part.rsplit(":", 1)
        text = text.strip()
        if not text:
            raise ValueError(f"Part {number} of {spec!r} has no text; each part between '|' "
                             f"needs words, e.g. 'a red circle' or 'blue:-0.5'.")
        try:
            value = float(weight)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"Part {number} of {spec!r} has the weight {weight.strip()!r}; "
                             f"after the last ':' write a number such as 1, 0.5 or -0.5.")
        checks.weight(value, f"The weight of part {number} of {spec!r}", -MAX_WEIGHT, MAX_WEIGHT)
        prompts.append(WeightedPrompt(text, value))
    if all(p.weight == 0 for p in prompts):
        raise ValueError(f"All weights in {spec!r} are zero, so nothing would guide the image; "
                         f"give at least one part a non-zero weight.")
    return prompts


def prompt_targets(clip, prompts: str | Sequence[WeightedPrompt],
                   image_prompts: Sequence = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP embeddings of every prompt [P, D] and their weights [P], on CLIP's device.

    ``image_prompts`` are PIL images, or ``(image, weight)`` pairs: the picture should
    look like them, as CLIP sees it.
    """
    prompts, pairs = _checked_prompts(prompts, image_prompts)
    checks.warn_if_cut([p.text for p in prompts], getattr(clip, "tokenizer", None),
                       getattr(clip, "context_length", 77), "prompt")
    embeddings, weights = [], []
    if prompts:
        embeddings.append(clip.encode_texts([p.text for p in prompts]))
        weights += [p.weight for p in prompts]
    if pairs:
        embeddings.append(clip.encode_images([image for image, _ in pairs]))
        weights += [float(weight) for _, weight in pairs]
    if not embeddings:
        raise ValueError("Give at least one text prompt or image prompt.")
    return (torch.cat(embeddings).to(clip.device),
            torch.tensor(weights, dtype=torch.float32, device=clip.device))


def _checked_prompts(prompts, image_prompts) -> tuple[list[WeightedPrompt], list[tuple]]:
    """Text prompts as WeightedPrompts and image prompts as (image, weight) pairs, checked.

    Why: a list of strings is not a prompt syntax (several prompts go in one string, joined
    by '|'); weights must be finite and within -10..10; and if no weight is positive,
    nothing pulls the picture towards anything - it only drifts away from the texts.
    """
    if isinstance(prompts, str):
        prompts = parse_prompts(prompts)
    elif isinstance(prompts, list | tuple) and all(isinstance(p, WeightedPrompt) for p in prompts):
        prompts = list(prompts)
    elif isinstance(prompts, list | tuple) and all(isinstance(p, str) for p in prompts):
        joined = " | ".join(prompts) if prompts else "a red star | a blue circle"
        raise TypeError(f"Write several prompts as one string joined by '|', such as "
                        f"{joined!r} (add ':weight' to a part to weigh it); a list of strings "
                        f"is not read.")
    else:
        raise TypeError(f"prompts must be a string such as 'a red star' or 'a red star:1 | "
                        f"blue:-0.5', or a list of WeightedPrompt; got {checks.describe(prompts)}.")
    if isinstance(image_prompts, Image.Image):
        raise TypeError("image_prompts must be a list; for one picture write [image] "
                        "(or [(image, weight)]).")
    pairs = [p if isinstance(p, tuple) else (p, 1.0) for p in image_prompts]
    weights = [checks.weight(p.weight, f"The weight of {p.text!r}", -MAX_WEIGHT, MAX_WEIGHT)
               for p in prompts]
    weights += [checks.weight(w, f"The weight of image prompt {i}", -MAX_WEIGHT, MAX_WEIGHT)
                for i, (_, w) in enumerate(pairs)]
    if weights and max(weights) <= 0:
        raise ValueError(f"No part of the prompt has a positive weight ({weights}): nothing "
                         f"would pull the picture towards anything. Add a part to aim for, "
                         f"e.g. 'a red star | blue:-0.5'.")
    return prompts, pairs


# ------------------------------------------------------------------------------ the loss


def spherical_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """2 * arcsin(|a - b| / 2)^2 for unit vectors a, b (along the last dimension).

    For unit vectors |a - b| = 2 sin(theta / 2), where theta is the angle between them,
    so this is theta^2 / 2: the squared distance measured *along the sphere*. Near the
    target it behaves like 1 - cosine (both are about theta^2 / 2 for small theta); they
    differ far from it: 1 - cosine saturates (its slope, sin theta, falls to 0 towards
    theta = pi), while theta^2 / 2 keeps its slope, theta, so a picture far from the
    prompt still gets a strong pull.
    """
    _check_embeddings(a, "a")
    _check_embeddings(b, "b")
    if a.shape[-1] != b.shape[-1] or not _broadcastable(a.shape, b.shape):
        raise ValueError(f"a and b must be embeddings of one length D along the last dimension "
                         f"(and broadcastable, e.g. [N, 1, D] and [1, P, D]); got "
                         f"{checks.describe_tensor(a)} and {checks.describe_tensor(b)}.")
    return 2 * ((a - b).norm(dim=-1) / 2).clamp(max=1).arcsin().pow(2)


def _check_embeddings(value, name: str, ndim=None, example: str = "[..., D]") -> None:
    """A float tensor of embeddings (shape and dtype only: this runs in every step)."""
    checks.tensor(value, name, dtype="float", ndim=ndim, example=f"of embeddings {example}")
    if value.ndim == 0:
        raise ValueError(f"{name} must be embeddings {example}; got a single number.")


def _broadcastable(a: torch.Size, b: torch.Size) -> bool:
    try:
        torch.broadcast_shapes(a, b)
    except RuntimeError:
        return False
    return True


def prompt_loss(image_embeddings: torch.Tensor, targets: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
    """Weighted spherical distance of N cutout embeddings [N, D] to P prompts [P, D].

    Each prompt's distance is averaged over the cutouts, then multiplied by its weight:
    a positive weight pulls the image towards the prompt, a negative one pushes it away.
    """
    _check_embeddings(image_embeddings, "image_embeddings", 2, "[N, D], one per cutout")
    _check_embeddings(targets, "targets", 2, "[P, D], one per prompt")
    if targets.shape[1] != image_embeddings.shape[1]:
        raise ValueError(f"targets must have the length of image_embeddings "
                         f"({image_embeddings.shape[1]}): both from the same CLIP; got "
                         f"{checks.describe_tensor(targets)}.")
    checks.tensor(weights, "weights", dtype="float", ndim=1,
                  example=f"[{len(targets)}], one weight per prompt (e.g. torch.ones(1))")
    if len(weights) not in (1, len(targets)):
        raise ValueError(f"weights must hold one weight per prompt ({len(targets)}); got "
                         f"{checks.describe_tensor(weights)}.")
    image_embeddings = F.normalize(image_embeddings, dim=-1)
    distances = spherical_distance(image_embeddings[:, None, :], targets[None, :, :])  # [N, P]
    return (distances.mean(dim=0) * weights).sum()


# ------------------------------------------------------------------------------ latents


def random_latent(vqgan: VQGAN, size: int, seed: int = 0) -> torch.Tensor:
    """A latent grid for a ``size`` px image made of randomly chosen codebook vectors."""
    side = latent_side(vqgan, size)
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randint(vqgan.n_embed, (1, side, side), generator=generator)
    return vqgan.lookup_codes(indices.to(vqgan.codebook.device)).detach().clone()


@torch.no_grad()
def latent_from_image(vqgan: VQGAN, image: Image.Image | torch.Tensor, size: int) -> torch.Tensor:
    """The (quantised) latent grid of an init image: start from it instead of noise.

    ``image`` is a PIL image or a uint8 tensor [3, H, W]; it is resized to ``size`` px.
    """
    if isinstance(image, Image.Image):
        image = to_uint8_tensor(image)
    if not (isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and image.ndim == 3
            and image.shape[0] == 3 and image.shape[1] and image.shape[2]):
        shape = f" of shape {tuple(image.shape)}" if isinstance(image, torch.Tensor) else ""
        raise ValueError(f"An init image must be a PIL image or a uint8 tensor [3, H, W]; got "
                         f"{checks.describe(image)}{shape}.")
    pixels = F.interpolate(image[None].float() / 255, size=(size, size), mode="bilinear",
                           antialias=True, align_corners=False).clamp(0, 1)
    latent_side(vqgan, size)  # checks the size
    return vqgan.encode(to_vqgan_range(pixels.to(vqgan.codebook.device)))[0].detach().clone()


def latent_side(vqgan: VQGAN, size: int) -> int:
    """Tokens per side for a ``size`` px image; ``size`` must be a multiple of the factor."""
    factor = vqgan.downsample_factor
    size = checks.integer(size, "size")  # NumPy's integers too
    if size < factor or size % factor:
        raise ValueError(f"size must be a positive multiple of {factor} px for this VQGAN "
                         f"(each token covers {factor}x{factor} pixels); got {size!r}.")
    return size // factor


@torch.no_grad()
def clamp_to_codebook(z: torch.Tensor, vqgan: VQGAN) -> None:
    """Keep every channel of z inside the range the codebook spans (in place).

    Far outside that range every position snaps to the same few extreme codes and the
    gradient (copied straight through) no longer changes which code is nearest.
    """
    vqgan._check_latent(z)
    low = vqgan.codebook.min(dim=0).values.view(1, -1, 1, 1)
    high = vqgan.codebook.max(dim=0).values.view(1, -1, 1, 1)
    z.copy_(torch.maximum(torch.minimum(z, high), low))


# ------------------------------------------------------------------------------ cutouts


def cutout_transform(cut_size: int, min_crop: float = 0.6, augment: bool = True) -> "RandomViews":
    """The random view of the image CLIP scores: a square crop, resized, maybe augmented.

    ``min_crop`` is the smallest crop side as a fraction of the image side (1.0: always
    the whole image). All steps are differentiable, so the gradient reaches the pixels.
    """
    if not 0 < min_crop <= 1:
        raise ValueError(f"min_crop is a fraction of the image side in (0, 1]; got {min_crop}.")
    return RandomViews(cut_size, min_crop, augment)


class RandomViews:
    """What ``cutout_transform`` returns: a random view of every picture in a batch, all at once.

    Each view is a square crop (side ``min_crop``..1 of the picture, area drawn uniformly,
    as torchvision's ``RandomResizedCrop`` draws it) resized to ``cut_size``; with
    ``augment``, also flipped half of the time, turned by up to 10 degrees, shifted by up to
    5 % and noised (sigma 0.02). Crop, resize, flip, turn and shift are one affine map of
    the output grid onto the picture, so one ``grid_sample`` call makes all the views (one
    call per view, as torchvision's transforms need, made the cutouts a quarter of a
    generation step). Bilinear and differentiable: the gradient reaches the pixels.
    """

    def __init__(self, cut_size: int, min_crop: float = 0.6, augment: bool = True):
        self.cut_size, self.min_crop, self.augment = cut_size, min_crop, augment

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] -> [N, 3, cut_size, cut_size]: each picture its own random view."""
        n = len(images)
        # Coordinates run from -1 to 1 across a picture. A view's point p shows the picture at
        # centre + maps @ (p - shift): maps scales (the crop), mirrors and turns.
        side = torch.empty(n).uniform_(self.min_crop ** 2, 1.0).sqrt()  # crop side, 1 = all
        centre = (torch.rand(n, 2) * 2 - 1) * (1 - side)[:, None]       # the crop stays inside
        maps = torch.diag_embed(side[:, None].expand(n, 2))
        shift = torch.zeros(n, 2)
        if self.augment:
            mirror = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
            angle = torch.empty(n).uniform_(-10, 10) * math.pi / 180
            shift = torch.empty(n, 2).uniform_(-0.05, 0.05) * 2          # 5 % of the side
            cos, sin = angle.cos(), angle.sin()
            turn_back = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], 1)
            maps = maps @ torch.diag_embed(torch.stack([mirror, torch.ones(n)], -1)) @ turn_back
        offset = centre - (maps @ shift[:, :, None])[..., 0]
        theta = torch.cat([maps, offset[:, :, None]], dim=2).to(images.device, images.dtype)
        grid = F.affine_grid(theta, [n, 3, self.cut_size, self.cut_size], align_corners=False)
        views = F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                              align_corners=False)  # turned corners repeat the edge
        if self.augment:
            views = views + 0.02 * torch.randn_like(views)
        return views


def make_cutouts(images: torch.Tensor, n: int, transform: Callable) -> torch.Tensor:
    """``n`` random views of one image [1, 3, H, W] in [0, 1], batched: [n, 3, c, c].

    The image is repeated ``n`` times (a view, no copy) and ``transform`` gives each copy
    its own random view, so all of them go through CLIP in one forward pass.
    """
    if n < 1:
        raise ValueError(f"cutouts must be at least 1; got {n}.")
    return transform(images.expand(n, -1, -1, -1))


# ------------------------------------------------------------------------------ the loop


@dataclass
class GenerationConfig:
    """Everything that decides a generation (same config + same seed = same image)."""

    size: int = 32             # image side in px (a multiple of the VQGAN's downsample factor)
    steps: int = 150
    lr: float = 0.1            # Adam on z; 0.05-0.2 is the usual range
    cutouts: int = 16          # random views scored per step (1 + min_crop 1 + no augment: none)
    min_crop: float = 0.6      # smallest cutout side, as a fraction of the image side
    augment: bool = True       # flips, small rotations and shifts, noise on every cutout
    seed: int = 0
    frame_every: int = 10      # keep a frame (and call the callback) every N steps
    max_bytes: int | None = None  # memory a step may take (None: 1 GiB on a CPU, see below)


# For a pretrained CLIP (e.g. ViT-B-32) and taming's vqgan_imagenet_f16_16384 on a GPU.
PRETRAINED_SETTINGS = GenerationConfig(size=256, steps=300, lr=0.1, cutouts=32, min_crop=0.5,
                                       frame_every=20)


@dataclass
class Generation:
    """What ``generate`` returns: the image, the frames of the optimisation, the loss curve."""

    image: Image.Image
    frames: list[Image.Image] = field(repr=False)
    losses: list[float] = field(repr=False)
    latent: torch.Tensor = field(repr=False)   # the final z (continuous, before snapping)
    seconds: float = 0.0


def decode_latent(vqgan: VQGAN, z: torch.Tensor) -> torch.Tensor:
    """z -> nearest codes (straight-through gradient) -> decoder -> image in [0, 1]."""
    vqgan._check_latent(z)  # shape and dtype only: this runs in every step
    return to_unit_range(vqgan.decode(vqgan.quantize_straight_through(z)))


def to_pil(images: torch.Tensor) -> Image.Image:
    """The first image of a [B, 3, H, W] batch in [0, 1] as a PIL image."""
    return Image.fromarray(float_to_uint8(images[0]).permute(1, 2, 0).numpy())


def as_guides(clip) -> list:
    """One LoadedClip or several -> a list of the CLIPs that guide, all with one input size.

    The hope behind several guides: a pixel pattern that fools one CLIP may not fool
    another, so what all of them reward is more likely the object itself. Measured with
    the course models (lesson 04), the course CLIP added to the augmented-view CLIP did
    worse than the augmented-view CLIP alone: a weaker guide brings its blind spots along.
    """
    guides = list(clip) if isinstance(clip, (list, tuple)) else [clip]
    if not guides:
        raise ValueError("Give at least one CLIP to guide the picture.")
    sizes = {guide.input_size for guide in guides}
    if len(sizes) > 1:
        raise ValueError(f"The guiding CLIPs take different input sizes {sorted(sizes)} px; "
                         f"use CLIPs with one input size (the cutouts are made once for all).")
    return guides


def generation_step(z: torch.Tensor, optimizer: torch.optim.Optimizer, guides: list,
                    vqgan: VQGAN, targets: list, transform: Callable, cutouts: int) -> float:
    """One step of VQGAN+CLIP; returns the loss. Only z changes.

    ``targets`` holds one ``(embeddings, weights)`` pair per guide (``prompt_targets``):
    every guide scores the same cutouts, and their losses add up.
    """
    vqgan._check_latent(z)
    if not z.requires_grad:
        raise ValueError("z must require a gradient, the latent the optimizer moves: "
                         "z = vqgan_clip.random_latent(vqgan, 32).requires_grad_(True).")
    checks.instance(optimizer, "optimizer", torch.optim.Optimizer,
                    "a torch optimizer over [z], e.g. torch.optim.Adam([z], lr=0.1)")
    if not isinstance(guides, list | tuple) or not isinstance(targets, list | tuple):
        raise TypeError(f"guides and targets must be lists (one (embeddings, weights) pair per "
                        f"guide); got {checks.describe(guides)} and {checks.describe(targets)}.")
    if not guides or len(guides) != len(targets):
        raise ValueError(f"guides and targets: give one target pair per guide; got "
                         f"{len(guides)} guides and {len(targets)} targets (the extra ones "
                         f"would be dropped without a word).")
    if not callable(transform):
        raise TypeError(f"transform must be a function of a batch of pictures, such as "
                        f"cutout_transform(clip.input_size); got {checks.describe(transform)}.")
    checks.integer(cutouts, "cutouts", minimum=1)
    image = decode_latent(vqgan, z)                                      # [1, 3, H, W]
    views = make_cutouts(image, cutouts, transform)
    loss = sum(prompt_loss(guide.model.encode_image(guide.normalize(views)),
                           embeddings, weights)
               for guide, (embeddings, weights) in zip(guides, targets))
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=[z])            # gradients for z only, not for CLIP or VQGAN weights
    optimizer.step()
    clamp_to_codebook(z, vqgan)
    return loss.item()


def generate(prompts: str | Sequence[WeightedPrompt], clip, vqgan: VQGAN,
             config: GenerationConfig | None = None, *, image_prompts: Sequence = (),
             init_image: Image.Image | torch.Tensor | None = None,
             callback: Callable[[int, Image.Image, float], None] | None = None,
             progress: bool = False, **overrides) -> Generation:
    """Optimise a VQGAN latent so that CLIP finds the decoded image close to the prompts.

    ``prompts``: "text:weight | text:weight" or a list of WeightedPrompt. ``clip``: a
    ``LoadedClip``, or a list of them that guide together (``as_guides``). ``config``
    fields may also be passed as keywords (``steps=100``). ``init_image`` starts from
    that picture instead of random codes. ``callback(step, image, loss)`` runs every
    ``frame_every`` steps; ``progress`` shows a tqdm bar.
    """
    config = _checked_config(config, overrides)
    seed_everything(config.seed)  # the cutouts draw from torch's global generator
    start = time.perf_counter()
    guides = as_guides(clip)
    _check_memory(config, guides, vqgan)
    targets = [prompt_targets(guide, prompts, image_prompts) for guide in guides]
    z = (random_latent(vqgan, config.size, config.seed) if init_image is None
         else latent_from_image(vqgan, init_image, config.size)).detach().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=config.lr)
    transform = cutout_transform(guides[0].input_size, config.min_crop, config.augment)
    frames, losses = [], []
    for step in tqdm(range(config.steps + 1), desc="VQGAN+CLIP", disable=not progress):
        if step % config.frame_every == 0 or step == config.steps:
            with torch.no_grad():
                frames.append(to_pil(decode_latent(vqgan, z)))
            if callback is not None:
                callback(step, frames[-1], losses[-1] if losses else math.nan)
        if step < config.steps:
            losses.append(generation_step(z, optimizer, guides, vqgan, targets, transform,
                                          config.cutouts))
    return Generation(frames[-1], frames, losses, z.detach(), time.perf_counter() - start)


def _checked_config(config: GenerationConfig | None, overrides: dict) -> GenerationConfig:
    """The config with the keyword overrides applied, its numbers checked.

    Why: ``steps=-1`` or ``frame_every=0`` fail late (no frame at all, a division by
    zero); a misspelt setting such as ``stpes=10`` should name the one that was meant.
    ``steps=0`` is allowed: it decodes the start image (random codes or ``init_image``).
    """
    if config is not None and not isinstance(config, GenerationConfig):
        raise TypeError(f"config must be a GenerationConfig (or None); got "
                        f"{checks.describe(config)}. Settings can also go in as keywords, "
                        f"e.g. steps=100.")
    checks.known_names(overrides, [f.name for f in fields(GenerationConfig)], "setting")
    config = replace(config or GenerationConfig(), **overrides)
    checks.integer(config.steps, "steps", minimum=0)
    checks.integer(config.frame_every, "frame_every", minimum=1)
    checks.integer(config.cutouts, "cutouts", minimum=1)
    checks.seed(config.seed)
    checks.integer(config.size, "size", minimum=1)
    checks.positive_number(config.lr, "lr", 0.1)
    checks.number_in_range(config.min_crop, "min_crop", 0.01, 1.0, 0.6)
    checks.flag(config.augment, "augment")
    checks.optional_integer(config.max_bytes, "max_bytes", minimum=1)
    return config


def layer_output_bytes(forward: Callable, module: torch.nn.Module, *inputs) -> int:
    """Bytes of every layer's output in one forward pass: what backpropagation keeps.

    Measured on a tiny input and scaled up by ``_check_memory``, so it is right for any
    VQGAN or CLIP, the course's or a pretrained one, without a table of sizes.
    """
    total = 0

    def count(_module, _inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    leaves = [m for m in module.modules() if not any(True for _ in m.children())]
    hooks = [leaf.register_forward_hook(count) for leaf in leaves]
    try:
        with torch.no_grad():
            forward(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return total


def step_bytes(config: GenerationConfig, guides: list, vqgan: VQGAN) -> int:
    """About how much memory one optimisation step takes: the decoder's activations for a
    ``size`` px picture plus every guide's for ``cutouts`` views, twice (their gradients)."""
    side = latent_side(vqgan, config.size)
    device = vqgan.codebook.device
    one_token = torch.zeros(1, vqgan.codebook.shape[1], 1, 1, device=device)
    decoder = layer_output_bytes(vqgan.decode, vqgan, one_token) * side * side
    views = 0
    for guide in guides:
        view = torch.zeros(1, 3, guide.input_size, guide.input_size, device=guide.device)
        views += layer_output_bytes(guide.model.encode_image, guide.model, view)
    return 2 * (decoder + config.cutouts * views)


def _check_memory(config: GenerationConfig, guides: list, vqgan: VQGAN) -> None:
    """Refuse a size or number of cutouts that would not fit, before the first step.

    Why: ``size=4096`` or ``cutouts=10**6`` ask for tens of gigabytes; a 2 GB kernel is
    killed mid-way, with every variable of the session. The limit is 1 GiB on a CPU and
    the GPU's memory on a GPU; ``max_bytes=`` goes past it on purpose.
    """
    allowed = config.max_bytes
    device = vqgan.codebook.device
    if allowed is None and device.type == "cuda":
        allowed = torch.cuda.get_device_properties(device).total_memory
    checks.memory_budget(step_bytes(config, guides, vqgan),
                         f"VQGAN+CLIP at size={config.size} with cutouts={config.cutouts}",
                         allowed)


# ------------------------------------------------------------------------------ saving


def _encode_image_file(images: list[Image.Image], scale: int, **save_options) -> bytes:
    resized = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    buffer = io.BytesIO()
    resized[0].save(buffer, append_images=resized[1:], **save_options)
    return buffer.getvalue()


def save_png(image: Image.Image, path: str | Path, scale: int = 1) -> Path:
    """Save one image as PNG (enlarged ``scale`` times, nearest neighbour), atomically."""
    atomic_write_bytes(path, _encode_image_file([image], scale, format="PNG"))
    return Path(path)


def save_gif(frames: Sequence[Image.Image], path: str | Path, seconds_per_frame: float = 0.1,
             scale: int = 1, hold_last: int = 5) -> Path:
    """Save frames as an animated GIF that loops forever, atomically.

    The last frame is shown ``hold_last`` times longer, so the result can be seen.
    """
    frames = list(frames)
    if not frames or not all(isinstance(f, Image.Image) for f in frames):
        raise ValueError("save_gif needs a non-empty list of PIL images (e.g. result.frames).")
    durations = [round(seconds_per_frame * 1000)] * len(frames)
    durations[-1] *= hold_last
    atomic_write_bytes(path, _encode_image_file(frames, scale, format="GIF", save_all=True,
                                                duration=durations, loop=0))
    return Path(path)
