"""Plots of data for the lessons: matrices, curves, bars, picture grids, search results.

The rule between the course's two drawing modules: ``viz`` plots data that a lesson
computed (a similarity matrix, a loss curve, pictures a model drew); ``mmlearn.diagrams``
draws how a model works, from boxes and arrows. Pictures in a grid are always
``viz.image_grid``.

Every function returns a matplotlib Figure (Jupyter shows it; a script can
``fig.savefig``) and takes plain tensors, arrays and lists, so a learner can call
it on anything they compute. ``viz`` imports nothing from mmlearn but ``checks``.
"""

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from mmlearn import checks


def _numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# The argument checks of the plots, in mmlearn.checks's style (name the argument, what came,
# and what to pass) for what viz alone takes: numbers in any container, one label per row.


def _shown(value) -> str:
    if isinstance(value, torch.Tensor | np.ndarray):
        return f"a {type(value).__name__} of shape {tuple(value.shape)}"
    return "None" if value is None else f"a {type(value).__name__}"


def _numbers(value, name: str, ndim: int, example: str) -> np.ndarray:
    """``value`` (a tensor, array or nested list of real numbers) as a float array with
    ``ndim`` dimensions; else a TypeError / ValueError naming ``name``."""
    try:
        array = _numpy(value).astype(float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {example} (a tensor, array or list of numbers); got "
                        f"{_shown(value)}.") from None
    if array.ndim != ndim or array.size == 0:
        raise ValueError(f"{name} must be {example}, not empty; got {_shown(value)} "
                         f"(shape {array.shape}).")
    return array


def _labels(labels, name: str, count: int, what: str, at_least: bool = False) -> None:
    """None or one label per ``what`` (``count`` of them; more, if ``at_least``)."""
    if labels is None:
        return
    if isinstance(labels, str) or not hasattr(labels, "__len__"):
        raise TypeError(f"{name} must be a list of {count} labels, one per {what}; got "
                        f"{_shown(labels)}.")
    if len(labels) < count or len(labels) > count and not at_least:
        raise ValueError(f"{name} must hold one label per {what} ({count}); got {len(labels)}.")


def similarity_heatmap(similarity, row_labels=None, col_labels=None, title: str = "",
                       ax=None, annotate: bool | None = None, vmin=None, vmax=None):
    """An N x M matrix as a heatmap: rows are images, columns are captions."""
    matrix = _numbers(similarity, "similarity", 2, "an N x M matrix of similarities")
    _labels(row_labels, "row_labels", matrix.shape[0], "row")
    _labels(col_labels, "col_labels", matrix.shape[1], "column")
    if ax is None:
        size = min(9, 1.2 + 0.45 * max(matrix.shape))
        fig, ax = plt.subplots(figsize=(size + 1, size))
    else:
        fig = ax.figure
    shown = ax.imshow(matrix, cmap="viridis", vmin=vmin, vmax=vmax)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if annotate is None:
        annotate = max(matrix.shape) <= 10
    if annotate:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if value < matrix.mean() else "black")
    if row_labels is not None:
        ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    if col_labels is not None:
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("captions")
    ax.set_ylabel("images")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def training_curves(history):
    """Loss per step (left) and zero-shot accuracy on seen / unseen combinations (right)."""
    needed = ("loss", "eval_steps", "seen_accuracy", "unseen_accuracy")
    if not all(hasattr(history, field) for field in needed):
        raise TypeError(f"history must be what train.train returns (a History with "
                        f"{', '.join(needed)}); got {_shown(history)}.")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot(history.loss, lw=0.8)
    left.set(xlabel="step", ylabel="contrastive loss", title="training loss")
    right.plot(history.eval_steps, history.seen_accuracy, "o-", label="seen combinations")
    right.plot(history.eval_steps, history.unseen_accuracy, "s-", label="unseen combinations")
    right.set(xlabel="step", ylabel="zero-shot top-1", ylim=(0, 1.02), title="zero-shot accuracy")
    right.legend(loc="lower right")
    fig.tight_layout()
    return fig


