"""Load any CLIP with one call: the course model, an open_clip pretrained model, or a file.

Every lesson needs the same four things from a CLIP: the model, the image preprocessing
it was trained with, its tokenizer, and an honest statement of *which* weights are in use.
``load_clip`` returns them together as a ``LoadedClip``:

    from mmlearn.clip import load_clip
    clip = load_clip()                                   # "auto": see below
    clip = load_clip("course")                           # the small model trained on ShapeWorld
    clip = load_clip("ViT-B-32:laion2b_s34b_b79k")       # an open_clip pretrained tag
    clip = load_clip("ViT-B-32-quickgelu:openai")        # OpenAI's original weights
    clip = load_clip("my_clip.pt", model="ViT-B-32")     # a state dict saved with torch.save
    clip = load_clip("my_clip_folder/")                  # open_clip_config.json + weights file
    image_vectors = clip.encode_images([photo1, photo2])
    text_vectors = clip.encode_texts(["a photo of a cat", "a photo of a dog"])
    similarity = image_vectors @ text_vectors.T          # cosine similarities

"auto" uses the pretrained ViT-B-32 (laion2b_s34b_b79k) when its weights are already in the
local Hugging Face cache or the Hub answers within a few seconds, and otherwise the course
model; it prints which one it picked, why, and how to get the other one.

Offline mode (``MMLEARN_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``, see ``mmlearn.config``) never
touches the network: only files already on disk are used, and asking for pretrained weights
that are not cached fails at once with a message that says how to get them.

The course's weights are safetensors files (tensors only). Pickled files (``.pt``, ``.bin``)
are read with ``torch.load(..., weights_only=True)``, which refuses to run the arbitrary
Python code a pickle can contain.
"""

from __future__ import annotations

import contextlib
import logging
import os
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image

from mmlearn import checkpoints, checks, model_configs
from mmlearn.config import is_offline, memory_limit_bytes, model_device, pick_device
from mmlearn.images import to_rgb

