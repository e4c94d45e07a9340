"""VQGAN: an image tokenizer built from a CNN encoder, a codebook and a CNN decoder.

VQGAN (Esser et al., "Taming Transformers for High-Resolution Image Synthesis") turns an
image into a small grid of integers and back:

    image --encoder--> latent grid z --snap each vector to the nearest codebook entry-->
    z_q (every position now holds one of n_embed codebook vectors; its index is a "token")
    --decoder--> image again.

A transformer can then model images as sequences of tokens (tiny DALL-E, lesson 05), and
VQGAN+CLIP (lesson 04) optimises a latent grid so that the decoded image matches a prompt.

The layers come from taming-transformers' own modules (``Encoder``, ``Decoder``,
``VectorQuantizer``), so official taming checkpoints load into this class with their key
names unchanged. We do not use ``taming.models``: it needs an old pytorch-lightning.
The nearest-code search and the straight-through trick are written out here by hand,
because lesson 04 reuses them and they are the heart of the idea.

Images go in and come out in taming's range [-1, 1]; ``to_vqgan_range`` and
``to_unit_range`` convert from and to the [0, 1] range that plotting uses.
"""

import contextlib
import io
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from PIL import Image
from taming.modules.diffusionmodules.model import Decoder, Encoder
from taming.modules.vqvae.quantize import VectorQuantizer

from mmlearn import checks
from mmlearn.checkpoints import load_checkpoint, load_tensors, shipped_path
from mmlearn.config import pick_device
from mmlearn.images import float_to_uint8
from mmlearn.shapes import BACKGROUND_LEVELS, COLORS, image_grid

CONFIG_DIR = Path(__file__).parent / "model_configs"
COURSE_CONFIG = CONFIG_DIR / "vqgan-shapeworld.yaml"
COURSE_WEIGHTS = "vqgan_shapeworld.safetensors"
# The same model trained without the adversarial term (a VQ-VAE), kept to compare with.
RECONSTRUCTION_ONLY_WEIGHTS = "vqvae_shapeworld.safetensors"
DDCONFIG_KEYS = ("double_z", "z_channels", "resolution", "in_channels", "out_ch", "ch",
                 "ch_mult", "num_res_blocks", "attn_resolutions", "dropout")


def to_vqgan_range(images: torch.Tensor) -> torch.Tensor:
    """Map images from [0, 1] (plotting, ShapeWorld) to [-1, 1] (what VQGAN expects).

    A float tensor only (its values are not scanned): uint8 pixels would wrap around under
    ``* 2 - 1`` without a word. For ShapeWorld's images write ``images.float() / 255``.
    """
    checks.tensor(images, "images", dtype="float",
                  example="in [0, 1], e.g. ShapeWorld(...).images.float() / 255")
    return images * 2 - 1


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Map VQGAN output from [-1, 1] back to [0, 1], clipping what overshoots."""
    checks.tensor(images, "images", dtype="float", example="in [-1, 1], as VQGAN.decode returns")
    return ((images + 1) / 2).clamp(0, 1)


def straight_through(z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_q going forward, the identity going backward: the straight-through estimator.

    Picking the nearest code has no useful gradient (argmin is piecewise constant), so
    training could not reach the encoder through it. ``z + (z_q - z).detach()`` equals
    z_q, yet its gradient with respect to z is 1: the decoder's gradient is copied to z.
    """
    return z + (z_q - z).detach()