def noise_schedules(schedules: dict, title: str = "how much of the picture is left"):
    """The signal left, sqrt(alpha_bar_t), against the share of the way t / T, one line per
    schedule: ``{name: alpha_bar}`` with each ``alpha_bar`` a 1-D tensor of its T values."""
    if not isinstance(schedules, dict) or not schedules:
        raise TypeError(f"schedules must map names to alpha_bar tensors, e.g. "
                        f"{{'cosine': schedule.alpha_bar}}; got {_shown(schedules)}.")
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, alpha_bar in schedules.items():
        signal = _numbers(alpha_bar, f"schedules[{name!r}]", 1, "[T]") ** 0.5
        ax.plot(np.arange(1, len(signal) + 1) / len(signal), signal, label=name)
    ax.set(xlabel="t / T", ylabel="signal left, √ᾱ_t", title=title, ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def guidance_tradeoff(sweep: dict, default: float | None = None):
    """Fidelity against variety as guidance grows: one line per model.

    ``sweep``: ``{model name: {scale: row}}``, each row with ``"seen"`` and ``"unseen"``
    groups of ``shape``, ``centre_ratio``, ``size_ratio``, ``precision`` and ``recall``
    (what scripts/eval_variety.py saves). Three panels: the judge's shape rate, the spread
    of centre and size as a share of real pictures', precision and recall. ``default``
    marks a chosen scale.
    """
    if not isinstance(sweep, dict) or not sweep or not all(isinstance(v, dict) and v
                                                          for v in sweep.values()):
        raise TypeError(f"sweep must map model names to {{scale: row}} dicts, as "
                        f"scripts/eval_variety.py saves; got {_shown(sweep)}.")
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = (("shape rate (judge)", (("seen", "shape", "seen pairs", "-"),
                                      ("unseen", "shape", "held-out pairs", "--"))),
              ("spread / real pictures' spread", (("all", "centre_ratio", "centre", "-"),
                                                  ("all", "size_ratio", "size", "--"))),
              ("in CLIP's image-embedding space", (("all", "precision", "precision", "-"),
                                                   ("all", "recall", "recall", "--"))))
    for ax, (title, lines) in zip(axes, panels):
        for color, (name, rows) in zip(("tab:blue", "tab:orange", "tab:green"), sweep.items()):
            scales = sorted(rows, key=float)
            for group, key, label, style in lines:
                ax.plot([float(s) for s in scales], [rows[s][group][key] for s in scales],
                        style, marker="o", color=color, label=f"{name}: {label}")
        if default is not None:
            ax.axvline(default, color="grey", lw=0.8, ls=":")
        ax.set(xlabel="decoder guidance scale", title=title, ylim=(0, 1.45))
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def probability_bars(labels, probabilities, title: str = "", ax=None):
    """Horizontal bars: one probability per label, the largest highlighted."""
    values = _numbers(probabilities, "probabilities", 1, "one row of probabilities [C]")
    _labels(labels, "labels", len(values), "probability")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 0.4 * len(labels) + 1))
    else:
        fig = ax.figure
    colors = ["tab:orange" if i == values.argmax() else "tab:blue" for i in range(len(values))]
    ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    for i, value in enumerate(values):
        ax.text(min(value + 0.01, 0.9), i, f"{value:.2f}", va="center", fontsize=9)
    ax.set_xlabel("probability")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_heatmap(matrix, labels, title: str = "", normalize: bool = True):
    """Rows: true class, columns: predicted class; the diagonal is what was right."""
    counts = _numpy(matrix).astype(float)
    if normalize:
        counts = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(0.3 * len(labels) + 3, 0.3 * len(labels) + 2.5))
    shown = ax.imshow(counts, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def temperature_effect(similarities, temperatures=(1.0, 0.3, 0.1, 0.07, 0.03, 0.01)):
    """How dividing by a temperature sharpens the softmax of one row of similarities."""
    row = torch.as_tensor(_numbers(similarities, "similarities", 1, "one row of similarities "
                                   "[M], e.g. [0.30, 0.25, 0.20]"), dtype=torch.float32)
    scales = _numbers(temperatures, "temperatures", 1, "a list of temperatures, e.g. (1.0, 0.1)")
    if not (np.isfinite(scales) & (scales > 0)).all():
        raise ValueError(f"temperatures must be finite numbers above 0; got {list(temperatures)}.")
    fig, axes = plt.subplots(1, len(temperatures), figsize=(2.2 * len(temperatures), 2.6),
                             sharey=True)
    for ax, temperature in zip(axes, temperatures):
        probabilities = torch.softmax(row / temperature, dim=0).numpy()
        ax.bar(range(len(row)), probabilities, color="tab:blue")
        ax.set_title(f"T = {temperature} (scale {1 / temperature:.0f})", fontsize=9)
        ax.set_xticks(range(len(row)))
        ax.set_xlabel("caption")
    axes[0].set_ylabel("probability")
    axes[0].set_ylim(0, 1)
    fig.tight_layout()
    return fig


def search_results(index, hits, queries=None, size: float = 2.0, width: int = 24):
    """A grid of search results, one row per query, each titled with its score and caption.

    ``hits`` is what ``index.search`` returned (one list, or one list per query). Pass the
    ``queries`` (texts or PIL images) to show each one in a first column. Captions wrap
    between words, so "a small green triangle" is never cut to "a small green tri".
    """
    rows = [hits] if hits and not isinstance(hits[0], (list, tuple)) else hits  # one query
    if not rows or not all(rows):
        raise ValueError("Nothing to show: pass the hits returned by index.search(...).")
    first = 0 if queries is None else 1
    ncols = first + max(len(row) for row in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols, size * 1.4 * len(rows)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, row in enumerate(rows):
        if queries is not None:
            query = queries[r]
            picture = query if hasattr(query, "convert") else None
            _tile(axes[r][0], picture, "query" if picture else f"query:\n{_wrap(query, width)}")
        for ax, hit in zip(axes[r][first:], row):
            label = hit.caption or Path(hit.path or "").name
            _tile(ax, index.image(hit.id), f"{hit.score:.3f}\n{_wrap(label, width)}")
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int) -> str:
    return textwrap.fill(str(text), width, break_long_words=False, break_on_hyphens=False)


def _tile(ax, image, title: str) -> None:
    """One cell of a grid: the image (pixels kept sharp) or a note that it is missing."""
    if image is None and not title.startswith("query"):
        ax.text(0.5, 0.5, "image not\navailable", ha="center", va="center", fontsize=8)
    elif image is not None:
        ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=8)


