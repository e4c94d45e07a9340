"""Shipped weights: where they live, how they are saved, and how they are verified.

The course ships its own small models (CLIP, VQGAN, DALL-E, ...) inside the package, so
every lesson runs offline. They are stored as **safetensors**: tensors and a little JSON,
nothing that could run code when read, the same bytes for the same weights, and readable
by memory-mapping. Each file's sha256 is recorded in ``weights/SHA256SUMS`` (the format
of the ``sha256sum`` tool) and checked before loading, so a corrupt or half-copied file
is caught with a clear message instead of a strange error later.

Files from elsewhere (taming's ``.ckpt``, open_clip's ``.pt``/``.bin``) are pickles;
``load_tensors`` reads them with ``weights_only=True``.
"""

import hashlib
import json
import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from mmlearn.files import atomic_write_bytes

EXTRA_KEY = "mmlearn"  # the safetensors metadata entry holding a checkpoint's non-tensor parts

WEIGHTS_DIR = Path(__file__).parent / "weights"
SUMS_FILE = WEIGHTS_DIR / "SHA256SUMS"


def sha256_of(path: str | Path) -> str:
    """The sha256 hex digest of a file, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_sha256(filename: str) -> str | None:
    """The sha256 recorded for a shipped file, or None if it was never recorded."""
    if not SUMS_FILE.exists():
        return None
    for line in SUMS_FILE.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == filename:
            return parts[0]
    return None


def load_tensors(path: str | Path, mmap: bool = False):
    """``torch.load(path, weights_only=True)``, with errors that name the file.

    ``weights_only`` means the file may hold tensors and plain containers but no code,
    so loading it cannot run anything. ``mmap=True`` maps the file instead of reading
    it: tensors are paged in when used, and entries that are dropped (a training
    checkpoint's optimizer states) never take memory. Files saved by torch before 1.6
    cannot be mapped and are read whole.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at {path}.")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError as error:
            if not mmap or "mmap" not in str(error):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        what = found.group(1) if found else "a class"
        raise ValueError(
            f"{path} holds Python objects besides tensors ({what}), and mmlearn reads "
            f"weights with weights_only=True so that a file cannot run code. Use a file "
            f"that holds only tensors.") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ValueError(f"{path} could not be read as weights ({detail}): it may be "
                         f"truncated or corrupt; download or save it again.") from None


def shipped_path(filename: str) -> Path:
    """Path of a shipped weights file, after checking it exists and matches its sha256."""
    path = WEIGHTS_DIR / filename
    if not path.exists():
        raise FileNotFoundError(
            f"The course weights file {path} is missing. Reinstall mmlearn, or retrain it "
            f"with the script in scripts/ (see CONTRIBUTING.md: retraining the course models).")
    expected = recorded_sha256(filename)
    if expected is None:
        raise ValueError(f"No sha256 is recorded for {filename} in {SUMS_FILE}; "
                         f"run the training script again, which records it.")
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(
            f"{path} does not match its recorded sha256 (expected {expected[:12]}…, "
            f"got {actual[:12]}…): the file is corrupt or was changed. Reinstall mmlearn "
            f"or retrain it with the script in scripts/.")
    return path


def save_checkpoint(checkpoint: dict, path: str | Path) -> None:
    """Write a checkpoint atomically as safetensors (see ``atomic_write_bytes``).

    ``checkpoint`` is a state dict (names to tensors), or a dict with a ``"state_dict"``
    entry and other entries of plain JSON types (a model's sizes, a vocabulary), which
    are stored as JSON in the file's metadata. ``load_checkpoint`` gives back the same dict.
    """
    if "state_dict" in checkpoint:
        tensors = checkpoint["state_dict"]
        extra = {k: v for k, v in checkpoint.items() if k != "state_dict"}
        metadata = {EXTRA_KEY: json.dumps(extra, sort_keys=True)}
    else:
        tensors, metadata = checkpoint, None
    not_tensors = [name for name, value in tensors.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise TypeError(f"A checkpoint's weights must be tensors; {not_tensors[:3]} are not. "
                        f"Put sizes and names next to a 'state_dict' entry instead.")
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    atomic_write_bytes(path, safetensors_bytes(tensors, metadata))


def load_checkpoint(path: str | Path) -> dict:
    """Read what ``save_checkpoint`` wrote, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at {path}.")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ValueError(f"{path} could not be read as safetensors weights ({detail}): it "
                         f"may be truncated or corrupt; download or save it again.") from None
    if EXTRA_KEY not in metadata:
        return tensors
    return {**json.loads(metadata[EXTRA_KEY]), "state_dict": tensors}


def record_sha256(filename: str) -> str:
    """Record (or update) the sha256 of a shipped file in SHA256SUMS; return it."""
    digest = sha256_of(WEIGHTS_DIR / filename)
    lines = [line for line in (SUMS_FILE.read_text().splitlines() if SUMS_FILE.exists() else [])
             if line.split()[-1:] != [filename]]
    lines.append(f"{digest}  {filename}")
    lines.sort(key=lambda line: line.split()[-1])
    atomic_write_bytes(SUMS_FILE, ("\n".join(lines) + "\n").encode())
    return digest


def ship(checkpoint: dict, path: str | Path) -> str | None:
    """Save a checkpoint; if ``path`` is a shipped file, record its sha256 and re-read it.

    Every training script saves through this. A path counts as shipped when it resolves
    into ``WEIGHTS_DIR``, however it was written (relative, with ``..``, through a link),
    so retraining can never leave a shipped file whose recorded sha256 is stale. Returns
    the sha256 recorded, or None for a file elsewhere.
    """
    save_checkpoint(checkpoint, path)
    path = Path(path).resolve()
    if path.parent != WEIGHTS_DIR.resolve():
        return None
    digest = record_sha256(path.name)
    load_checkpoint(shipped_path(path.name))  # the next load checks exactly this
    return digest


def half_precision(state_dict: dict) -> dict:
    """A copy of a state dict with floating tensors in fp16: half the bytes to ship."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}
