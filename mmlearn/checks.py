"""Checks of what a learner passes in: one small helper per kind of mistake.

A bad argument should fail at once, in the learner's own cell, with a message that
names the argument and says what to pass instead - not three calls deeper as a raw
traceback, and never as a quietly wrong answer. Public functions of mmlearn call these
helpers at their top. The rule for the kind of complaint:

- ``TypeError``: the wrong *kind* of thing (a string where a list of labels is needed).
- ``ValueError``: the right kind, but unusable (an empty label, a NaN, ``k=-1``).
- a warning: going on is right, but the result is not quite what was asked for (a text
  cut to the text encoder's length, a word the model never saw). It points at the
  learner's line (see ``warn``), not at a line inside mmlearn.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import string
import sys
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_TORCH = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")


# ------------------------------------------------------------------------------ warnings


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn, pointing at the line that called mmlearn (a notebook cell, a script, a test).

    Why: Python shows the file and line a warning comes from. A fixed ``stacklevel`` is
    right for one call path only; mmlearn functions call each other and torch's
    ``no_grad`` decorator adds frames, so the line shown would often be inside mmlearn
    or torch, which tells the learner nothing. Here the level is counted out to the
    first frame that is in neither.
    """
    inside = (_PACKAGE, _TORCH)
    frame, level = sys._getframe(0), 1  # level 1 is this function
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


# ------------------------------------------------------------------------------ texts


def describe(value) -> str:
    """How a wrong value is named in a message: ``None``, ``a str 'cat'``, ``an int 123``."""
    if value is None:
        return "None"
    kind = type(value).__name__
    shown = f" {value!r}" if isinstance(value, str | numbers.Number) else ""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}{shown}"


def visible(text: str) -> str:
    """``text`` without invisible characters (zero-width spaces, joiners, BOM, controls)."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc"))


def text(value, name: str, example: str) -> str:
    """A string with something visible in it; returned unchanged.

    Why: CLIP's tokenizer turns ``""``, ``"   "`` or a zero-width space into just its
    start and end tokens, and that still has an embedding. A search or a class with such
    a text gives confident-looking numbers that mean nothing.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string such as {example!r}; got {describe(value)}.")
    if not visible(value).strip():
        raise ValueError(f"{name} is blank ({value!r}): write at least one visible word, e.g. "
                         f"{example!r}. (Spaces and invisible characters such as zero-width "
                         f"spaces do not count.)")
    return value


def texts(values, name: str, example: str) -> list[str]:
    """A non-empty list of visible strings (any sequence or iterable of them).

    Why: a string is itself a sequence - of letters. ``labels="cat"`` would be taken
    as the three labels 'c', 'a', 't' and give an answer, just a meaningless one.
    """
    if isinstance(values, str):
        raise TypeError(f"{name} must be a list of strings; a string is read letter by letter "
                        f"({', '.join(repr(c) for c in values[:4])}, ...). Write [{values!r}].")
    if values is None or isinstance(values, bytes | Mapping) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of strings such as [{example!r}]; "
                        f"got {describe(values)}.")
    if isinstance(values, set | frozenset):
        raise TypeError(f"{name} must be a list, not a set: a set has no order, so the answers "
                        f"would come back in an order that changes from run to run. Write "
                        f"{sorted(map(str, values))!r}.")
    values = list(values)
    if not values:
        raise ValueError(f"{name} is empty; give at least one, e.g. [{example!r}].")
    for i, value in enumerate(values):
        text(value, f"{name}[{i}]", example)
    return values


def distinct(values: Sequence[str], name: str) -> None:
    """No two texts that differ only by case, spaces or invisible characters.

    Why: "Red circle" and "red circle " are one class to a reader, and CLIP embeds them
    (almost) alike: the probability of that class would be split between the two.
    """
    seen: dict[str, str] = {}
    for value in values:
        key = " ".join(visible(value).split()).casefold()
        if key in seen:
            same = "" if seen[key] == value else f" as {value!r} (the same but for case or spaces)"
            raise ValueError(f"{name} has {seen[key]!r} repeated{same}: two copies of one class "
                             f"split its probability between them. Keep one of them.")
        seen[key] = value