class VQGAN(nn.Module):
    """Encoder + codebook + decoder, with taming's parameter names.

    ``ddconfig`` is taming's dictionary of encoder/decoder sizes (``ch``, ``ch_mult``, ...);
    ``n_embed`` is the number of codebook vectors and ``embed_dim`` their length.
    Each level of ``ch_mult`` after the first halves the resolution, so a 32 px image with
    ``ch_mult=[1, 1, 2]`` (the course model) becomes an 8x8 grid of tokens.
    """

    def __init__(self, ddconfig: dict, n_embed: int, embed_dim: int, beta: float = 0.25):
        super().__init__()
        self.ddconfig = dict(ddconfig)
        self.beta = beta  # weight of the commitment term in codebook_loss
        self.encoder = Encoder(**ddconfig)
        with contextlib.redirect_stdout(io.StringIO()):  # taming's Decoder prints its z shape
            self.decoder = Decoder(**ddconfig)
        # Only its `embedding` (the codebook) is used; the search is done in nearest_codes.
        self.quantize = VectorQuantizer(n_embed, embed_dim, beta)
        self.quant_conv = nn.Conv2d(ddconfig["z_channels"], embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, ddconfig["z_channels"], 1)

    @property
    def codebook(self) -> torch.Tensor:
        """The codebook: one row per token, shape [n_embed, embed_dim]."""
        return self.quantize.embedding.weight

    @property
    def n_embed(self) -> int:
        return self.codebook.shape[0]

    @property
    def embed_dim(self) -> int:
        return self.codebook.shape[1]

    @property
    def downsample_factor(self) -> int:
        """How many pixels one token covers along each side (16 for taming's f16 models)."""
        return 2 ** (len(self.ddconfig["ch_mult"]) - 1)

    def encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> continuous latents z [B, embed_dim, h, w]."""
        checks.tensor(x, "x", dtype="float", shape=(None, self.ddconfig["in_channels"], None, None),
                      example="of images [B, 3, H, W] in [-1, 1] (to_vqgan_range(images))")
        return self.quant_conv(self.encoder(x))

    def _check_latent(self, z, name: str = "z") -> None:
        """A float latent grid [B, embed_dim, h, w] (shape only: it runs in every step)."""
        checks.tensor(z, name, dtype="float", shape=(None, self.embed_dim, None, None),
                      example=f"latent grid [B, {self.embed_dim}, h, w]")

    def nearest_codes(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the closest codebook vector (Euclidean) at every position: [B, h, w]."""
        self._check_latent(z)
        batch, dim, height, width = z.shape
        vectors = z.permute(0, 2, 3, 1).reshape(-1, dim)  # one row per grid position
        # |v - c|^2 = |v|^2 - 2 v.c + |c|^2, for all pairs at once
        distances = (vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ self.codebook.T
                     + self.codebook.pow(2).sum(1))
        return distances.argmin(dim=1).view(batch, height, width)

    def lookup_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Token indices [B, h, w] -> their codebook vectors as a latent [B, embed_dim, h, w]."""
        checks.tensor(indices, "indices", dtype="integer",
                      example="of token ids [B, h, w], e.g. vqgan.encode(x)[1]")
        if indices.dim() != 3:
            raise ValueError(f"indices must have shape [batch, height, width], got "
                             f"{tuple(indices.shape)}; add a batch dimension with indices[None].")
        if indices.min() < 0 or indices.max() >= self.n_embed:
            raise ValueError(f"token indices must lie in 0..{self.n_embed - 1}, got values "
                             f"from {int(indices.min())} to {int(indices.max())}.")
        return self.codebook[indices].permute(0, 3, 1, 2)

    def quantize_straight_through(self, z: torch.Tensor) -> torch.Tensor:
        """Snap z to the nearest codes with a straight-through gradient (see straight_through).

        VQGAN+CLIP calls this on the latent it optimises: the decoder sees true codes,
        yet the gradient still reaches the continuous z.
        """
        return straight_through(z, self.lookup_codes(self.nearest_codes(z)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [-1, 1] -> (quantised latent z_q [B, D, h, w], token indices [B, h, w])."""
        z = self.encode_latent(x)
        indices = self.nearest_codes(z)
        return straight_through(z, self.lookup_codes(indices)), indices

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """Latent grid [B, embed_dim, h, w] -> images [B, 3, H, W] in about [-1, 1]."""
        self._check_latent(z_q, "z_q")
        return self.decoder(self.post_quant_conv(z_q))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Token grid [B, h, w] -> images: what a transformer's tokens look like."""
        return self.decode(self.lookup_codes(indices))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The round trip encode -> tokens -> decode; shows what the tokens keep."""
        return self.decode_indices(self.encode(x)[1])

    def codebook_loss(self, z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
        """VQ-VAE's two extra terms for training (van den Oord et al., 2017).

        The codebook term pulls each chosen code z_q towards the encoder output z; the
        commitment term (weight ``beta``) keeps the encoder output close to its code,
        so the latents do not drift away from the codebook. ``detach`` decides which
        side each term moves. (taming's VectorQuantizer puts beta on the other term,
        a bug it keeps for compatibility; here it is where the paper puts it.)
        """
        codebook_term = F.mse_loss(z_q, z.detach())
        commitment_term = F.mse_loss(z, z_q.detach())
        return codebook_term + self.beta * commitment_term

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction, codebook_loss, indices) for images in [-1, 1]."""
        z = self.encode_latent(x)
        indices = self.nearest_codes(z)
        z_q = self.lookup_codes(indices)
        reconstruction = self.decode(straight_through(z, z_q))
        return reconstruction, self.codebook_loss(z, z_q), indices


