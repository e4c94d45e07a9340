"""ShapeWorld: the course's own little world of captioned images.

Real image-caption data (CLIP used 400 million web pairs) is far too big for a CPU.
ShapeWorld draws coloured shapes on a dark canvas and writes a caption for each
picture, so that every idea of the course - contrastive training, zero-shot
classification, search, generation - can be tried in seconds:

    >>> from mmlearn import shapes
    >>> data = shapes.ShapeWorld(16)          # 16 training images with captions
    >>> data.grid()                           # look at them (a PIL image)
    >>> image, caption, label = data[0]       # one item: PIL image, str, class index

Everything is procedural and seeded: the same ``seed`` gives the same images and
captions byte for byte, and item ``i`` depends only on ``(seed, split, i)``.

A fixed set of colour x shape combinations, ``HELD_OUT``, never appears in the
``"train"`` split. A model trained there and tested on ``"test_unseen"`` must
*compose* a colour it knows with a shape it knows - "zero-shot on unseen
combinations", the thing CLIP-style models are praised for.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from mmlearn import checks

# ---------------------------------------------------------------------------------------
# The vocabulary of the world
# ---------------------------------------------------------------------------------------

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (225, 40, 40),
    "green": (40, 175, 60),
    "blue": (45, 95, 235),
    "yellow": (240, 215, 40),
    "purple": (155, 60, 205),
    "orange": (250, 135, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "diamond")
SIZES: tuple[str, ...] = ("small", "big")

# Object radius as a fraction of the image side (before a little random jitter).
SIZE_RADIUS = {"small": 0.14, "big": 0.22}
# Centre of each position as (x, y) fractions of the image side; y grows downwards.
POSITIONS: dict[str, tuple[float, float]] = {
    "left": (0.25, 0.5),
    "right": (0.75, 0.5),
    "top": (0.5, 0.25),
    "bottom": (0.5, 0.75),
    "center": (0.5, 0.5),
}
POSITION_PHRASES = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}

# Colour x shape combinations that the "train" split never shows: 7 of 36 (about 1/5),
# every colour and every shape held out at least once.
HELD_OUT: frozenset[tuple[str, str]] = frozenset({
    ("red", "triangle"),
    ("green", "star"),
    ("blue", "circle"),
    ("yellow", "square"),
    ("purple", "cross"),
    ("orange", "diamond"),
    ("green", "circle"),
})

CLASSES: list[str] = [f"{c} {s}" for c in COLORS for s in SHAPES]
SEEN_CLASSES: list[str] = [f"{c} {s}" for c in COLORS for s in SHAPES if (c, s) not in HELD_OUT]
UNSEEN_CLASSES: list[str] = [f"{c} {s}" for c in COLORS for s in SHAPES if (c, s) in HELD_OUT]

SPLITS: tuple[str, ...] = ("train", "test_seen", "test_unseen", "all")
# Each split draws from its own random stream, so test images are never training images.
_SPLIT_STREAM = {"train": 0, "test_seen": 1, "test_unseen": 2, "all": 3}

# Caption templates. The first four describe one object; multi-object captions join
# object phrases with "and".
TEMPLATES: tuple[str, ...] = (
    "a {color} {shape}",
    "a {size} {color} {shape}",
    "a {color} {shape} {where}",
    "a {size} {color} {shape} {where}",
    "a picture of a {color} {shape}",
    "a photo of a {size} {color} {shape}",
    "there is a {color} {shape} {where}",
)
_OBJECT_PHRASES = TEMPLATES[:4]

MIN_RESOLUTION = 24  # below this a small star is under 7 px across: no longer a star
MAX_RESOLUTION = 1024
BACKGROUND_LEVELS = (10, 50)  # dark grey background, level drawn per image
COLOR_JITTER = 15  # +- per channel, so that "red" is a range, not one value


def _check(value: str, allowed, what: str) -> None:
    if value not in allowed:
        raise ValueError(f"Unknown {what} {value!r}; allowed: {', '.join(allowed)}.")


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, (int, np.integer)) or resolution < MIN_RESOLUTION:
        raise ValueError(f"resolution must be an integer >= {MIN_RESOLUTION} px (got "
                         f"{resolution!r}): smaller images are too small to draw the shapes.")
    if resolution > MAX_RESOLUTION:
        raise ValueError(f"resolution must be at most {MAX_RESOLUTION} px (got {resolution}): "
                         f"ShapeWorld's flat shapes gain nothing from more pixels, and one "
                         f"picture of {resolution} px would take {3 * resolution**2 / 2**30:.1f} "
                         f"GiB.")


def class_name(color: str, shape: str) -> str:
    """The class name of a colour x shape combination, e.g. ``"red circle"``."""
    _check(color, COLORS, "color")
    _check(shape, SHAPES, "shape")
    return f"{color} {shape}"


def split_combos(split: str) -> list[tuple[str, str]]:
    """The (colour, shape) combinations that objects of a split are drawn from."""
    _check(split, SPLITS, "split")
    every = [(c, s) for c in COLORS for s in SHAPES]
    if split == "train" or split == "test_seen":
        return [combo for combo in every if combo not in HELD_OUT]
    if split == "test_unseen":
        return [combo for combo in every if combo in HELD_OUT]
    return every


# ---------------------------------------------------------------------------------------
# Drawing: signed distances give smooth (anti-aliased) edges at no extra cost
# ---------------------------------------------------------------------------------------

def _signed_distance(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Distance in pixels from each point to the shape's edge: < 0 inside, > 0 outside.

    ``dx, dy`` are pixel offsets from the shape's centre (y down), ``r`` its radius.
    """
    if shape == "circle":
        return np.hypot(dx, dy) - r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * r
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy) - 1.1 * r) / np.sqrt(2)
    if shape == "cross":
        arm, half_width = r, 0.36 * r
        horizontal = np.maximum(np.abs(dx) - arm, np.abs(dy) - half_width)
        vertical = np.maximum(np.abs(dx) - half_width, np.abs(dy) - arm)
        return np.minimum(horizontal, vertical)
    if shape == "triangle":
        # Equilateral, pointing up; inside = on the inner side of all three edges.
        dy = dy - 0.2 * r  # move the centroid down a little so the triangle looks centred
        r = 1.2 * r
        edges = [(0.0, 1.0), (0.866, -0.5), (-0.866, -0.5)]  # outward normals
        return np.max([nx * dx + ny * dy - r / 2 for nx, ny in edges], axis=0)
    if shape == "star":
        # Five points: fold every point into the 36-degree wedge between an outer tip
        # (angle 0, distance R) and an inner corner (angle 36, distance 0.45 R); inside
        # is the origin's side of the line joining them.
        outer, inner, wedge = 1.15 * r, 0.5 * r, np.pi / 5
        angle = np.arctan2(dx, -dy)  # 0 = straight up
        folded = np.abs((angle + wedge) % (2 * wedge) - wedge)
        rho = np.hypot(dx, dy)
        px, py = rho * np.cos(folded), rho * np.sin(folded)
        ax, ay = outer, 0.0
        bx, by = inner * np.cos(wedge), inner * np.sin(wedge)
        nx, ny = by - ay, ax - bx  # normal of the edge A->B, pointing away from the centre
        norm = np.hypot(nx, ny)
        return ((px - ax) * nx + (py - ay) * ny) / norm
    raise ValueError(f"Unknown shape {shape!r}; allowed: {', '.join(SHAPES)}.")