def template(value, name: str) -> None:
    """A prompt template: a string with exactly one ``{}`` (or a function of the label).

    Why: a template without a ``{}`` gives the same prompt for every label, so every
    class gets the same probability; ``"{0} {1}"`` fails inside ``str.format``.
    """
    if callable(value):
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string with one '{{}}' for the label, such as "
                        f"'a photo of a {{}}', or a function; got {describe(value)}.")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as error:  # a lone '{' or '}'
        raise ValueError(f"{name} {value!r} is not a valid template ({error}); write "
                         f"'{{}}' where the label goes and '{{{{' '}}}}' for literal "
                         f"braces.") from None
    if fields not in ([""], ["0"]):
        raise ValueError(f"{name} {value!r} must have exactly one '{{}}', where the label goes "
                         f"(e.g. 'a photo of a {{}}'); it has {len(fields)} fields.")


def templates(values, name: str = "templates") -> list:
    """A non-empty list of templates (see ``template``); a lone string is refused."""
    if isinstance(values, str) or callable(values):
        raise TypeError(f"{name} must be a list of templates; a single one goes in brackets: "
                        f"[{values!r}].")
    if values is None or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of templates such as ['a photo of a {{}}']; "
                        f"got {describe(values)}.")
    values = list(values)
    if not values:
        raise ValueError(f"{name} is empty; give at least one, e.g. ['a photo of a {{}}'].")
    for i, value in enumerate(values):
        template(value, f"{name}[{i}]")
    return values


def not_a_path(value: str, name: str) -> None:
    """A text query that is really a file name is refused.

    Why: ``search("photos/cat.jpg")`` would embed the *words* "photos/cat.jpg" and
    return whatever looks like them, not images like the picture in that file.
    """
    stripped = value.strip()
    looks_like_file = (not any(ch.isspace() for ch in stripped)
                       and stripped.lower().endswith(IMAGE_SUFFIXES))
    try:
        exists = len(stripped) < 4096 and Path(stripped).expanduser().is_file()
    except (OSError, ValueError):  # names too long or with NUL bytes are not files
        exists = False
    if looks_like_file or exists:
        raise ValueError(f"{name} {value!r} looks like a file path, and a text is searched "
                         f"by its words. To search with the picture in that file, pass "
                         f"open_image({value!r}) (from mmlearn.images).")


def token_count(tokenizer, text: str, context_length: int) -> int:
    """How many tokens ``text`` has with start and end tokens, before any cutting.

    open_clip's BPE tokenizer has ``encode`` (no cutting); for other tokenizers a row
    that fills the whole context with no padding left is taken as cut (by one token).
    """
    if hasattr(tokenizer, "encode"):
        return len(tokenizer.encode(text)) + 2
    row = tokenizer([text])[0]
    if len(row) < context_length:  # a tokenizer of its own, with shorter rows: nothing cut
        return len(row)
    return context_length + int(bool((row != 0).all()))


def warn_if_cut(texts: Sequence[str], tokenizer, context_length: int, what: str) -> None:
    """Warn once per text longer than the text encoder reads, saying how much is cut.

    Why: the tokenizer cuts long texts without a word (that is how CLIP was trained), so
    a long query or label would silently lose its end - often the part that mattered.
    """
    if tokenizer is None:
        return
    for value in texts:
        n_tokens = token_count(tokenizer, value, context_length)
        if n_tokens > context_length:
            shown = value if len(value) <= 40 else value[:40] + "…"
            warn(f"The {what} {shown!r} has {n_tokens} tokens; the text encoder reads only "
                 f"the first {context_length}, the rest is cut ({n_tokens - context_length} "
                 f"tokens). Shorten it to keep what matters.")


# ------------------------------------------------------------------------------ numbers


