"""Diagrams of how the models work, drawn by the course from boxes and arrows (matplotlib).

The rule between the course's two drawing modules: ``diagrams`` draws how a model
works; ``mmlearn.viz`` plots data a lesson computed (matrices, curves, picture grids).

- ``clip_architecture``: two encoders, N image and N text vectors, the N x N matrix (01).
- ``dalle1_token_stream``: DALL-E 1 reads a caption and an image as one sequence of tokens
  and predicts each next token; the tiny DALL-E does the same, smaller (05).
- ``unclip_pipeline``: DALL-E 2 (unCLIP): CLIP text embedding -> prior -> CLIP image
  embedding -> diffusion decoder -> two upsamplers (05, 06).
- ``two_ways_to_generate``: VQGAN+CLIP optimises one image at a time; DALL-E runs one
  trained model forward and lets CLIP pick among its samples (04, 05).
- ``vqgan_tokenizer``: encoder -> continuous grid -> nearest codebook entry -> token grid
  -> decoder, with the straight-through path of the gradient past the quantiser (04).

Every function returns a matplotlib Figure, drawn here, not copied from papers.
"""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from mmlearn import checks

TEXT_COLOR, IMAGE_COLOR, MODEL_COLOR, CLIP_COLOR = "#b9dfb9", "#f9cfa8", "#c9d6f0", "#e6d0ef"


def _box(ax, x, y, w, h, text, color, fontsize=9, style="round,pad=0.02"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, fc=color, ec="black", lw=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, style="-|>", color="black", curve=0.0, lw=1.0):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=color,
                                 lw=lw, connectionstyle=f"arc3,rad={curve}"))


def _canvas(width: float, height: float, size: tuple[float, float]):
    fig, ax = plt.subplots(figsize=size)
    ax.set(xlim=(0, width), ylim=(0, height))
    ax.axis("off")
    return fig, ax


def dalle1_token_stream(words: tuple[str, ...] = ("a", "big", "blue", "triangle"),
                        text_length: int = 6, image_shown: int = 7):
    """Caption tokens, then image tokens, in one row; the transformer predicts each next one.

    Bottom row: the input sequence (``text_length`` text positions, words then padding,
    then the first ``image_shown`` image tokens of the flattened grid). Top row: what
    each position predicts, the token after it. Underneath, the sizes of the tiny DALL-E
    and of DALL-E 1.
    """
    if isinstance(words, str) or not all(isinstance(word, str) for word in words):
        raise ValueError(f"words must be a list or tuple of words, such as ('a', 'big', 'blue', "
                         f"'triangle'); got {words!r}.")
    checks.integer(text_length, "text_length", minimum=max(1, len(words)), maximum=6)  # fits
    checks.integer(image_shown, "image_shown", minimum=1, maximum=8)
    fig, ax = _canvas(16, 8, (12, 6))
    cell, bottom, top = 1.0, 2.3, 5.9
    labels = [*words, *["<pad>"] * (text_length - len(words))][:text_length]
    labels += [f"img{k}" for k in range(image_shown + 1)]
    n = text_length + image_shown
    for i in range(n):
        x = 0.3 + i * cell
        _box(ax, x, bottom, cell - 0.12, 0.7, labels[i],
             TEXT_COLOR if i < text_length else IMAGE_COLOR, fontsize=7)
        _arrow(ax, (x + 0.44, bottom + 0.75), (x + 0.44, bottom + 1.35), lw=0.7)
        target = labels[i + 1]
        if target != "<pad>":  # padding is never a target
            _box(ax, x, top, cell - 0.12, 0.7, target,
                 TEXT_COLOR if i + 1 < text_length else IMAGE_COLOR, fontsize=7)
            _arrow(ax, (x + 0.44, top - 0.6), (x + 0.44, top - 0.05), lw=0.7)
    _box(ax, 0.3, bottom + 1.4, n * cell - 0.12, 1.5,
         "decoder-only transformer\ncausal self-attention: each position sees itself and "
         "the positions before it", MODEL_COLOR)
    right = 0.3 + n * cell
    ax.text(right, bottom + 0.35, " … img62", fontsize=9, va="center")
    ax.text(right, top + 0.35, " … img63", fontsize=9, va="center")
    ax.text(0.3, top + 1.0, "predicted next tokens (targets): text weighs 1/8 of the loss, "
            "image 7/8", fontsize=9)
    ax.text(0.3 + text_length * cell / 2, bottom - 0.2, "text tokens (words, padded)",
            ha="center", va="top", fontsize=9)
    ax.text(0.3 + (text_length + image_shown / 2) * cell, bottom - 0.2,
            "image tokens: VQGAN codes, row by row", ha="center", va="top", fontsize=9)
    grid_x, grid_y, g = 14.0, 4.6, 0.24  # the 8x8 grid the image tokens come from
    for r in range(8):
        for c in range(8):
            ax.add_patch(plt.Rectangle((grid_x + c * g, grid_y - r * g), g, g, ec="white",
                                       fc=IMAGE_COLOR if r == 0 else "#f3e3d3"))
    ax.text(grid_x + 4 * g, grid_y + 0.45, "image → 8×8\ntoken grid", ha="center",
            fontsize=8.5)
    ax.text(0.3, 0.9, "tiny DALL-E:  12 text + 8×8 = 64 image tokens = 76;  256 codes "
            "(course VQGAN);  1.3 M parameters", fontsize=9.5)
    ax.text(0.3, 0.3, "DALL-E 1:  256 text (BPE) + 32×32 = 1024 image tokens = 1280;  "
            "8192 codes (dVAE);  12 B parameters", fontsize=9.5)
    fig.tight_layout()
    return fig


