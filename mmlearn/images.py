"""Opening image files safely: any mode Pillow reads becomes a plain RGB picture.

CLIP's preprocessing expects 8-bit RGB. Real folders hold much else: greyscale
scans (``L``), PNGs with transparency (``RGBA``, ``LA``, palette ``P``), print
files (``CMYK``), 16-bit medical or astronomy images (``I;16``), float maps
(``F``), phone photos stored sideways with an EXIF "rotate me" tag - and files
that are not images at all, cut off halfway, or empty. ``open_image`` turns every
readable one into RGB that *looks* the way the file looks in an image viewer, and
raises ``BadImageError`` (a ``ValueError``) naming the file for the rest.
``load_images`` / ``iter_images`` open many files and skip the bad ones with a
warning, so one broken file never stops a whole collection from being indexed.

Two conversions are worth knowing because Pillow's own ``convert("RGB")`` gets
them wrong for our purpose:

- transparency: ``convert("RGB")`` drops the alpha channel, so a transparent
  background shows whatever colour happened to sit under it (often black). We
  paint the image on white instead, like a browser does.
- more than 8 bits: ``convert("RGB")`` *clips* 16-bit values at 255, so every
  value from 255 up to 65535 becomes white. We rescale the full range to 0..255.
"""

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class BadImageError(ValueError):
    """A file that cannot be read as an image (not an image, truncated, empty)."""


@dataclass
class Drawn:
    """The pictures a generator drew for one prompt: what the tiny DALL-E and unCLIP return.

    ``images`` are uint8 [N, 3, H, W], the form the judge and ``image_grid`` read. The rest
    says how they were made, where the generator has it: DALL-E's sampled image ``tokens``
    [N, side, side] and, once reranked, CLIP's ``scores`` (best first); unCLIP's image
    ``embedding``, what its decoder was given: [D] for all the pictures, or [N, D], one
    per picture (what a diffusion prior draws).
    """

    prompt: str
    images: "torch.Tensor"  # noqa: F821 (torch is imported where the tensors are made)
    tokens: "torch.Tensor | None" = None  # noqa: F821
    scores: "torch.Tensor | None" = None  # noqa: F821
    embedding: "torch.Tensor | None" = None  # noqa: F821


def open_image(path: str | Path) -> Image.Image:
    """Open an image file as RGB, upright, fully read; ``BadImageError`` if it is not readable.

    The whole file is decoded here (``load()``), not lazily later, so a truncated
    file fails now - with its name in the message - and not in the middle of a batch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {path}.")
    if path.stat().st_size == 0:
        raise BadImageError(f"{path} is empty (0 bytes); it is not an image.")
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(_upright(image))
    except Image.UnidentifiedImageError as error:
        raise BadImageError(f"{path} is not an image Pillow can read ({error}).") from error
    except Exception as error:  # Pillow signals broken files with many exception types
        raise BadImageError(
            f"{path} could not be read as an image, it may be truncated or corrupt "
            f"({type(error).__name__}: {error}).") from error


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag (phones store photos sideways plus a "rotate" note).

    A broken EXIF block should not make a good picture unreadable, so it is ignored.
    """
    try:
        return ImageOps.exif_transpose(image)
    except Exception as error:
        warnings.warn(f"Ignoring a broken EXIF orientation tag ({error}).", stacklevel=3)
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """A new 8-bit RGB copy of ``image``, whatever its mode (see the module docstring)."""
    if not isinstance(image, Image.Image):
        from mmlearn.checks import describe
        raise TypeError(f"image must be a PIL image; got {describe(image)}. Open a file with "
                        f"open_image(path); for an array of pixels (uint8, H x W x 3) use "
                        f"PIL.Image.fromarray(array).")
    if image.mode == "La":  # premultiplied grey + alpha: Pillow converts it via LA only
        image = image.convert("LA")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return _on_white(image.convert("RGBA"))
    if image.mode in SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        return _rescale_to_8_bit(image)
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX, RGB: Pillow is right


def to_uint8_tensor(image: Image.Image):
    """A PIL image of any mode as a uint8 tensor [3, H, W] (through ``to_rgb``): the one
    way every module turns a picture into pixels."""
    import torch

    return torch.from_numpy(np.asarray(to_rgb(image)).copy()).permute(2, 0, 1)


def float_to_uint8(pictures):
    """Float pictures in [0, 1] (any shape, any device) as uint8 0..255 on the CPU.

    The one way every module and lesson turns a decoder's output into pixels that PIL,
    matplotlib and the judge read. It clamps first, because a decoder strays a little
    outside [0, 1], and rounds, because a plain cast would floor every value and darken
    the picture by half a level on average.
    """
    return (pictures.detach().clamp(0, 1) * 255).round().byte().cpu()


def _on_white(rgba: Image.Image) -> Image.Image:
    """Paint an RGBA image on a white background (what a viewer shows), drop the alpha."""
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _rescale_to_8_bit(image: Image.Image) -> Image.Image:
    """Grey levels with more than 8 bits (I;16, I, F) mapped to 0..255 greyscale RGB.

    - ``I;16``: 0..65535 by definition, so divide by 257 (65535 -> 255).
    - ``I`` (32-bit integers) has no fixed range: values already within 0..255 are
      kept, within 0..65535 are treated as 16-bit, anything else is stretched min..max.
    - ``F`` (floats): within 0..1 is scaled by 255, within 0..255 kept, else stretched.
    """
    values = np.asarray(image).astype(np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (values.min(), values.max()) if values.size else (0.0, 0.0)
    if image.mode in SIXTEEN_BIT_MODES or (image.mode == "I" and 0 <= low and 255 < high <= 65535):
        values = values / 257.0
    elif image.mode == "F" and 0 <= low and high <= 1:
        values = values * 255.0
    elif low < 0 or high > 255:
        values = (values - low) / max(high - low, 1e-12) * 255.0
    grey = np.clip(np.round(values), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def image_extensions() -> set[str]:
    """File extensions (lower case, with the dot) of every format Pillow can open."""
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def list_image_files(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted so that ids are the same on every machine.

    Files are chosen by extension (any format Pillow opens); hidden files such as
    ``.DS_Store`` or macOS's ``._photo.jpg`` copies are left out. Files are not
    opened here: that happens one batch at a time when they are embedded.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; pass the folder that holds the images.")
    extensions = image_extensions()
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(path for path in candidates
                  if path.is_file() and path.suffix.lower() in extensions
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts))


def iter_images(paths: Iterable[str | Path],
                skipped: dict[str, str] | None = None) -> Iterator[tuple[str, Image.Image]]:
    """Yield ``(path, rgb_image)`` one file at a time, skipping unreadable files.

    Each skipped file gets a warning naming it; pass a dict as ``skipped`` to also
    collect ``{path: reason}`` for a report. Only one image is held at a time, so
    this streams through folders of any size.
    """
    for path in paths:
        try:
            yield str(path), open_image(path)
        except (BadImageError, FileNotFoundError) as error:
            warnings.warn(f"Skipping {path}: {error}", stacklevel=2)
            if skipped is not None:
                skipped[str(path)] = str(error)


def load_images(paths: Iterable[str | Path]
                ) -> tuple[list[Image.Image], list[str], dict[str, str]]:
    """Open all ``paths``; return ``(images, names, skipped)`` with ``skipped = {path: reason}``.

    Holds every image in memory: fine for a handful of photos. For a whole
    folder, index it with ``mmlearn.search.ImageIndex``, which streams.
    """
    skipped: dict[str, str] = {}
    images, names = [], []
    for name, image in iter_images(paths, skipped):
        images.append(image)
        names.append(name)
    return images, names, skipped