def image_grid(images, titles=None, columns: int = 8, size: float = 1.35, title: str = "",
               fontsize: float = 7.5):
    """uint8 pictures [N, 3, H, W] in a grid of ``size``-inch tiles, each with an optional title.

    The one picture grid of the lessons (ShapeWorld's ``show``, the generators' samples).
    Pixels stay sharp (no smoothing), so a 32 px picture shows its real pixels.
    """
    _check_pictures(images)
    columns = checks.integer(columns, "columns", minimum=1)
    _labels(titles, "titles", len(images), "picture", at_least=True)  # extra titles: unused
    n = len(images)
    columns = max(1, min(columns, n))
    rows = (n + columns - 1) // columns
    title_lines = max((t.count("\n") + 1 for t in titles), default=1) if titles else 1
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(size * columns, (size + 0.2 + 0.15 * title_lines) * rows))
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        ax.imshow(_numpy(images[i]).transpose(1, 2, 0).astype(np.uint8), interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=fontsize, wrap=True)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _check_pictures(images) -> None:
    """uint8-valued pictures [N, 3, H, W] (a tensor or array, or a list of [3, H, W]).

    Why: pictures in [0, 1] (floats) are cast to uint8 for display and show all black;
    [H, W, 3] pictures come out as stripes or fail inside matplotlib.
    """
    if isinstance(images, str) or not hasattr(images, "__len__") or not len(images):
        raise ValueError(f"images must be uint8 pictures [N, 3, H, W] with N >= 1, e.g. "
                         f"ShapeWorld(...).images; got {_shown(images)}.")
    layouts = images if isinstance(images, list | tuple) else [images[0]]
    for picture in layouts:
        if not isinstance(picture, torch.Tensor | np.ndarray) or picture.ndim != 3 \
                or picture.shape[0] != 3:
            raise ValueError(f"images must be pictures [N, 3, H, W] (channels first); one is "
                             f"{_shown(picture)}. A PIL image becomes one with "
                             f"mmlearn.images.to_uint8_tensor(image).")
        if picture.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                             np.float16, np.float32, np.float64) and 0 < float(picture.max()) <= 1:
            raise ValueError("images look like pictures in [0, 1] (floats): shown as uint8 they "
                             "would all be black. Use mmlearn.images.float_to_uint8(pictures).")