def codebook_usage(indices: torch.Tensor, n_embed: int) -> dict:
    """How well the codebook is used: codes used, perplexity, and how often each code occurs.

    Perplexity is exp(entropy) of the token histogram: n_embed if all codes are equally
    frequent, 1 if a single code is used everywhere. A collapsed codebook (few codes
    used) wastes capacity. ``counts`` (one per code) can order a codebook picture.
    """
    counts = torch.bincount(indices.flatten().cpu(), minlength=n_embed)
    probabilities = counts / counts.sum()
    entropy = -(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum()
    return {"used": int((counts > 0).sum()), "total": n_embed,
            "perplexity": float(entropy.exp()), "counts": counts}


def color_agreement(originals: torch.Tensor, reconstructions: torch.Tensor) -> float:
    """Share of ShapeWorld shape pixels whose colour name survives the round trip.

    ``originals`` are uint8 images [N, 3, H, W]; ``reconstructions`` the same images in
    [0, 1]. Each pixel is named by the nearest ShapeWorld colour (or the background grey).
    Only pixels clearly inside a shape count (within 40 levels of a named colour): edge
    pixels are blends of two colours and have no single name.
    """
    background = sum(BACKGROUND_LEVELS) / 2
    palette = torch.tensor([*COLORS.values(), (background,) * 3], dtype=torch.float32)
    original = originals.permute(0, 2, 3, 1).reshape(-1, 3).float()
    rebuilt = reconstructions.permute(0, 2, 3, 1).reshape(-1, 3).float().cpu() * 255
    distance_to_named, name_before = torch.cdist(original, palette).min(dim=1)
    name_after = torch.cdist(rebuilt, palette).argmin(dim=1)
    in_shape = (distance_to_named < 40) & (name_before < len(COLORS))
    return float((name_after[in_shape] == name_before[in_shape]).float().mean())


def edge_sharpness(originals: torch.Tensor, reconstructions: torch.Tensor) -> float:
    """Gradient energy of the reconstructions as a share of the originals' (1.0: as crisp).

    Both are pictures [N, 3, H, W] in [0, 1]. The energy is the mean squared difference
    between neighbouring pixels. A blur spreads each edge's step over several pixels,
    and several small steps square to less than one big one, so blurred reconstructions
    score below 1. Speckles and ringing add energy, so above 1 is not "better".
    """
    def energy(images: torch.Tensor) -> torch.Tensor:
        across = images[..., :, 1:] - images[..., :, :-1]
        down = images[..., 1:, :] - images[..., :-1, :]
        return across.pow(2).mean() + down.pow(2).mean()
    return float(energy(reconstructions) / energy(originals))


def _check_uint8_images(images) -> None:
    """uint8 pictures [N, 3, H, W] with N >= 1, such as ``ShapeWorld(...).images``."""
    checks.tensor(images, "images", dtype="integer", shape=(None, 3, None, None),
                  example="of uint8 pictures [N, 3, H, W], e.g. ShapeWorld(...).images")
    if images.dtype != torch.uint8 or not len(images):
        raise ValueError(f"images must be uint8 pictures [N, 3, H, W] with N >= 1, e.g. "
                         f"ShapeWorld(...).images; got {checks.describe_tensor(images)}.")


@torch.no_grad()
def reconstruction_report(model: VQGAN, images: torch.Tensor, batch_size: int = 250) -> dict:
    """How well a VQGAN rebuilds uint8 images [N, 3, H, W] (e.g. ``ShapeWorld(...).images``).

    Returns the mean squared error and PSNR in the [0, 1] pixel range, the codebook usage
    (codes used of the total, perplexity), the colour agreement of shape pixels and the
    edge sharpness (``edge_sharpness``).
    """
    _check_uint8_images(images)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    device = model.codebook.device
    originals = images.float() / 255
    rebuilt, tokens = [], []
    for chunk in originals.split(batch_size):
        z_q, indices = model.encode(to_vqgan_range(chunk.to(device)))
        rebuilt.append(to_unit_range(model.decode(z_q)).cpu())
        tokens.append(indices.cpu())
    rebuilt = torch.cat(rebuilt)
    mse = float(F.mse_loss(rebuilt, originals))
    return {"mse": mse, "psnr": 10 * math.log10(1 / mse),
            **codebook_usage(torch.cat(tokens), model.n_embed),
            "color_agreement": color_agreement(images, rebuilt),
            "sharpness": edge_sharpness(originals, rebuilt)}


# ---------------------------------------------------------------- taming configs and checkpoints

def read_taming_config(config_path: str | Path) -> dict:
    """Read a taming YAML config; return {"embed_dim", "n_embed", "ddconfig"}.

    taming's layout is ``model: {target: taming.models.vqgan.VQModel, params: {embed_dim,
    n_embed, ddconfig: {...}, lossconfig: {...}}}``. The loss config describes the
    training losses (LPIPS, discriminator) and is not needed to run the model.
    """
    with open(config_path) as f:
        config = yaml.safe_load(f)
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict) or "params" not in model:
        raise ValueError(f"{config_path} is not a taming config: it needs a top-level "
                         f"'model:' with 'target:' and 'params:'.")
    target = model.get("target", "")
    if target.rsplit(".", 1)[-1] != "VQModel":
        raise ValueError(f"{config_path} describes {target!r}; only taming's plain VQModel "
                         f"(target: taming.models.vqgan.VQModel) is supported.")
    params = model["params"]
    missing = [k for k in ("embed_dim", "n_embed", "ddconfig") if k not in params]
    missing += [f"ddconfig.{k}" for k in DDCONFIG_KEYS if k not in params.get("ddconfig", {})]
    if missing:
        raise ValueError(f"{config_path} lacks model.params entries: {', '.join(missing)}.")
    ddconfig = {k: params["ddconfig"][k] for k in DDCONFIG_KEYS}
    return {"embed_dim": params["embed_dim"], "n_embed": params["n_embed"], "ddconfig": ddconfig}