def render(objects: list[dict], resolution: int = 32,
           background: int = 30) -> np.ndarray:
    """Draw objects on a dark canvas; returns a ``(resolution, resolution, 3)`` uint8 array.

    Each object is a dict with ``shape``, ``rgb``, ``x``, ``y``, ``radius`` (pixels).
    Objects are painted in order, so later ones lie on top.
    """
    _check_resolution(resolution)
    grid = np.arange(resolution, dtype=np.float32) + 0.5  # pixel centres
    canvas = np.full((resolution, resolution, 3), float(background), dtype=np.float32)
    for obj in objects:
        dx, dy = grid[None, :] - obj["x"], grid[:, None] - obj["y"]
        distance = _signed_distance(obj["shape"], dx, dy, obj["radius"])
        alpha = np.clip(0.5 - distance, 0.0, 1.0)[..., None]  # 1 inside, 0 outside
        canvas = canvas * (1 - alpha) + np.asarray(obj["rgb"], np.float32) * alpha
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def draw(color: str, shape: str, size: str = "big", position: str = "center",
         resolution: int = 32) -> Image.Image:
    """One shape, exactly as described and without jitter, as a PIL image."""
    _check(color, COLORS, "color")
    _check(shape, SHAPES, "shape")
    _check(size, SIZES, "size")
    _check(position, POSITIONS, "position")
    _check_resolution(resolution)
    fx, fy = POSITIONS[position]
    obj = {"shape": shape, "rgb": COLORS[color], "x": fx * resolution, "y": fy * resolution,
           "radius": SIZE_RADIUS[size] * resolution}
    return Image.fromarray(render([obj], resolution))


