"""``mmlearn.doctor()``: is this machine ready for the course? One look, no guessing.

It prints the versions that matter, the device, whether mmlearn may use the network,
and which models are available: the course's own (shipped in the package and
verified by sha256) and the pretrained ones (present only if already downloaded).
"""

import importlib
import importlib.metadata
import platform

import torch

from mmlearn import checkpoints, config

COURSE_WEIGHTS = {
    "clip_shapeworld.safetensors": "course CLIP (lessons 01-06)",
    "vqgan_shapeworld.safetensors": "course VQGAN (lessons 04-06)",
    "vqvae_shapeworld.safetensors": "course VQ-VAE (lesson 04)",
    "dalle_shapeworld.safetensors": "course tiny DALL-E (lesson 05)",
    "clip_shapeworld_augmented.safetensors": "augmented-view CLIP (lesson 04)",
    "shape_judge.safetensors": "shape judge (lessons 04-06)",
    "unclip_decoder.safetensors": "tiny unCLIP decoder (lesson 06)",
    "unclip_prior.safetensors": "tiny unCLIP regression prior (lesson 06)",
    "unclip_diffusion_prior.safetensors": "tiny unCLIP diffusion prior (lesson 06)",
}


def _version(package: str) -> str:
    try:
        return importlib.import_module(package).__version__
    except Exception:  # missing, or broken on import: either way not usable
        return "not installed"


def mmlearn_version() -> str:
    """The installed mmlearn's version, read from the package metadata (pyproject.toml).

    One place holds the version: pyproject.toml. A copy of the source tree that was never
    installed (run from a clone with ``sys.path``) has no metadata and says so.
    """
    try:
        return importlib.metadata.version("mmlearn")
    except importlib.metadata.PackageNotFoundError:
        return "not installed (source tree only)"


def _course_model_status(filename: str) -> str:
    try:
        checkpoints.shipped_path(filename)
        return "ok (sha256 verified)"
    except FileNotFoundError:
        return "missing (see CONTRIBUTING.md: retraining the course models)"
    except ValueError:
        return "corrupt or changed (sha256 mismatch): reinstall mmlearn"


def _pretrained_status() -> str:
    try:
        from mmlearn.clip import pretrained_is_cached
    except ImportError:
        return "unknown"
    return "cached" if pretrained_is_cached() else "not downloaded"


def report() -> dict[str, str]:
    """The facts ``doctor`` prints, as a dict (handy for tests and bug reports)."""
    facts = {
        "python": platform.python_version(),
        "mmlearn": mmlearn_version(),
        "torch": torch.__version__,
        "open_clip": _version("open_clip"),
        "device": config.describe_device().removeprefix("Device: "),
        "cpu threads": str(torch.get_num_threads()),
        "network": "off (offline mode)" if config.is_offline() else "allowed",
    }
    for filename, what in COURSE_WEIGHTS.items():
        facts[what] = _course_model_status(filename)
    facts["pretrained CLIP ViT-B-32"] = _pretrained_status()
    return facts


def doctor() -> None:
    """Print whether this machine is ready for the course."""
    for key, value in report().items():
        print(f"{key:<32} {value}")