COURSE_MODEL = model_configs.COURSE_CLIP  # open_clip config name: "mmlearn-tiny-clip"
COURSE_WEIGHTS = "clip_shapeworld.safetensors"  # shipped in mmlearn/weights/
# The same architecture trained on random views of the pictures (TrainConfig(augment=True)):
# the guide of VQGAN+CLIP in lesson 04.
AUGMENTED_WEIGHTS = "clip_shapeworld_augmented.safetensors"
# The shipped course models: source name -> (weights file, what it was trained on).
COURSE_SOURCES = {
    "course": (COURSE_WEIGHTS, "ShapeWorld"),
    "course-augmented": (AUGMENTED_WEIGHTS, "augmented views of ShapeWorld"),
}
DEFAULT_PRETRAINED = "ViT-B-32:laion2b_s34b_b79k"  # what "auto" prefers when it can have it
REACH_TIMEOUT_S = 3.0  # how long "auto" waits for the Hugging Face Hub before giving up
# Loading ViT-B-32 alone peaks at about 1.5 GB on the CPU (benchmarks/bench_load_memory.py);
# a lesson adds the course model, pictures and figures. Under a smaller limit (Binder's
# 2 GB) the kernel would be killed, so "auto" takes the course model there.
PRETRAINED_NEEDS_BYTES = 2_200_000_000
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for, but they are not on disk and cannot be downloaded."""


@dataclass
class LoadedClip:
    """A CLIP ready for inference, with everything needed to use it and say what it is.

    Embeddings come back L2-normalised, as float32 tensors on the CPU, whatever device the
    model runs on: they are small, and on the CPU they go straight into NumPy, plots and
    search indexes. Because they are unit vectors, ``a @ b.T`` is the cosine similarity.
    The model is in eval mode with its parameters frozen (``requires_grad=False``); call
    ``clip.model.requires_grad_(True)`` if you want to fine-tune it.
    """

    model: torch.nn.Module = field(repr=False)
    preprocess: Callable[[Image.Image], torch.Tensor] = field(repr=False)  # PIL -> 3xHxW
    tokenizer: Callable[[list[str]], torch.Tensor] = field(repr=False)  # texts -> N x L ids
    name: str  # human readable, e.g. "open_clip ViT-B-32 / laion2b_s34b_b79k"
    source: str  # "course" | "pretrained" | "file"
    weights: str  # the file the weights were read from
    device: torch.device

    @property
    def context_length(self) -> int:
        """How many tokens a text may have; the tokenizer cuts longer texts to this length."""
        return int(getattr(self.tokenizer, "context_length", 77))

    @property
    def input_size(self) -> int:
        """The side in pixels of the pictures the image encoder takes (32 for the course CLIP)."""
        return input_size(self.model)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] pictures (N x 3 x H x W) -> the encoder's input; differentiable."""
        return normalize(images, self.model)

    @property
    def logit_scale(self) -> float:
        """The learned temperature, exp(t): similarities are multiplied by it before softmax."""
        return float(self.model.logit_scale.exp().item())

    @torch.no_grad()
    def encode_images(self, images: Sequence[Image.Image] | torch.Tensor,
                      batch_size: int = 64) -> torch.Tensor:
        """Unit-length embeddings (N x D, float32, CPU) of PIL images or a preprocessed batch.

        PIL images go through ``self.preprocess`` first (resize, crop, normalise). A tensor
        is taken as already preprocessed: N x 3 x H x W (or one image, 3 x H x W).
        """
        if isinstance(images, torch.Tensor):
            batch = images.unsqueeze(0) if images.ndim == 3 else images
            if batch.ndim != 4 or batch.shape[1] != 3:
                raise ValueError(f"A tensor of images must be N x 3 x H x W (already "
                                 f"preprocessed); got shape {tuple(images.shape)}.")
            side = self.input_size
            if tuple(batch.shape[-2:]) != (side, side):
                raise ValueError(f"A preprocessed tensor must be N x 3 x {side} x {side} for "
                                 f"this model; got shape {tuple(images.shape)}. Pass PIL images "
                                 f"(resized for you), or uint8 pictures through "
                                 f"clip.to_model_input(images, clip.model).")
            checks.preprocessed(batch)
            # float16 or float64 pictures in the model's own float type: torch refuses a mix
            weights_dtype = next(self.model.parameters()).dtype
            chunks = list(batch.to(weights_dtype).split(batch_size))
        else:
            checks.image_list(images, "images")  # not None, one picture alone, or a path
            images = list(images)
            for i, image in enumerate(images):
                if not isinstance(image, Image.Image):
                    raise ValueError(
                        f"images[{i}] is a {type(image).__name__}, not a PIL image. Open files "
                        f"with mmlearn.images.open_image(path) first.")
            chunks = [torch.stack([self.preprocess(to_rgb(im)) for im in images[i:i + batch_size]])
                      for i in range(0, len(images), batch_size)]
        if not chunks:
            raise ValueError("encode_images got no images; pass at least one.")
        return torch.cat([self._unit_cpu(self.model.encode_image(c.to(self.device)))
                          for c in chunks])

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Unit-length embeddings (N x D, float32, CPU) of a list of texts.

        Texts longer than ``self.context_length`` tokens are cut to that length by the
        tokenizer (that is how CLIP was trained).
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("encode_texts got no texts; pass at least one string.")
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise ValueError(f"encode_texts takes strings; got {type(bad[0]).__name__} {bad[0]!r}.")
        return torch.cat([
            self._unit_cpu(self.model.encode_text(
                self.tokenizer(texts[i:i + batch_size]).to(self.device)))
            for i in range(0, len(texts), batch_size)])

    @staticmethod
    def _unit_cpu(features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features.float(), dim=-1).cpu()


def input_size(model: torch.nn.Module) -> int:
    """The side in pixels of the pictures an open_clip model's image encoder takes."""
    size = model.visual.preprocess_cfg["size"]
    return size if isinstance(size, int) else size[0]