def unclip_pipeline():
    """DALL-E 2 (unCLIP, Ramesh et al. 2022): the path from a caption to a 1024 px image."""
    fig, ax = _canvas(17, 6, (13, 4.6))
    y, h = 2.6, 1.3
    steps = [
        (0.1, 1.7, "caption\n\"a corgi\nplaying a\ntrumpet\"", TEXT_COLOR),
        (2.3, 1.8, "CLIP\ntext encoder\n(frozen)", CLIP_COLOR),
        (4.6, 1.6, "CLIP text\nembedding", CLIP_COLOR),
        (6.7, 1.9, "prior\n(diffusion;\nalso tried:\nautoregressive)", MODEL_COLOR),
        (9.1, 1.6, "CLIP image\nembedding", CLIP_COLOR),
        (11.2, 1.9, "decoder\n(diffusion,\n3.5 B)", MODEL_COLOR),
        (13.6, 1.3, "64×64\nimage", IMAGE_COLOR),
    ]
    for x, w, text, color in steps:
        _box(ax, x, y, w, h, text, color, fontsize=8.5)
    for (x1, w1, *_), (x2, *_rest) in zip(steps, steps[1:]):
        _arrow(ax, (x1 + w1 + 0.05, y + h / 2), (x2 - 0.05, y + h / 2))
    _box(ax, 15.3, 4.3, 1.5, 0.9, "1024×1024", IMAGE_COLOR, fontsize=8.5)
    _box(ax, 15.3, 2.8, 1.5, 0.9, "256×256", IMAGE_COLOR, fontsize=8.5)
    _arrow(ax, (14.95, y + h / 2), (15.25, 3.25))
    _arrow(ax, (16.05, 3.75), (16.05, 4.25))
    ax.text(15.1, 2.3, "two diffusion\nupsamplers\n64→256→1024", fontsize=8, va="top")
    _arrow(ax, (0.95, y + h + 0.05), (12.15, y + h + 0.05), color="#7a5a9a", curve=-0.2)
    _arrow(ax, (0.95, y + h + 0.05), (7.65, y + h + 0.05), color="#7a5a9a", curve=-0.25)
    ax.text(6.5, 5.55, "the prior and the decoder may also read the caption itself",
            ha="center", fontsize=8.5, color="#7a5a9a")
    ax.text(0.1, 1.6, "Training: CLIP first (image–caption pairs); the prior learns to turn a "
            "caption's CLIP text embedding into the CLIP image embedding of its picture;",
            fontsize=8.5)
    ax.text(0.1, 1.1, "the decoder learns to invert CLIP's image encoder: embedding → "
            "picture. Generating = caption → prior → decoder → upsamplers.", fontsize=8.5)
    ax.text(0.1, 0.45, "Compare DALL-E 1: one transformer writes image tokens; CLIP is used "
            "only afterwards, to rerank samples.", fontsize=8.5, style="italic")
    fig.tight_layout()
    return fig