def causal_mask(mask, title: str = "causal mask"):
    """A causal mask [n, n] as a picture: row i is a position, dark cells the positions j it
    may attend to. Ticks are whole positions (0, 1, 2, ...): there is nothing in between."""
    shown = _numbers(mask, "mask", 2, "a square mask [n, n], e.g. dalle.causal_mask(14)")
    if shown.shape[0] != shown.shape[1]:
        raise ValueError(f"mask must be square [n, n]: one row and one column per position; "
                         f"got shape {shown.shape}.")
    fig, ax = plt.subplots(figsize=(3.4, 3.4))
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=title, xlabel="attends to position j", ylabel="position i")
    fig.tight_layout()
    return fig


def token_grid(image, tokens, decoded):
    """An image, its 8x8 grid of VQGAN token ids, and what the decoder makes of those ids."""
    for name, picture in (("image", image), ("decoded", decoded)):
        if not isinstance(picture, torch.Tensor) or picture.ndim != 3 or picture.shape[0] != 3:
            raise ValueError(f"{name} must be one uint8 picture [3, H, W] (a tensor), e.g. "
                             f"images[0]; got {_shown(picture)}.")
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
        raise ValueError(f"tokens must be one grid of token ids [h, w] (a tensor), e.g. "
                         f"tokens[0] of vqgan.encode(...)[1]; got {_shown(tokens)}.")
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(10, 3.4),
                                              gridspec_kw={"width_ratios": [1, 1.3, 1]})
    left.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
    left.set_title("image (32×32 px)", fontsize=9)
    grid = tokens.numpy()
    # Each cell in the mean colour of the patch it stands for: an id has no colour of its own.
    patches = torch.nn.functional.adaptive_avg_pool2d(image.float()[None], grid.shape)[0]
    shade = patches.permute(1, 2, 0).numpy() / 255
    middle.imshow(shade, interpolation="nearest")
    for (r, c), value in np.ndenumerate(grid):
        dark = shade[r, c] @ np.array([0.299, 0.587, 0.114]) < 0.5
        middle.text(c, r, str(value), ha="center", va="center", fontsize=6.5,
                    color="white" if dark else "black")
    middle.set_title("64 token ids (0–255), each on its patch's mean colour", fontsize=9)
    right.imshow(decoded.permute(1, 2, 0).numpy(), interpolation="nearest")
    right.set_title("decoded from the ids", fontsize=9)
    for ax in (left, middle, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def token_fill_in(image, side: int = 8, steps=(0, 8, 24, 48, 64), title: str = ""):
    """One sampled picture as it fills in, token by token, in reading order.

    ``image`` is the finished uint8 picture [3, H, W] decoded from a ``side`` x ``side``
    grid of tokens. The panel for step t shows the patches of the first t tokens (row by
    row, left to right) as they are in the finished picture, the rest grey, and outlines
    in red the token drawn next.
    """
    _check_pictures([image])
    side = checks.integer(side, "side", minimum=1)
    height, width = image.shape[1:]
    if height % side or width % side:
        raise ValueError(f"side must divide the picture into whole patches: {side} does not "
                         f"divide {height}×{width} px.")
    if isinstance(steps, str) or not hasattr(steps, "__len__") or not len(steps):
        raise TypeError(f"steps must be a list of token counts such as (0, 8, 24, 48, 64); "
                        f"got {_shown(steps)}.")
    steps = [checks.integer(t, "each step", minimum=0) for t in steps]
    if max(steps) > side * side:
        raise ValueError(f"steps run from 0 to {side * side} (the tokens of a {side}×{side} "
                         f"grid); got {max(steps)}.")
    picture = _numpy(image).transpose(1, 2, 0).astype(np.uint8)
    patch_h, patch_w = height // side, width // side
    fig, axes = plt.subplots(1, len(steps), squeeze=False, figsize=(1.9 * len(steps), 2.3))
    for ax, step in zip(axes[0], steps):
        shown = np.full_like(picture, 128)  # grey: not drawn yet
        for token in range(step):
            r, c = divmod(token, side)
            rows = slice(r * patch_h, (r + 1) * patch_h)
            cols = slice(c * patch_w, (c + 1) * patch_w)
            shown[rows, cols] = picture[rows, cols]
        ax.imshow(shown, interpolation="nearest")
        if step < side * side:
            r, c = divmod(step, side)
            ax.add_patch(plt.Rectangle((c * patch_w - 0.5, r * patch_h - 0.5), patch_w, patch_h,
                                       fill=False, ec="red", lw=1.5))
        ax.set_title(f"{step} of {side * side} tokens", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