def flag(value, name: str) -> bool:
    """True or False (NumPy's bools too). Why: ``overwrite="no"`` is a true string, and
    would replace the very file the learner meant to keep."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False; got {describe(value)}.")
    return bool(value)


def integer(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number (not a bool, not a float such as 2.5), from ``minimum`` to ``maximum``.

    Why: ``k=2.5`` or ``top_k=2.5`` have no meaning, and deep inside torch they fail
    with a message about ``topk()`` arguments the learner never wrote.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a whole number (an int); got {describe(value)}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}; got {value}.")
    return int(value)


def seed(value, name: str = "seed") -> int:
    """A seed every generator takes: a whole number from 0 to 2**32 - 1 (NumPy's ints too).

    Why: NumPy refuses negative and larger seeds, and ``random.seed`` refuses NumPy's
    integers, each with a message about a function the learner never called.
    """
    value = integer(value, name)
    if not 0 <= value < 2**32:
        raise ValueError(f"{name} must be between 0 and 2**32 - 1 (= {2**32 - 1}); got {value}.")
    return value


# What one call may allocate unless told otherwise: half of what a 2 GB Binder kernel holds.
MEMORY_BUDGET_BYTES = 2**30


def memory_budget(nbytes: int, what: str, allowed: int | None = None) -> None:
    """Refuse, before allocating, what would take more than ``allowed`` bytes (1 GiB unless a
    caller asks for more). Why: an array too big for the machine kills the kernel, and
    every variable of the session with it, instead of saying what was too big."""
    allowed = MEMORY_BUDGET_BYTES if allowed is None else allowed
    if nbytes > allowed:
        raise ValueError(f"{what} would take {nbytes / 2**30:.1f} GiB, more than the "
                         f"{allowed / 2**30:.1f} GiB allowed: ask for less, or pass "
                         f"max_bytes={nbytes} to go past the limit on purpose.")


def optional_integer(value, name: str, minimum: int) -> int | None:
    """``None`` (meaning: no limit) or a whole number of at least ``minimum``."""
    return None if value is None else integer(value, f"{name} (or None)", minimum)


def positive_number(value, name: str, example: float) -> float:
    """A finite number above zero (a temperature, a learning rate).

    Why: 0 divides by zero, a negative one reverses the meaning, NaN and inf spread
    through every later number: all give a result without an error, just a wrong one.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number such as {example}; got {describe(value)}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number above 0, such as {example}; "
                         f"got {value}.")
    return float(value)


def number_in_range(value, name: str, low: float, high: float, example: float) -> float:
    """A finite number from ``low`` to ``high`` (NumPy's numbers too), e.g. a guidance scale.

    Why: NaN or inf passes every comparison silently and turns every picture into noise;
    a scale of 1e6 gives pictures that are all one colour, with no error either.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number such as {example}; got {describe(value)}.")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a finite number from {low:g} to {high:g}, such as "
                         f"{example}; got {value}.")
    return float(value)


def choice(value, name: str, allowed: Sequence[str]) -> str:
    """One of a few named options (``"ddim"`` or ``"ddpm"``), case as written."""
    if not isinstance(value, str) or value not in allowed:
        listed = " or ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be {listed}; got {describe(value)}.")
    return value


def weight(value, name: str, low: float = -10.0, high: float = 10.0) -> float:
    """A finite prompt weight within ``low..high``.

    Why: a weight of 1e9 drowns every other part of the prompt and makes the loss so
    large that one optimiser step throws the picture far out of the codebook's range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number such as 1 or -0.5; got {describe(value)}.")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} is {value}; a weight must be a finite number between {low:g} "
                         f"and {high:g} (1 is usual, -0.5 steers away).")
    return float(value)


def finite_vectors(vectors, name: str) -> None:
    """A float tensor [Q, D] with Q, D > 0, no NaN or inf, and no all-zero row.

    Why: a NaN makes every score NaN and the ranking arbitrary; an all-zero vector has
    no direction, so every cosine similarity is 0 and the "best" hits are noise.
    """
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise ValueError(f"{name} must be one vector [D] or a batch [Q, D] with Q, D > 0; got "
                         f"shape {tuple(vectors.shape)}.")
    if not vectors.isfinite().all():
        raise ValueError(f"{name} contains NaN or inf; a query vector must be finite. (Was it "
                         f"computed from an empty or broken input?)")
    zero = (vectors == 0).all(dim=1)
    if zero.any():
        raise ValueError(f"{name} (row {int(zero.nonzero()[0])}) is all zeros: it points in no "
                         f"direction, so every image would score 0.")