def vqgan_from_config(config_path: str | Path) -> VQGAN:
    """A VQGAN with random weights, shaped as a taming YAML config describes."""
    return VQGAN(**read_taming_config(config_path))


class _LightningPlaceholder:
    """Inert stand-in for the Lightning class names a .ckpt stores next to the weights.

    Old pytorch-lightning versions keyed a checkpoint's ``callbacks`` entry by the callback
    class itself, so unpickling would import pytorch_lightning. With ``weights_only=True``
    torch refuses unknown classes; we allow these names, mapped to this empty class.
    """


LIGHTNING_CLASS_NAMES = ("pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
                         "lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint")


def read_checkpoint_state_dict(ckpt_path: str | Path) -> dict:
    """The ``state_dict`` of a taming/Lightning .ckpt, memory-mapped, read with ``weights_only``.

    ``weights_only`` means the file can hold tensors and plain containers but no code,
    so a downloaded checkpoint cannot run anything on your machine. Other top-level
    entries (epoch, global_step, optimizer_states, ...) are read and dropped.
    """
    allowed = [(_LightningPlaceholder, name) for name in LIGHTNING_CLASS_NAMES]
    safe_globals = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    with safe_globals(allowed) if safe_globals else contextlib.nullcontext():
        checkpoint = load_tensors(ckpt_path, mmap=True)  # optimizer states never read
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{ckpt_path} has no 'state_dict' entry; a taming .ckpt holds the "
                         f"weights under checkpoint['state_dict'].")
    return checkpoint["state_dict"]


def model_weights(state_dict: dict, model: VQGAN) -> dict:
    """The entries of a taming state dict that belong to the model, checked key by key.

    ``loss.*`` entries (LPIPS network, discriminator) only matter for training and are
    ignored. Anything else missing or extra means the config does not match the
    checkpoint, which we report by name rather than loading half a model.
    """
    weights = {k: v for k, v in state_dict.items() if not k.startswith("loss.")}
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise ValueError(
            "The checkpoint does not fit the config. "
            f"Missing keys ({len(missing)}): {missing[:10]}{' ...' if len(missing) > 10 else ''}; "
            f"unexpected keys ({len(unexpected)}): {unexpected[:10]}"
            f"{' ...' if len(unexpected) > 10 else ''}. Check that the YAML config is the one "
            f"shipped with this checkpoint.")
    return weights