def two_ways_to_generate():
    """VQGAN+CLIP (optimise each image) next to DALL-E (sample a trained model, rerank)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 3.4))
    for ax in (left, right):
        ax.set(xlim=(0, 10), ylim=(0, 4.8))
        ax.axis("off")
    left.set_title("VQGAN+CLIP (lesson 04): optimisation per image", fontsize=10)
    _box(left, 0.2, 2.6, 1.8, 1.2, "latent grid z\n(the only thing\nthat changes)", "#eeeeee",
         fontsize=8)
    _box(left, 2.8, 2.6, 1.8, 1.2, "VQGAN\ndecoder\n(frozen)", IMAGE_COLOR, fontsize=8)
    _box(left, 5.4, 2.6, 1.8, 1.2, "CLIP image\nencoder\n(frozen)", CLIP_COLOR, fontsize=8)
    _box(left, 8.0, 2.6, 1.8, 1.2, "similarity to\nthe prompt's\nCLIP vector", CLIP_COLOR,
         fontsize=8)
    for x in (2.05, 4.65, 7.25):
        _arrow(left, (x, 3.2), (x + 0.7, 3.2))
    _arrow(left, (8.9, 2.55), (1.1, 2.55), color="#c0392b", curve=-0.35, lw=1.4)
    left.text(5.0, 0.55, "gradient step on z, repeated hundreds of times\n"
              "new prompt = new optimisation; nothing is learned for the next one",
              ha="center", fontsize=8.5, color="#c0392b")

    right.set_title("DALL-E 1 (this lesson): one trained model, run forward", fontsize=10)
    _box(right, 0.2, 2.6, 1.6, 1.2, "prompt\ntokens", TEXT_COLOR, fontsize=8)
    _box(right, 2.4, 2.6, 2.0, 1.2, "transformer\n(trained once)\nsamples N token\ngrids",
         MODEL_COLOR, fontsize=8)
    _box(right, 5.0, 2.6, 1.8, 1.2, "VQGAN / dVAE\ndecoder:\nN images", IMAGE_COLOR,
         fontsize=8)
    _box(right, 7.4, 2.6, 2.4, 1.2, "CLIP reranks:\nkeep the best k\nof the N", CLIP_COLOR,
         fontsize=8)
    for x1, x2 in ((1.85, 2.35), (4.45, 4.95), (6.85, 7.35)):
        _arrow(right, (x1, 3.2), (x2, 3.2))
    right.text(5.0, 0.55, "no gradients at generation time: one pass per token\n"
               "the cost was paid once, in training; CLIP only chooses",
               ha="center", fontsize=8.5, color="#2e5c9a")
    fig.tight_layout()
    return fig


def clip_architecture(n: int = 4):
    """CLIP in one picture: two encoders, N image and N text vectors, the N x N matrix."""
    checks.integer(n, "n", minimum=1, maximum=6)  # what fits in the diagram
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.set(xlim=(0, 10), ylim=(0, 6.2))
    ax.axis("off")
    _box(ax, 0.1, 4.9, 1.6, 0.9, f"{n} captions\n\"a red circle\"…", "#d4e8d4")
    _box(ax, 0.1, 0.9, 1.6, 0.9, f"{n} images", "#fde2c8")
    _box(ax, 2.3, 4.9, 1.6, 0.9, "text\nencoder", "#a8d5a8")
    _box(ax, 2.3, 0.9, 1.6, 0.9, "image\nencoder", "#f7c59f")
    _arrow(ax, (1.75, 5.35), (2.28, 5.35))
    _arrow(ax, (1.75, 1.35), (2.28, 1.35))
    cell = 0.55
    left, top = 6.0, 4.2
    for k in range(n):  # image vectors down the side, text vectors along the top
        _box(ax, 4.9, top - (k + 1) * cell + 0.05, 0.8, cell - 0.1, f"I{k + 1}", "#f7c59f")
        _box(ax, left + k * cell + 0.03, top + 0.15, cell - 0.06, 0.55, f"T{k + 1}", "#a8d5a8")
        for j in range(n):
            diagonal = j == k
            ax.add_patch(plt.Rectangle((left + j * cell, top - (k + 1) * cell), cell, cell,
                                       fc="#4c72b0" if diagonal else "#e8e8f0", ec="white"))
            ax.text(left + (j + 0.5) * cell, top - (k + 0.5) * cell, f"I{k + 1}·T{j + 1}",
                    ha="center", va="center", fontsize=6,
                    color="white" if diagonal else "black")
    _arrow(ax, (3.95, 5.35), (left - 0.05, top + 0.45))
    _arrow(ax, (3.95, 1.35), (5.3, top - n * cell - 0.02))
    ax.text(left + n * cell / 2, top - n * cell - 0.45,
            "cosine similarities × learned scale\nmatching pairs (diagonal) pushed up,\n"
            f"the other {n * n - n} pushed down", ha="center", va="top", fontsize=9)
    fig.tight_layout()
    return fig


def vqgan_tokenizer(side: int = 32, grid: int = 8, codes: int = 256, dim: int = 16):
    """The VQGAN as a tokenizer, and the straight-through path of its gradient (04).

    The lesson's text names the parts; this shows them in order and marks what words
    alone make hard to picture: going forward, the decoder gets the nearest codebook
    entries; going backward, their gradient is copied past the argmin, which has none,
    to the encoder's grid. That one trick trains the encoder and lets VQGAN+CLIP steer
    the grid. The sizes only label the picture (the course VQGAN's: 32 px, 8x8 tokens).
    """
    checks.integer(side, "side", minimum=1)
    checks.integer(grid, "grid", minimum=1, maximum=side)
    checks.integer(codes, "codes", minimum=1)
    checks.integer(dim, "dim", minimum=1)
    fig, ax = _canvas(16.4, 5.2, (13, 4.1))
    y, h, cell = 2.0, 1.4, 1.4 / 8

    def lattice(x, shade):  # an 8x8 picture of a latent grid (always 8 cells a side)
        for r in range(8):
            for c in range(8):
                ax.add_patch(plt.Rectangle((x + c * cell, y + h - (r + 1) * cell), cell, cell,
                                           fc=shade(r, c), ec="white", lw=0.4))

    _box(ax, 0.1, y, 1.5, h, f"picture x\n{side}×{side}", IMAGE_COLOR)
    _box(ax, 2.1, y, 1.5, h, "encoder E\n(CNN)", MODEL_COLOR)
    lattice(4.1, lambda r, c: str(0.45 + 0.4 * ((r * 5 + c * 3) % 7) / 7))  # continuous values
    ax.text(4.8, y - 0.15, f"z_e = E(x): {grid}×{grid}\nvectors of {dim} numbers",
            ha="center", va="top", fontsize=9)
    _box(ax, 6.1, y, 2.2, h, "quantise: each\nvector → nearest\ncodebook entry", "#eeeeee")
    palette = [IMAGE_COLOR, MODEL_COLOR, TEXT_COLOR, CLIP_COLOR, "#f3e3d3", "#dddddd"]
    for k in range(12):  # the codebook, above the quantiser
        ax.add_patch(plt.Rectangle((6.0 + k * 0.2, 4.3), 0.2, 0.4, fc=palette[k % 6],
                                   ec="white", lw=0.4))
    ax.text(7.2, 4.85, f"codebook: {codes} learned vectors", ha="center", fontsize=9)
    _arrow(ax, (7.2, 4.25), (7.2, y + h + 0.05))
    lattice(8.8, lambda r, c: palette[(r * 3 + c) % 6 if (r + c) % 3 else 5])
    ax.text(9.5, y - 0.15, f"token grid: {grid}×{grid} ids (0 to {codes - 1})\n"
            "z_q = codebook[ids]", ha="center", va="top", fontsize=9)
    _box(ax, 10.9, y, 1.7, h, "decoder D\n(CNN)", MODEL_COLOR)
    _box(ax, 13.1, y, 1.6, h, f"rebuilt x̂\n{side}×{side}", IMAGE_COLOR)
    for x1, x2 in ((1.65, 2.05), (3.65, 4.05), (5.55, 6.05), (8.35, 8.75), (10.25, 10.85),
                   (12.65, 13.05)):
        _arrow(ax, (x1, y + h / 2), (x2, y + h / 2))
    ax.text(11.0, y + h + 0.45, "forward: the decoder gets z_q, the nearest entries",
            ha="center", fontsize=9)
    red = "#c0392b"
    _arrow(ax, (11.75, y - 0.05), (5.4, y - 0.75), color=red, curve=-0.2, lw=1.4)
    ax.text(8.2, 0.1, "backward (straight-through): the gradient of the loss at z_q is copied "
            "to z_e unchanged,\npast the argmin, which has no gradient of its own. In code: "
            "z_e + (z_q − z_e).detach()", ha="center", fontsize=9, color=red)
    ax.text(14.85, y + h / 2, "→ loss", fontsize=9, va="center")
    fig.tight_layout()
    return fig
