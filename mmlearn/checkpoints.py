"""Shipped weights: where they live, how they are saved, and how they are verified.

The course ships its own small models (CLIP, VQGAN, DALL-E) inside the package, so
every lesson runs offline. Each file's sha256 is recorded in ``weights/SHA256SUMS``
(the format of the ``sha256sum`` tool) and checked before loading, so a corrupt or
half-copied file is caught with a clear message instead of a strange error later.
"""

import hashlib
import io
import pickle
import re
from pathlib import Path

import torch

from mmlearn.files import atomic_write_bytes

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
            f"with the script in scripts/ (see the README's contributor section).")
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


def save_atomic(obj, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically (see ``atomic_write_bytes``).

    The archive is built in memory first: ``torch.save`` to a file records the file's
    name inside the archive, so saving through a random temporary name would change
    the bytes (and the sha256) of identical weights from run to run.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def record_sha256(filename: str) -> str:
    """Record (or update) the sha256 of a shipped file in SHA256SUMS; return it."""
    digest = sha256_of(WEIGHTS_DIR / filename)
    lines = [line for line in (SUMS_FILE.read_text().splitlines() if SUMS_FILE.exists() else [])
             if line.split()[-1:] != [filename]]
    lines.append(f"{digest}  {filename}")
    lines.sort(key=lambda line: line.split()[-1])
    atomic_write_bytes(SUMS_FILE, ("\n".join(lines) + "\n").encode())
    return digest


def half_precision(state_dict: dict) -> dict:
    """A copy of a state dict with floating tensors in fp16: half the bytes to ship."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}