# ------------------------------------------------------------------------------ tensors

# The kinds of dtype a tensor check can ask for, and how a message names them.
_DTYPE_KINDS = {"float": ("a float", torch.Tensor.is_floating_point),
                "integer": ("an integer", lambda t: not t.is_floating_point()
                            and not t.is_complex() and t.dtype != torch.bool),
                "bool": ("a bool", lambda t: t.dtype == torch.bool)}


def describe_tensor(value) -> str:
    """``a float32 tensor of shape (3, 8, 8)``, or ``describe(value)`` for anything else."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a NumPy {value.dtype} array of shape {value.shape}"
    return describe(value)


def tensor(value, name: str, ndim: int | tuple[int, ...] | None = None, dtype: str | None = None,
           shape: tuple | None = None, example: str = "") -> torch.Tensor:
    """A torch tensor with ``ndim`` dimensions (one count or a tuple of allowed ones), a dtype
    of one kind (``"float"``, ``"integer"`` or ``"bool"``) and, where ``shape`` is given, those
    sizes (``None`` for any size in that place). ``example`` says what to pass, e.g.
    ``"[B, 16, 8, 8]"``.

    It looks at the shape and dtype only, never at the values: cheap enough for a training
    or sampling loop (no scan of the data, no copy between devices, no ``.item()``).

    Why: a tensor of the wrong layout fails deep inside torch ("shape '[-1, 1, 1, 1]' is
    invalid", "mat1 and mat2 shapes cannot be multiplied") or, worse, broadcasts into an
    answer of the wrong shape; uint8 pixels wrap around silently under ``* 2 - 1``.
    """
    kind, has_kind = _DTYPE_KINDS[dtype] if dtype else ("a", None)
    wanted = f"{kind} tensor" + (f" {example}" if example else "")
    if not isinstance(value, torch.Tensor):
        array = isinstance(value, np.ndarray)
        hint = " (torch.from_numpy(array) turns it into one)" if array else ""
        raise TypeError(f"{name} must be {wanted}; got {describe_tensor(value)}{hint}.")
    if has_kind is not None and not has_kind(value):
        raise TypeError(f"{name} must be {wanted}; got {describe_tensor(value)}.")
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if shape is not None:
        allowed = (len(shape),)
    if allowed is not None and value.ndim not in allowed:
        counts = " or ".join(str(n) for n in allowed)
        raise ValueError(f"{name} must be {wanted} ({counts} dimensions); got "
                         f"{describe_tensor(value)}.")
    if shape is not None and any(want is not None and want != have
                                 for want, have in zip(shape, value.shape)):
        expected = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must be {wanted}, shape {expected}; got "
                         f"{describe_tensor(value)}.")
    return value


def same_batch(values: Mapping[str, torch.Tensor]) -> None:
    """Tensors that hold one row per sample have the same first size.

    Why: a batch of 8 pictures with 4 conditions fails inside a layer with a message about
    matrix sizes; with 1 of them it broadcasts, and every picture gets the same row.
    """
    sizes = {name: len(value) for name, value in values.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} has {size}" for name, size in sizes.items())
        raise ValueError(f"{' and '.join(sizes)} must hold one row per sample, the same number "
                         f"of rows; {listed}.")


def instance(value, name: str, kind: type | tuple, what: str):
    """``value`` is one of ``kind`` (``what`` names it in the message, e.g. "a Schedule such as
    diffusion.cosine_schedule(200)"). Why: a wrong object fails later on a missing attribute
    the learner never wrote."""
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {what}; got {describe_tensor(value)}.")
    return value


# ------------------------------------------------------------------------------ images


def image_list(images, name: str = "images") -> None:
    """A list of pictures, not a single picture or a path.

    Why: one PIL image passed alone is not a list; a path string would be read letter
    by letter. Both fail deep inside with messages about something else.
    """
    from PIL import Image

    if isinstance(images, Image.Image):
        raise TypeError(f"{name} must be a list of images; for one picture write [image].")
    if isinstance(images, str | Path):
        raise TypeError(f"{name} must be a list of PIL images; to use the file {images!r}, "
                        f"pass [open_image({str(images)!r})] (from mmlearn.images).")
    if isinstance(images, np.ndarray):
        raise TypeError(f"{name} must be a list of PIL images; got a NumPy array of shape "
                        f"{images.shape}. Turn each uint8 H x W x 3 picture into one with "
                        f"PIL.Image.fromarray(array).")
    if images is None or not hasattr(images, "__len__"):
        raise TypeError(f"{name} must be a list of PIL images (or a preprocessed tensor); "
                        f"got {describe(images)}.")


# A normalised picture (CLIP's mean and std) lies within about -1.8..2.2; raw pixels reach 255.
PREPROCESSED_RANGE = 10.0


def preprocessed(batch, name: str = "images") -> None:
    """The one rule for "this tensor is already the model's input": float, finite, and in
    the range a normalised picture has.

    Why: a float tensor of raw 0-255 pixels, or of NaN, is embedded without a word, and
    every score computed from it is meaningless.
    """
    if not batch.is_floating_point():
        raise TypeError(f"{name} is a {batch.dtype} tensor; a tensor is taken as already "
                        f"preprocessed (float, normalised). For uint8 pictures such as "
                        f"ShapeWorld(...).images use clip.to_model_input(images, model), "
                        f"or pass PIL images.")
    if not batch.isfinite().all():
        raise ValueError(f"{name} contains NaN or inf; a picture must be finite.")
    largest = float(batch.abs().max()) if batch.numel() else 0.0
    if largest > PREPROCESSED_RANGE:
        raise ValueError(f"{name} has values up to {largest:g}: that looks like raw pixels "
                         f"(0-255), not a normalised picture. Use clip.to_model_input on "
                         f"uint8 pictures, or pass PIL images.")


def one_kind_of_source(items: Sequence, name: str = "source") -> None:
    """A list is all PIL images or all file paths, not a mix.

    Why: the two are read in different ways (a path is opened, an image is used as it
    is); a mix used to fail halfway with ``'str' object has no attribute 'mode'``.
    """
    from PIL import Image

    kinds = {"image" if isinstance(item, Image.Image) else
             "path" if isinstance(item, str | Path) else type(item).__name__ for item in items}
    if kinds == {"image", "path"}:
        raise TypeError(f"{name} mixes PIL images and file paths; pass all pictures "
                        f"(open the files with open_image(path)) or all paths.")


# ------------------------------------------------------------------------------ words


def close_match(word: str, vocabulary: Iterable[str]) -> str | None:
    """The vocabulary word nearest to ``word`` (``difflib``), or None if none is close.

    A typo keeps a word's length within a letter or so ('rèd', 'stpes', 'circl'); a much
    shorter word that happens to share letters ('in' for 'pink') is no suggestion.
    """
    slack = max(1, len(word) // 4)
    similar_length = [v for v in vocabulary if abs(len(v) - len(word)) <= slack]
    matches = difflib.get_close_matches(word, similar_length, n=1, cutoff=0.6)
    return matches[0] if matches else None


def describe_unknown(words: Iterable[str], vocabulary: Iterable[str]) -> str:
    """``'rèd' (did you mean 'red'?), 'zzz'``: unknown words, each with a close match if any."""
    vocabulary = list(vocabulary)
    parts = []
    for word in dict.fromkeys(words):  # each once, in order
        match = close_match(word, vocabulary)
        parts.append(f"{word!r} (did you mean {match!r}?)" if match else repr(word))
    return ", ".join(parts)


def known_names(given: Iterable[str], allowed: Iterable[str], what: str) -> None:
    """Every name in ``given`` is one of ``allowed``; else a TypeError with a close match.

    Why: a typo such as ``stpes=10`` should say which setting was meant, not only that
    an argument was unexpected.
    """
    allowed = list(allowed)
    unknown = [name for name in given if name not in allowed]
    if unknown:
        raise TypeError(f"Unknown {what}: {describe_unknown(unknown, allowed)}. The settings "
                        f"are: {', '.join(allowed)}.")