def normalize(images: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """[0, 1] pictures -> the model's input: subtract its mean, divide by its std, per channel.

    The one place the course turns pixels into CLIP input by hand. It is plain tensor
    arithmetic, so gradients flow through it: VQGAN+CLIP (lesson 04) backpropagates from
    CLIP's score into the picture through this function.
    """
    checks.tensor(images, "images", ndim=(3, 4), dtype="float",
                  example="of pictures [N, 3, H, W] in [0, 1], e.g. images.float() / 255")
    if images.shape[-3] != 3:
        raise ValueError(f"images must have 3 colour channels, [N, 3, H, W]; got "
                         f"{checks.describe_tensor(images)}.")
    config = model.visual.preprocess_cfg
    mean = torch.tensor(config["mean"], device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(config["std"], device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def to_model_input(images: torch.Tensor, model) -> torch.Tensor:
    """uint8 images (N x 3 x H x W, e.g. ``ShapeWorld(...).images``) -> the model's input.

    Scales to [0, 1], resizes to the model's image size if needed (bicubic, like
    open_clip's preprocess) and normalises with the model's mean and std, on the model's
    device (a GPU, if the model is there). For 32 px ShapeWorld images and the course CLIP
    this equals ``preprocess(pil_image)`` exactly.
    """
    if images.ndim != 4 or images.dtype != torch.uint8:
        raise ValueError("images must be a uint8 tensor N x 3 x H x W "
                         "(e.g. ShapeWorld(...).images).")
    size = input_size(model)
    x = images.to(model_device(model)).float() / 255
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return normalize(x, model)


def load_clip(source: str | os.PathLike = "auto", device: str | torch.device | None = None, *,
              model: str | None = None, pretrained: str | None = None,
              cache_dir: str | None = None, verbose: bool = True) -> LoadedClip:
    """Load a CLIP for inference: model, preprocessing, tokenizer and where it came from.

    source:
      "auto"       pretrained ViT-B-32 (laion2b_s34b_b79k) if cached or reachable, else course.
      "course"     the course's small CLIP trained on ShapeWorld (shipped, works offline).
      "course-augmented"  the same, trained on randomly tilted, shifted, blurred views
                   (shipped): a steadier guide for VQGAN+CLIP (lesson 04).
      "ARCH:TAG"   an open_clip pretrained tag, e.g. "ViT-B-32:laion2b_s34b_b79k" or
                   "ViT-B-32-quickgelu:openai" (see ``open_clip.list_pretrained()``); fetched
                   and cached by huggingface_hub exactly as open_clip does.
      a file       an open_clip state dict (torch.save / .safetensors). The architecture is
                   ``model=`` (an open_clip config name); if omitted it is inferred from the
                   tensor shapes (QuickGELU cannot be seen in the weights: OpenAI-trained
                   files need ``model="ViT-B-32-quickgelu"``).
      a folder     with open_clip_config.json and a weights file (open_clip's "local-dir").
    ``model=``/``pretrained=`` may also be given the open_clip way: ``load_clip(model=
    "ViT-B-32", pretrained="openai")``. device: None picks CUDA when present, else CPU.
    verbose: print which model "auto" picked and why.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a string such as 'auto' or 'course', or a path; "
                        f"got {type(source).__name__}.")
    if not os.fspath(source).strip():
        raise ValueError("source is empty: use 'auto', 'course', 'ARCH:TAG' or a file path.")
    source = _combine_arguments(os.fspath(source), model, pretrained)
    device = pick_device(device)
    if source == "auto":
        return _load_auto(device, cache_dir, verbose)
    if source in COURSE_SOURCES:
        return _load_course(device, source)
    path = Path(source).expanduser()
    if path.is_dir():
        return _load_folder(path, device)
    if path.is_file():
        return _load_file(path, model, device)
    if ":" in source and not source.endswith(CHECKPOINT_SUFFIXES):
        architecture, tag = source.split(":", 1)
        return _load_pretrained(architecture, tag, device, cache_dir)
    raise ValueError(
        f"Don't know how to load CLIP from {source!r}: it is not 'auto', 'course', an "
        f"open_clip 'ARCH:TAG' (e.g. {DEFAULT_PRETRAINED!r}), nor an existing file or folder.")


def _combine_arguments(source: str, model: str | None, pretrained: str | None) -> str:
    """Turn open_clip-style ``model=``/``pretrained=`` keywords into one source string."""
    if pretrained is None:
        if model is not None and (source == "auto" or source in COURSE_SOURCES):
            raise ValueError(f"model={model!r} needs a weights file (load_clip(path, model=...)) "
                             f"or a tag (load_clip(model=..., pretrained='TAG')).")
        return source
    if source != "auto":
        raise ValueError(f"Give the weights once: either source={source!r} or "
                         f"pretrained={pretrained!r}, not both.")
    if Path(pretrained).expanduser().exists():
        return pretrained  # a file or folder; model= still names its architecture
    return f"{model or DEFAULT_PRETRAINED.split(':')[0]}:{pretrained}"


# --- "auto": pretrained if we can have it quickly, else the course model ------------------

def _load_auto(device: torch.device, cache_dir: str | None, verbose: bool) -> LoadedClip:
    architecture, tag = DEFAULT_PRETRAINED.split(":")
    config = open_clip.get_pretrained_cfg(architecture, tag)
    cached = _cached_weights(config, cache_dir)
    limit = memory_limit_bytes()
    if limit is not None and limit < PRETRAINED_NEEDS_BYTES:
        use_pretrained, why = False, (
            f"this machine lets the kernel use {limit / 1e9:.1f} GB (MEM_LIMIT or its cgroup), "
            f"and a lesson with the pretrained model needs about "
            f"{PRETRAINED_NEEDS_BYTES / 1e9:.1f} GB")
    elif cached:
        use_pretrained, why = True, f"its weights are in the local cache ({cached})"
    elif is_offline():
        use_pretrained, why = False, "offline mode is on (MMLEARN_OFFLINE or HF_HUB_OFFLINE)"
    elif _reachable(config):
        use_pretrained, why = True, "the Hugging Face Hub is reachable: downloading (~600 MB, once)"
    else:
        use_pretrained, why = False, (f"its weights are not cached and the Hugging Face Hub "
                                      f"did not answer within {REACH_TIMEOUT_S:.0f} s")
    if use_pretrained:
        try:
            clip = _load_pretrained(architecture, tag, device, cache_dir)
        except WeightsUnavailableError as error:
            why = f"getting the pretrained weights failed ({error})"
        else:
            _announce(verbose, clip, why, 'the course model instead: load_clip("course")')
            return clip
    clip = _load_course(device)
    _announce(verbose, clip, f"{why}, so not the pretrained {architecture} / {tag}",
              f"the pretrained model: on a machine with internet, without MMLEARN_OFFLINE / "
              f"HF_HUB_OFFLINE, run load_clip({DEFAULT_PRETRAINED!r}) once (it downloads "
              f"~600 MB into the Hugging Face cache); after that load_clip() picks it, "
              f"even offline")
    return clip


def _announce(verbose: bool, clip: LoadedClip, why: str, other: str) -> None:
    if verbose:
        def wrap(text: str) -> str:  # never split a name like ViT-B-32 or a path
            return textwrap.fill(text, 78, initial_indent="  ", subsequent_indent="    ",
                                 break_on_hyphens=False, break_long_words=False)
        line = "=" * 78
        print(f"{line}\nmmlearn.clip: using {clip.name} on {clip.device}\n"
              f"{wrap('why: ' + why)}\n{wrap('to use ' + other)}\n{line}")


def _reachable(config: dict) -> bool:
    """True if the server holding these weights answers within REACH_TIMEOUT_S seconds.

    The check runs in a background thread that we stop waiting for after the timeout, so
    even a hanging name lookup cannot hang the notebook.
    """
    answer = {}

    def probe() -> None:
        try:
            if config.get("hf_hub"):
                from huggingface_hub import get_hf_file_metadata, hf_hub_url
                repo_id, names = _hub_files(config)
                get_hf_file_metadata(hf_hub_url(repo_id, names[-1]), timeout=REACH_TIMEOUT_S)
            else:
                request = urllib.request.Request(config["url"], method="HEAD")
                urllib.request.urlopen(request, timeout=REACH_TIMEOUT_S).close()
            answer["ok"] = True
        except Exception as error:  # an HTTP error still means the server answered
            answer["ok"] = _is_http_answer(error)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(REACH_TIMEOUT_S + 0.5)
    return answer.get("ok", False)


def _is_http_answer(error: Exception) -> bool:
    from huggingface_hub.utils import HfHubHTTPError
    return isinstance(error, (HfHubHTTPError, urllib.error.HTTPError))


# --- open_clip pretrained tags --------------------------------------------------------------

def _load_pretrained(architecture: str, tag: str, device: torch.device,
                     cache_dir: str | None) -> LoadedClip:
    """An open_clip pretrained model: from the cache, or downloaded the way open_clip does."""
    config = open_clip.get_pretrained_cfg(architecture, tag)
    if not config:
        known = open_clip.list_pretrained_tags_by_model(architecture)
        hint = (f"Tags for {architecture}: {', '.join(known)}." if known else
                f"{architecture!r} has no pretrained weights in open_clip; see "
                f"open_clip.list_pretrained() for ARCH:TAG pairs.")
        raise ValueError(f"open_clip has no pretrained weights {architecture}:{tag}. {hint}")
    weights = _cached_weights(config, cache_dir)
    if weights is None:
        weights = _download(architecture, tag, config, cache_dir)
    quick_gelu = bool(config.get("quick_gelu")) and not open_clip.get_model_config(
        architecture).get("quick_gelu", False)
    preprocess = {key: config[key] for key in ("mean", "std", "interpolation", "resize_mode")
                  if key in config}
    return _build(architecture, Path(weights), device,
                  name=f"open_clip {architecture} / {tag}" + (" (QuickGELU)" * quick_gelu),
                  source="pretrained", force_quick_gelu=quick_gelu, preprocess=preprocess)


def pretrained_is_cached(source: str = DEFAULT_PRETRAINED, cache_dir: str | None = None) -> bool:
    """True if the weights of an open_clip "ARCH:TAG" are already on disk (never uses the net)."""
    architecture, _, tag = source.partition(":")
    config = open_clip.get_pretrained_cfg(architecture, tag)
    return bool(config) and _cached_weights(config, cache_dir) is not None


def _hub_files(config: dict) -> tuple[str, list[str]]:
    """The Hub repository of a pretrained config and the files open_clip would try, in order.

    open_clip writes hf_hub as "org/repo/" (default file name) or "org/repo/file"; it
    prefers a .safetensors twin of the file when one exists.
    """
    repo_id, filename = os.path.split(config["hf_hub"])
    filename = filename or open_clip.constants.HF_WEIGHTS_NAME
    names = [filename]
    if filename == open_clip.constants.HF_WEIGHTS_NAME:
        names.insert(0, open_clip.constants.HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith((".bin", ".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    return repo_id, names


def _cached_weights(config: dict, cache_dir: str | None) -> str | None:
    """The local file of a pretrained config if it was downloaded before; never uses the net."""
    if config.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache
        repo_id, names = _hub_files(config)
        for name in names:
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    elif config.get("url"):
        folder = cache_dir or os.path.expanduser("~/.cache/clip")
        found = os.path.join(folder, os.path.basename(config["url"]))
        if os.path.isfile(found):
            return found
    return None


def _download(architecture: str, tag: str, config: dict, cache_dir: str | None) -> str:
    """Download weights with open_clip, after checking we may and can; fail fast otherwise."""
    where = (f"the Hugging Face cache ({_hub_files(config)[0]}, files "
             f"{' or '.join(_hub_files(config)[1])})" if config.get("hf_hub")
             else f"~/.cache/clip ({os.path.basename(config['url'])})")
    get_it = (f"To get them: on a machine with internet and without MMLEARN_OFFLINE / "
              f"HF_HUB_OFFLINE, run load_clip('{architecture}:{tag}') once (or copy the "
              f"cache folder over); or use load_clip('course'), which works offline.")
    if is_offline():
        raise WeightsUnavailableError(
            f"Offline mode is on (MMLEARN_OFFLINE or HF_HUB_OFFLINE), so mmlearn did not use "
            f"the network, and the weights of {architecture}:{tag} are not in {where}. {get_it}")
    if not _reachable(config):
        raise WeightsUnavailableError(
            f"The weights of {architecture}:{tag} are not in {where}, and the server holding "
            f"them did not answer within {REACH_TIMEOUT_S:.0f} s. {get_it}")
    print(f"mmlearn.clip: downloading {architecture}:{tag} (once; cached afterwards)...")
    try:
        return open_clip.download_pretrained(config, cache_dir=cache_dir)
    except Exception as error:
        raise WeightsUnavailableError(
            f"Downloading the weights of {architecture}:{tag} failed: "
            f"{type(error).__name__}: {error}. {get_it}") from None


# --- the course model, local files and folders ---------------------------------------------

def register_course_config() -> None:
    """Make open_clip know the course CLIP's architecture (see ``mmlearn.model_configs``)."""
    if COURSE_MODEL not in open_clip.list_models():
        model_configs.register()
    if COURSE_MODEL not in open_clip.list_models():
        raise FileNotFoundError(f"open_clip does not know {COURSE_MODEL!r}: its config is "
                                f"missing from {model_configs.CONFIG_DIR}; reinstall mmlearn.")


def _load_course(device: torch.device, source: str = "course") -> LoadedClip:
    register_course_config()
    weights_file, trained_on = COURSE_SOURCES[source]
    weights = checkpoints.shipped_path(weights_file)  # checks the recorded sha256
    return _build(COURSE_MODEL, weights, device, source="course",
                  name=f"course CLIP {COURSE_MODEL} (trained on {trained_on})")


def _load_file(path: Path, architecture: str | None, device: torch.device) -> LoadedClip:
    model_configs.register()  # so files holding the course architecture load too
    if architecture is None:
        architecture = _infer_architecture(_tensor_shapes(path), path)
    elif architecture not in open_clip.list_models():
        raise ValueError(f"model={architecture!r} is not an open_clip architecture; "
                         f"see open_clip.list_models().")
    return _build(architecture, path, device, source="file",
                  name=f"{architecture} from file {path.name}")


def _load_folder(folder: Path, device: torch.device) -> LoadedClip:
    """A folder saved the open_clip / Hugging Face way: open_clip_config.json + weights."""
    if not (folder / "open_clip_config.json").is_file():
        files = [p for p in folder.iterdir() if p.suffix in CHECKPOINT_SUFFIXES]
        if len(files) == 1:
            return _load_file(files[0], None, device)
        raise ValueError(f"The folder {folder} has no open_clip_config.json and not exactly "
                         f"one weights file ({', '.join(CHECKPOINT_SUFFIXES)}); pass the weights "
                         f"file itself: load_clip(path_to_file, model='ARCH').")
    weights = open_clip.factory._find_checkpoint_in_dir(folder)  # the file open_clip picks
    if weights is None:
        raise ValueError(f"The folder {folder} has open_clip_config.json but no weights file "
                         f"(.safetensors, .bin or .pth).")
    return _build(f"local-dir:{folder}", Path(weights), device, source="file",
                  name=f"open_clip model from folder {folder.name}")


def _tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors in a checkpoint, read without loading it all.

    Reading the file here first turns a truncated, corrupt or non-weights file into one
    clear error that names it, before open_clip builds a model.
    """
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open
            with safe_open(str(path), framework="pt") as f:
                return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        state = checkpoints.load_tensors(path, mmap=True)  # mapped: 600 MB are not read
    except Exception as error:
        detail = str(error).replace(str(path), "the file").split("\n")[0][:200]
        raise ValueError(
            f"{path} could not be read as CLIP weights ({detail}). The file may be truncated "
            f"or corrupt (download or save it again), or hold more than tensors: save "
            f"weights with torch.save(model.state_dict(), path).") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not (isinstance(state, dict) and state
            and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict (names to "
                         f"tensors). Save weights with torch.save(model.state_dict(), path).")
    return {k.removeprefix("module."): tuple(v.shape) for k, v in state.items()}


def _infer_architecture(shapes: dict[str, tuple[int, ...]], path: Path) -> str:
    """The open_clip config whose model has exactly these tensor names and shapes.

    Only standard CLIP configs (no timm or Hugging Face towers) are tried; configs are
    first narrowed by the embedding and tower widths, then compared in full on the "meta"
    device, which builds the model's shapes without allocating its memory.
    """
    course = model_configs.register()  # the course's own, e.g. a copy of its weights file
    matches = [name for name in course if _same_shapes(name, shapes)]
    for name in open_clip.list_models():
        config = open_clip.get_model_config(name)
        if (name not in course and _plain_clip(config) and _widths_match(config, shapes)
                and _same_shapes(name, shapes)):
            matches.append(name)
    if not matches:
        raise ValueError(
            f"{path} does not match any open_clip architecture this function can recognise "
            f"(the course's and the standard CLIP configs). If it is CLIP weights, pass the "
            f"architecture it was trained with: load_clip({str(path)!r}, model='ARCH'), with "
            f"ARCH one of open_clip.list_models().")
    # Configs differing only in activation (QuickGELU) have identical weights: prefer plain.
    matches.sort(key=lambda n: (open_clip.get_model_config(n).get("quick_gelu", False), len(n)))
    return matches[0]


def _fitting_architecture(weights: Path) -> str | None:
    """The architecture these weights fit exactly, or None: the only one worth naming in
    advice (a guess such as "ViT-B-32" for other weights would send a learner astray)."""
    try:
        return _infer_architecture(_tensor_shapes(weights), weights)
    except ValueError:
        return None


def _same_shapes(name: str, shapes: dict[str, tuple[int, ...]]) -> bool:
    """True if the open_clip config ``name`` has exactly these tensor names and shapes
    (built on the "meta" device: shapes only, no memory)."""
    config = open_clip.get_model_config(name)
    config.pop("custom_text", None)
    with torch.device("meta"):
        candidate = open_clip.CLIP(**config)
    return {k: tuple(v.shape) for k, v in candidate.state_dict().items()} == shapes


def _plain_clip(config: dict) -> bool:
    vision, text = config.get("vision_cfg", {}), config.get("text_cfg", {})
    return not (vision.get("timm_model_name") or text.get("hf_model_name")
                or "multimodal_cfg" in config or isinstance(vision.get("layers"), list))


def _widths_match(config: dict, shapes: dict[str, tuple[int, ...]]) -> bool:
    text_width = config["text_cfg"].get("width", 512)
    vision_width = config["vision_cfg"].get("width", 768)
    return (shapes.get("text_projection") == (text_width, config["embed_dim"])
            and shapes.get("visual.proj") == (vision_width, config["embed_dim"]))


@contextlib.contextmanager
def _quiet_random_init():
    """Hide open_clip's "initialized randomly" warning: the weights are assigned right after."""
    def keep(record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()
    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors, memory-mapped where the format allows.

    Memory-mapped tensors live in the file's pages, not in a second copy: with a
    600 MB ViT-B-32 that is the difference between fitting in Binder's 2 GB and not.
    """
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = checkpoints.load_tensors(path, mmap=True)
    if isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


def _assign_weights(model: torch.nn.Module, path: Path) -> None:
    """Make the model's parameters *be* the checkpoint's tensors (no copy into random ones).

    ``assign=True`` swaps each parameter for the loaded tensor, so the randomly
    initialised one is freed; a tensor stored in another dtype (fp16 weights of an
    fp32 model) is converted first, which copies only that tensor.
    """
    state = _read_state_dict(path)
    own = model.state_dict()
    for name, tensor in state.items():
        if name in own:
            if tensor.dtype != own[name].dtype:
                state[name] = tensor.to(own[name].dtype)
            if tensor.ndim != own[name].ndim and tensor.numel() == own[name].numel():
                state[name] = state[name].reshape(own[name].shape)  # logit_scale: () vs (1,)
    model.load_state_dict(state, strict=True, assign=True)


def _build(architecture: str, weights: Path, device: torch.device, *, name: str, source: str,
           force_quick_gelu: bool = False, preprocess: dict | None = None) -> LoadedClip:
    """Create the open_clip model with these weights; turn a shape mismatch into advice."""
    _tensor_shapes(weights)  # a clear error naming the file if it is corrupt
    preprocess = preprocess or {}
    from_folder = architecture.startswith("local-dir:")  # open_clip finds the weights itself
    try:
        with _quiet_random_init():
            model, _, transform = open_clip.create_model_and_transforms(
                architecture, pretrained=None, device="cpu",
                force_quick_gelu=force_quick_gelu, weights_only=True,
                image_mean=preprocess.get("mean"), image_std=preprocess.get("std"),
                image_interpolation=preprocess.get("interpolation"),
                image_resize_mode=preprocess.get("resize_mode"))
        if not from_folder:  # a local-dir model came with its weights
            _assign_weights(model, weights)
        model = model.to(device)
    except (RuntimeError, AssertionError) as error:  # open_clip's two ways to say "mismatch"
        if isinstance(error, RuntimeError) and "loading state_dict" not in str(error):
            raise
        first_lines = " ".join(str(error).split("\n")[:3])[:400]
        fits = _fitting_architecture(weights)
        advice = (f"They fit {fits!r}: leave model= out and mmlearn picks it." if fits else
                  "Pass the architecture the weights were trained with, load_clip(path, "
                  "model='ARCH').")
        raise ValueError(f"{weights} does not fit the architecture {architecture} "
                         f"({first_lines} ...). {advice}") from None
    model.eval().requires_grad_(False)
    return LoadedClip(model=model, preprocess=transform,
                      tokenizer=open_clip.get_tokenizer(architecture), name=name,
                      source=source, weights=str(weights), device=device)