# ---------------------------------------------------------------------------------------
# Scenes and captions
# ---------------------------------------------------------------------------------------

def with_articles(text: str) -> str:
    """Fix English articles: ``"a orange circle"`` -> ``"an orange circle"``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string such as 'a orange circle'; got "
                        f"{checks.describe(text)}.")
    words = text.split(" ")
    for i in range(len(words) - 1):
        if words[i] in ("a", "an"):
            words[i] = "an" if words[i + 1][:1] in "aeiou" else "a"
    return " ".join(words)


def _phrase(template: str, obj: dict) -> str:
    return with_articles(template.format(color=obj["color"], shape=obj["shape"],
                                         size=obj["size"], where=POSITION_PHRASES[obj["position"]]))


def caption_for(objects: list[dict], rng: np.random.Generator) -> str:
    """A caption for a scene, from a randomly chosen template.

    One object: any of ``TEMPLATES``. Several: object phrases joined with "and" (main
    object first); the long phrases only for two objects, so captions stay short.
    """
    if len(objects) == 1:
        return _phrase(TEMPLATES[rng.integers(len(TEMPLATES))], objects[0])
    phrases = _OBJECT_PHRASES if len(objects) == 2 else _OBJECT_PHRASES[:2]
    template = phrases[rng.integers(len(phrases))]
    return " and ".join(_phrase(template, obj) for obj in objects)


def parse_caption(caption: str) -> list[dict]:
    """What a caption claims: one dict per object phrase (joined by "and").

    Each dict has ``color``, ``shape`` and ``size`` / ``position`` (None when the
    caption does not say), e.g. "a small red circle" -> ``[{"color": "red",
    "shape": "circle", "size": "small", "position": None}]``.
    """
    claims = []
    for phrase in f" {caption.lower()} ".split(" and "):
        words = phrase.split()
        color = next((w for w in words if w in COLORS), None)
        shape = next((w for w in words if w in SHAPES), None)
        if color is None or shape is None:
            raise ValueError(f"Cannot read {phrase.strip()!r} of caption {caption!r}: each "
                             f"object needs a colour ({', '.join(COLORS)}) and a shape "
                             f"({', '.join(SHAPES)}).")
        size = next((w for w in words if w in SIZES), None)
        position = next((p for p, text in POSITION_PHRASES.items() if f" {text}" in f" {phrase}"),
                        None)
        claims.append({"color": color, "shape": shape, "size": size, "position": position})
    return claims


def caption_fits(caption: str, objects: list[dict]) -> bool:
    """True if every object the caption mentions is in the picture (as described).

    "a red circle" fits a picture of a small red circle on the left - and so does
    "a small red circle on the left". In a training batch such a caption belonging to
    another picture is not really a wrong answer (see ``ShapeWorld.fit_matrix``).
    """
    keys = ("color", "shape", "size", "position")
    return all(any(all(claim[k] is None or claim[k] == obj[k] for k in keys) for obj in objects)
               for claim in parse_caption(caption))


def sample_scene(rng: np.random.Generator, split: str = "train", resolution: int = 32,
                 max_objects: int = 1) -> tuple[list[dict], int]:
    """Random objects for one image, main object first; also the background level."""
    combos = split_combos(split)
    n_objects = int(rng.integers(1, max_objects + 1))
    positions = rng.permutation(list(POSITIONS))[:n_objects]
    objects = []
    for position in positions:
        color, shape = combos[rng.integers(len(combos))]
        size = SIZES[rng.integers(len(SIZES))]
        fx, fy = POSITIONS[str(position)]
        jitter = rng.uniform(-0.04, 0.04, size=3)
        rgb = np.clip(np.array(COLORS[color]) + rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, 3),
                      0, 255)
        objects.append({
            "color": color, "shape": shape, "size": size, "position": str(position),
            "rgb": tuple(int(v) for v in rgb),
            "x": (fx + jitter[0]) * resolution, "y": (fy + jitter[1]) * resolution,
            "radius": SIZE_RADIUS[size] * (1 + jitter[2] * 2) * resolution,
        })
    background = int(rng.integers(BACKGROUND_LEVELS[0], BACKGROUND_LEVELS[1] + 1))
    return objects, background


def make_item(index: int, split: str = "train", seed: int = 0, resolution: int = 32,
              max_objects: int = 1) -> tuple[np.ndarray, str, list[dict]]:
    """Item ``index`` of a split: (uint8 HxWx3 image, caption, objects, main first).

    The random generator is seeded by ``(seed, split, index)`` alone, so an item is the
    same whatever else is generated and in whatever order.
    """
    rng = np.random.default_rng([seed, _SPLIT_STREAM[split], index])
    objects, background = sample_scene(rng, split, resolution, max_objects)
    caption = caption_for(objects, rng)
    # Paint the main object last so that it is never hidden.
    return render(objects[::-1], resolution, background), caption, objects


# ---------------------------------------------------------------------------------------
# The Dataset
# ---------------------------------------------------------------------------------------

class ShapeWorld(torch.utils.data.Dataset):
    """``n`` captioned ShapeWorld images of one split, all drawn up front.

    Items are ``(image, caption, label)``: a PIL image (or ``transform(image)``), its
    caption, and the index in ``CLASSES`` of the main object ("red circle" ...).
    For fast training use the bulk attributes instead of a DataLoader:
    ``images`` (uint8 tensor N x 3 x H x W), ``captions`` (list of str),
    ``labels`` (long tensor N) and ``objects`` (what is in each picture).
    """

    def __init__(self, n: int, split: str = "train", seed: int = 0, resolution: int = 32,
                 max_objects: int = 1, transform=None, max_bytes: int | None = None):
        if not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"n (the number of images) must be a positive integer, got {n!r}.")
        _check(split, SPLITS, "split")
        seed = checks.seed(seed)
        _check_resolution(resolution)
        checks.memory_budget(int(n) * int(resolution) ** 2 * 3,
                             f"ShapeWorld({n}, resolution={resolution})", max_bytes)
        if not isinstance(max_objects, (int, np.integer)) or not 1 <= max_objects <= 3:
            raise ValueError(f"max_objects must be 1, 2 or 3 (got {max_objects!r}).")
        self.split, self.seed, self.resolution = split, seed, resolution
        self.max_objects, self.transform = max_objects, transform
        images = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
        self.captions, self.objects = [], []
        for i in range(n):
            images[i], caption, objects = make_item(i, split, seed, resolution, max_objects)
            self.captions.append(caption)
            self.objects.append(objects)
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2)  # N x 3 x H x W
        self.labels = torch.tensor([CLASSES.index(f"{o[0]['color']} {o[0]['shape']}")
                                    for o in self.objects])
        self._object_codes = _encode([objects for objects in self.objects])
        parsed = {c: parse_caption(c) for c in dict.fromkeys(self.captions)}
        self._claim_codes = _encode([parsed[c] for c in self.captions])

    def __len__(self) -> int:
        return len(self.captions)

    def fit_matrix(self, indices: torch.Tensor | list[int]) -> torch.Tensor:
        """``M[a, b]`` is True when the caption of item ``indices[b]`` fits the picture of
        item ``indices[a]`` (``caption_fits``, computed for a whole batch at once).

        The diagonal is always True; off-diagonal Trues are the captions that CLIP's
        plain loss would wrongly treat as negatives.
        """
        objects = self._object_codes[indices]   # B x slots x 4
        claims = self._claim_codes[indices]      # B x slots x 4
        c = claims[None, :, :, None, :]          # 1 x B x K x 1 x 4
        o = objects[:, None, None, :, :]         # B x 1 x 1 x L x 4
        attribute_ok = (c == _ANY) | (c == o)
        object_ok = attribute_ok.all(-1) & (o[..., 0] != _EMPTY)             # B x B x K x L
        claim_ok = object_ok.any(-1) | (claims[None, :, :, 0] == _EMPTY)     # B x B x K
        return claim_ok.all(-1)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index].permute(1, 2, 0).numpy())
        if self.transform is not None:
            image = self.transform(image)
        return image, self.captions[index], int(self.labels[index])

    def __repr__(self) -> str:
        return (f"ShapeWorld(n={len(self)}, split={self.split!r}, seed={self.seed}, "
                f"resolution={self.resolution}, max_objects={self.max_objects})")

    def grid(self, n: int = 16, columns: int = 8, scale: int = 3) -> Image.Image:
        """The first ``n`` images side by side (enlarged ``scale`` times), as a PIL image."""
        checks.integer(n, "n", minimum=1)
        return image_grid(self.images[:n], columns=columns, scale=scale)

    def show(self, n: int = 8, columns: int = 4):
        """A matplotlib figure of the first ``n`` images with their captions as titles."""
        from mmlearn.viz import image_grid  # matplotlib only when a figure is asked for

        checks.integer(n, "n", minimum=1)
        checks.integer(columns, "columns", minimum=1)
        checks.memory_budget(min(n, len(self)) * 2**20, f"A figure of {n} pictures")
        return image_grid(self.images[:n], self.captions[:n], columns=columns, size=2.6,
                          fontsize=8)


_ANY, _EMPTY = -1, -2  # codes: "caption does not say", "no object in this slot"
_ATTRIBUTES = (("color", list(COLORS)), ("shape", list(SHAPES)), ("size", list(SIZES)),
               ("position", list(POSITIONS)))


def _encode(scenes: list[list[dict]], slots: int = 3) -> torch.Tensor:
    """Objects or claims as integers (N x slots x 4) so that matching is vectorised."""
    codes = torch.full((len(scenes), slots, 4), _EMPTY, dtype=torch.int8)
    for i, scene in enumerate(scenes):
        for k, item in enumerate(scene):
            codes[i, k] = torch.tensor([_ANY if item[name] is None else values.index(item[name])
                                        for name, values in _ATTRIBUTES])
    return codes


def image_grid(images: torch.Tensor, columns: int = 8, scale: int = 3,
               gap: int = 2) -> Image.Image:
    """Paste a batch of uint8 images (N x 3 x H x W) into one PIL grid image."""
    if images.ndim != 4 or images.dtype != torch.uint8:
        raise ValueError("images must be a uint8 tensor of shape N x 3 x H x W "
                         "(e.g. ShapeWorld(...).images).")
    n, _, h, w = images.shape
    columns = max(1, min(checks.integer(columns, "columns", minimum=1), n))
    scale = checks.integer(scale, "scale", minimum=1)
    gap = checks.integer(gap, "gap", minimum=0)
    rows = (n + columns - 1) // columns
    checks.memory_budget(3 * (columns * (w * scale + gap) + gap) * (rows * (h * scale + gap) + gap),
                         f"A grid of {n} pictures enlarged {scale} times")
    sheet = Image.new("RGB", (columns * (w * scale + gap) + gap, rows * (h * scale + gap) + gap),
                      (255, 255, 255))
    for i in range(n):
        tile = Image.fromarray(images[i].permute(1, 2, 0).numpy()).resize(
            (w * scale, h * scale), Image.NEAREST)
        row, col = divmod(i, columns)
        sheet.paste(tile, (gap + col * (w * scale + gap), gap + row * (h * scale + gap)))
    return sheet


def palette(scale: int = 3) -> Image.Image:
    """Every colour x shape class drawn once (rows: colours, columns: shapes).

    Held-out combinations get a black frame, so learners can see which ones the
    training split never shows.
    """
    scale = checks.integer(scale, "scale", minimum=1)
    sheet_side = len(SHAPES) * (32 * scale + 4) + 4
    checks.memory_budget(3 * sheet_side * sheet_side * len(COLORS) // len(SHAPES),
                         f"A palette enlarged {scale} times")
    tiles = torch.stack([torch.from_numpy(np.array(draw(c, s))).permute(2, 0, 1)
                         for c in COLORS for s in SHAPES])
    sheet = image_grid(tiles, columns=len(SHAPES), scale=scale, gap=4)
    pen = ImageDraw.Draw(sheet)
    side = 32 * scale
    for k, (c, s) in enumerate((c, s) for c in COLORS for s in SHAPES):
        if (c, s) in HELD_OUT:
            row, col = divmod(k, len(SHAPES))
            x, y = 4 + col * (side + 4), 4 + row * (side + 4)
            pen.rectangle([x - 2, y - 2, x + side + 1, y + side + 1], outline=(0, 0, 0),
                          width=2)
    return sheet