def load_taming_vqgan(ckpt_path: str | Path, config_path: str | Path,
                      device: str | None = None) -> VQGAN:
    """Load an official taming VQGAN (.ckpt + its YAML config) for inference.

    For example ``vqgan_imagenet_f16_16384``: ``last.ckpt`` and ``model.yaml`` from the
    taming-transformers README. The model comes back in eval mode on ``device``.
    """
    model = vqgan_from_config(config_path)
    weights = model_weights(read_checkpoint_state_dict(ckpt_path), model)
    # The model's parameters become the mapped tensors: no second copy of 300 MB.
    same_dtypes = all(weights[k].dtype == v.dtype for k, v in model.state_dict().items())
    model.load_state_dict(weights, assign=same_dtypes)
    return model.to(pick_device(device)).eval()


def load_course_vqgan(device: str | None = None, adversarial: bool = True) -> VQGAN:
    """The course's small VQGAN trained on ShapeWorld (scripts/train_vqgan.py), sha256-checked.

    ``adversarial=False`` loads the same model trained without the discriminator's term
    (``--no-gan``: a VQ-VAE), which lesson 04 compares with.
    """
    if not isinstance(adversarial, bool):
        raise TypeError(f"adversarial must be True or False, got {adversarial!r}.")
    model = vqgan_from_config(COURSE_CONFIG)
    weights = COURSE_WEIGHTS if adversarial else RECONSTRUCTION_ONLY_WEIGHTS
    state_dict = load_checkpoint(shipped_path(weights))
    model.load_state_dict(model_weights(state_dict, model))  # fp16 on disk, fp32 in the model
    return model.to(pick_device(device)).eval()


# ---------------------------------------------------------------- pictures of the codebook

@torch.no_grad()
def decoded_codes(model: VQGAN, tokens_per_side: int = 1) -> torch.Tensor:
    """Each code decoded on its own: a tokens_per_side^2 grid filled with that one code.

    Returns [n_embed, 3, P, P] images in [0, 1], P = tokens_per_side * downsample_factor.
    Alone, most codes decode to little: the decoder reads codes in context (convolutions
    see the neighbours, attention sees the whole grid). Compare ``code_footprints``.
    """
    codes = torch.arange(model.n_embed, device=model.codebook.device)
    indices = codes.view(-1, 1, 1).expand(-1, tokens_per_side, tokens_per_side)
    return torch.cat([to_unit_range(model.decode_indices(chunk)).cpu()
                      for chunk in indices.split(256)])


@torch.no_grad()
def code_footprints(model: VQGAN, images: torch.Tensor) -> torch.Tensor:
    """What each code stands for: the average image patch it covers in real images.

    ``images`` are uint8 [N, 3, H, W] (e.g. ``ShapeWorld(2000).images``). Every token
    covers a downsample_factor x downsample_factor square of its image; we average
    those squares per code. Codes that never occur stay white.
    Returns [n_embed, 3, f, f] in [0, 1].
    """
    f = model.downsample_factor
    _check_uint8_images(images)
    if images.shape[-1] % f or images.shape[-2] % f:
        raise ValueError(f"images must be a multiple of {f} px on each side (one token covers "
                         f"{f}x{f} pixels); got {checks.describe_tensor(images)}.")
    pixels = images.float() / 255
    codes = torch.cat([model.encode(to_vqgan_range(chunk.to(model.codebook.device)))[1].cpu()
                       for chunk in pixels.split(250)]).flatten()
    squares = pixels.unfold(2, f, f).unfold(3, f, f)  # [N, 3, h, w, f, f]
    squares = squares.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, f, f)
    sums = torch.zeros(model.n_embed, 3, f, f).index_add_(0, codes, squares)
    counts = torch.bincount(codes, minlength=model.n_embed).view(-1, 1, 1, 1)
    return torch.where(counts > 0, sums / counts.clamp_min(1), torch.ones_like(sums))


def codebook_grid_image(patches: torch.Tensor, columns: int = 16, scale: int = 4,
                        order: torch.Tensor | None = None) -> Image.Image:
    """One picture of the codebook: a patch per code ([n_embed, 3, P, P] in [0, 1]), in rows.

    ``order`` (e.g. ``counts.argsort(descending=True)`` from ``codebook_usage``) sets the
    layout; ``scale`` enlarges each pixel so small patches stay visible.
    """
    checks.tensor(patches, "patches", dtype="float", ndim=4,
                  example="[n_embed, 3, P, P] in [0, 1], as code_footprints returns")
    if order is not None:
        checks.tensor(order, "order (or None)", dtype="integer", shape=(len(patches),),
                      example="of code ids, e.g. counts.argsort(descending=True)")
        patches = patches[order]
    return image_grid(float_to_uint8(patches), columns=columns,
                      scale=scale, gap=1)
