"""Tests for mmlearn.search: building, searching, saving and loading an image index.

Most tests use ``ColorEncoder``, a tiny deterministic stand-in for CLIP: an image
becomes a histogram over eight named colours, a text puts weight on the colour
words it contains. So "red" really finds red images, and tests run in milliseconds
without any model. One test at the end uses the real course CLIP on ShapeWorld.
"""

import hashlib
import json
import os
import re
import weakref
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from mmlearn import brute_force, checkpoints, search
from mmlearn.search import (
    Hit,
    ImageIndex,
    IndexFileError,
    ids_with_caption,
    recall_at_k,
)
from mmlearn.viz import search_results

matplotlib.use("Agg")

COLORS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255),
           "yellow": (255, 255, 0), "cyan": (0, 255, 255), "magenta": (255, 0, 255),
           "white": (255, 255, 255), "black": (0, 0, 0)}
PALETTE = np.array(list(COLORS.values()), dtype=np.float32)


class ColorEncoder:
    """16-d vectors: dims 0-7 a colour histogram (images) or colour words (texts),
    dims 8-15 hashed other words, so texts are not trivially one-hot."""

    def __init__(self, name: str = "colour-histogram"):
        self.name = name
        self.batch_sizes: list[int] = []

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        self.batch_sizes.append(len(images))
        rows = []
        for image in images:
            pixels = np.asarray(image.convert("RGB").resize((8, 8)), dtype=np.float32)
            nearest = ((pixels.reshape(-1, 1, 3) - PALETTE) ** 2).sum(-1).argmin(1)
            histogram = np.bincount(nearest, minlength=8).astype(np.float32)
            rows.append(np.concatenate([histogram, np.zeros(8, np.float32)]))
        return torch.nn.functional.normalize(torch.tensor(np.stack(rows)), dim=1)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        rows = torch.zeros(len(texts), 16)
        for row, text in zip(rows, texts, strict=True):
            for word in re.findall(r"[a-z]+", text.lower()):
                if word in COLORS:
                    row[list(COLORS).index(word)] += 1.0
                else:
                    row[8 + hashlib.md5(word.encode()).digest()[0] % 8] += 0.3
        return torch.nn.functional.normalize(rows, dim=1)


def solid(color: str, size: int = 12) -> Image.Image:
    return Image.new("RGB", (size, size), COLORS[color])


def two_color(main: str, other: str) -> Image.Image:
    """Mostly ``main`` with a corner of ``other``: scores vary, no ties."""
    image = solid(main)
    image.paste(COLORS[other], (0, 0, 5, 5))
    return image


class ColorDataset:
    """A ShapeWorld-like dataset: ``[i]`` -> (image, caption, label), made on demand.
    It keeps weak references to the images it made, to check that indexing streams."""

    def __init__(self, n: int):
        self.n = n
        self.made: list[weakref.ref] = []

    def __len__(self):
        return self.n

    def alive(self) -> int:
        """How many of the images this dataset made are still in memory somewhere."""
        return sum(ref() is not None for ref in self.made)

    def __getitem__(self, i):
        names = list(COLORS)
        main, other = names[i % 8], names[(i + 1 + (i // 8) % 7) % 8]  # never main
        image = two_color(main, other)
        self.made.append(weakref.ref(image))
        return image, f"a {main} square", i % 8


@pytest.fixture
def encoder():
    return ColorEncoder()


@pytest.fixture
def index(encoder):
    return ImageIndex.build(encoder, ColorDataset(64), batch_size=16, progress=False)


def test_vectors_are_float16_unit_rows_with_metadata(index):
    assert len(index) == 64 and index.dim == 16
    assert index.vectors.dtype == torch.float16
    norms = index.vectors.float().norm(dim=1)
    assert torch.allclose(norms, torch.ones(64), atol=2e-3)
    assert index.items[9] == {"id": 9, "path": None, "caption": "a green square"}


def test_text_search_finds_the_named_color(index):
    for color in COLORS:
        hits = index.search(f"a {color} square", k=8)
        assert all(hit.caption == f"a {color} square" for hit in hits), color
        scores = [hit.score for hit in hits]
        assert scores == sorted(scores, reverse=True)
    assert isinstance(hits[0], Hit) and str(hits[0]).startswith(f"{hits[0].score:.3f}")


def test_image_search_finds_similar_images_and_itself_first(index):
    query = index.image(21)
    hits = index.search(query, k=5)
    assert hits[0].id == 21 and hits[0].score == pytest.approx(1.0, abs=2e-3)
    assert {hit.caption for hit in hits} == {index.items[21]["caption"]}


def test_several_queries_at_once_equal_one_at_a_time(index):
    queries = ["red", "a blue thing", "yellow yellow", "black"]
    together = index.search(queries, k=3)
    assert len(together) == 4
    for query, hits in zip(queries, together, strict=True):
        alone = index.search(query, k=3)
        assert [h.id for h in hits] == [h.id for h in alone]
        assert [h.score for h in hits] == pytest.approx([h.score for h in alone], abs=1e-6)


def test_topk_matches_a_numpy_reference_on_random_vectors(encoder):
    generator = torch.Generator().manual_seed(0)
    index = ImageIndex(encoder)
    index.add_vectors(torch.randn(5000, 16, generator=generator))
    queries = torch.nn.functional.normalize(torch.randn(7, 16, generator=generator), dim=1)
    scores, ids = index.topk(queries, k=10)
    reference = queries.numpy() @ index.vectors.float().numpy().T
    expected_ids = np.argsort(-reference, axis=1)[:, :10]
    assert (ids.numpy() == expected_ids).all()
    assert np.allclose(scores.numpy(), np.take_along_axis(reference, expected_ids, 1), atol=1e-5)
    # search by vector, 1-d: a single list of hits
    assert [h.id for h in index.search(queries[0], k=3)] == expected_ids[0, :3].tolist()


def test_topk_in_blocks_gives_the_same_answer(encoder, monkeypatch, one_thread):
    index = ImageIndex(encoder)
    index.add_vectors(torch.randn(301, 16, generator=torch.Generator().manual_seed(1)))
    queries = torch.nn.functional.normalize(torch.randn(50, 16), dim=1)
    whole = index.topk(queries, k=4)
    monkeypatch.setattr(search, "QUERIES_PER_BLOCK", 16)  # 16, 16, 16, 2 queries
    monkeypatch.setattr(brute_force, "SCORES_PER_BLOCK", 16 * 37)  # 37 rows per block (last: 5)
    blocked = index.topk(queries, k=4)
    assert torch.equal(whole[1], blocked[1]) and torch.allclose(whole[0], blocked[0])
    monkeypatch.setattr(brute_force, "SCORES_PER_BLOCK", 1)  # blocks of k rows (last: 1 row)
    assert torch.equal(whole[1], index.topk(queries, k=4)[1])


def test_bad_arguments_get_clear_errors(encoder, index):
    with pytest.raises(ValueError, match="empty"):
        ImageIndex(encoder).search("red")
    with pytest.raises(ValueError, match="at least 1"):
        index.search("red", k=0)
    assert len(index.search("red", k=1000)) == 64  # k is capped at the collection size
    with pytest.raises(ValueError, match="all texts"):
        index.search(["red", solid("red")])
    with pytest.raises(ValueError, match=r"\[Q, 16\]"):
        index.topk(torch.randn(2, 8))
    with pytest.raises(ValueError, match="Cannot index"):
        index.add(42)
    with pytest.raises(ValueError, match="2 images but 1 captions"):
        index.add_images([solid("red"), solid("blue")], captions=["red"])


def test_indexing_streams_one_batch_at_a_time(encoder):
    dataset = ColorDataset(200)
    most_alive = []
    encode = encoder.encode_images

    def encode_and_count(images):
        most_alive.append(dataset.alive())
        return encode(images)

    encoder.encode_images = encode_and_count
    index = ImageIndex.build(encoder, dataset, batch_size=32, progress=False)
    assert len(index) == 200
    assert encoder.batch_sizes == [32] * 6 + [8]
    assert max(most_alive) <= 32  # never more than one batch of images in memory


def test_folder_with_bad_files_skips_and_counts_them(tmp_path, encoder):
    for i, color in enumerate(["red", "green", "blue", "red"]):
        solid(color).save(tmp_path / f"{i}_{color}.png")
    Image.new("RGBA", (12, 12), (0, 0, 255, 255)).save(tmp_path / "4_rgba_blue.png")
    Image.new("P", (12, 12)).save(tmp_path / "5_palette.gif")
    (tmp_path / "6_empty.jpg").write_bytes(b"")
    (tmp_path / "7_text.png").write_text("not an image")
    whole = tmp_path / "whole.jpg"
    solid("red", 64).save(whole)
    (tmp_path / "8_truncated.jpg").write_bytes(whole.read_bytes()[:300])
    whole.unlink()
    (tmp_path / "notes.txt").write_text("ignored: not an image extension")

    with pytest.warns(UserWarning) as record:
        index = ImageIndex.build(encoder, tmp_path, batch_size=4, progress=False)
    assert len(index) == 6 and len(index.skipped) == 3
    warned = " ".join(str(w.message) for w in record)
    for bad in ("6_empty.jpg", "7_text.png", "8_truncated.jpg"):
        assert bad in warned and any(p.endswith(bad) for p in index.skipped)
    names = [Path(hit.path).name for hit in index.search("red", k=2)]
    assert sorted(names) == ["0_red.png", "3_red.png"]
    assert index.search("blue", k=2)[1].path.endswith("4_rgba_blue.png")
    assert index.image(0).size == (12, 12)


def test_list_of_paths_and_list_of_images(tmp_path, encoder):
    paths = []
    for color in ("red", "cyan"):
        paths.append(tmp_path / f"{color}.png")
        solid(color).save(paths[-1])
    index = ImageIndex.build(encoder, [str(p) for p in paths], progress=False)
    index.add_images([solid("blue"), solid("green")], captions=["blue", "green"],
                     progress=False)
    assert [item["path"] for item in index.items[:2]] == [str(p) for p in paths]
    assert index.search("blue", k=1)[0].id == 2
    assert index.image(3).getpixel((0, 0)) == COLORS["green"]


def test_save_and_load_round_trip_then_add(tmp_path, encoder, index):
    path = index.save(tmp_path / "colours.npz")
    loaded = ImageIndex.load(path, encoder)
    assert torch.equal(loaded.vectors, index.vectors) and loaded.items == index.items
    assert loaded.encoder_name == "colour-histogram"
    assert [h.id for h in loaded.search("cyan", k=8)] == [h.id for h in index.search("cyan", k=8)]
    assert loaded.image(5) is None  # in-memory images are not saved, only their captions

    loaded.add_images([solid("magenta"), solid("magenta")], captions=["new", "new"],
                      progress=False)
    assert len(loaded) == 66 and loaded.items[65]["id"] == 65
    assert {h.id for h in loaded.search("magenta", k=2)} == {64, 65}
    loaded.save(path)
    assert len(ImageIndex.load(path, encoder)) == 66


def test_vector_only_index_loads_without_encoder(tmp_path, encoder, index):
    loaded = ImageIndex.load(index.save(tmp_path / "i.npz"))
    assert len(loaded.search(index.vectors[3].float(), k=1)) == 1
    with pytest.raises(ValueError, match="colour-histogram"):
        loaded.search("red")


def test_loading_with_another_encoder_is_refused(tmp_path, index):
    path = index.save(tmp_path / "colours.npz")
    with pytest.raises(ValueError, match="colour-histogram.*other-model"):
        ImageIndex.load(path, ColorEncoder(name="other-model"))


class ModelEncoder(ColorEncoder):
    """A ColorEncoder that also has a torch ``model``, as a CLIP does: its weights are what
    the index's fingerprint records (the vectors do not depend on them here)."""

    def __init__(self, name: str = "colour-histogram", seed: int = 0):
        super().__init__(name)
        self.model = torch.nn.Linear(4, 3)
        with torch.no_grad():
            generator = torch.Generator().manual_seed(seed)
            self.model.weight.copy_(torch.randn(3, 4, generator=generator))
            self.model.bias.zero_()


def test_a_model_retrained_under_the_same_name_is_refused(tmp_path):
    """Review item 03-6: the name alone let a retrained model (same name) load the index."""
    built_by = ModelEncoder()
    path = ImageIndex.build(built_by, ColorDataset(16), progress=False).save(tmp_path / "i.npz")
    assert len(ImageIndex.load(path, ModelEncoder())) == 16  # the same weights, another object
    retrained = ModelEncoder(seed=1)  # the same name, other weights
    with pytest.raises(ValueError, match="weights differ"):
        ImageIndex.load(path, retrained)
    # An index loaded without its encoder keeps the record when it is saved again.
    again = ImageIndex.load(path).save(tmp_path / "again.npz")
    with pytest.raises(ValueError, match="weights differ"):
        ImageIndex.load(again, retrained)


def test_the_weights_fingerprint_depends_on_the_weights_only():
    a, b = ModelEncoder(name="a"), ModelEncoder(name="b")
    assert search.weights_fingerprint(a) == search.weights_fingerprint(b)
    assert search.weights_fingerprint(a) != search.weights_fingerprint(ModelEncoder(seed=1))
    assert search.weights_fingerprint(ColorEncoder()) is None  # no model: only the name counts


def test_crash_while_saving_leaves_the_old_file_intact(tmp_path, encoder, index, monkeypatch):
    path = index.save(tmp_path / "colours.npz")
    before = path.read_bytes()
    bigger = ImageIndex.build(encoder, ColorDataset(100), progress=False)

    def write_half_then_crash(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(search.np, "savez", write_half_then_crash)
    with pytest.raises(OSError, match="simulated"):
        bigger.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["colours.npz"]  # no temporary file left behind
    monkeypatch.undo()
    assert len(ImageIndex.load(path, encoder)) == 64


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_detected_not_half_loaded(tmp_path, encoder, index, keep):
    path = index.save(tmp_path / "colours.npz")
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(IndexFileError, match="cut.npz"):
        ImageIndex.load(cut, encoder)


def test_corrupt_vectors_are_detected(tmp_path, encoder, index):
    # Rewrite the archive with a changed vector but the old header (its sha256).
    path = index.save(tmp_path / "colours.npz")
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["vectors"] = arrays["vectors"].copy()
    arrays["vectors"][0, 0] += 1
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(IndexFileError, match="checksum"):
        ImageIndex.load(path, encoder)
    other = tmp_path / "other.npz"
    np.savez(other, vectors=np.zeros((2, 2)))
    with pytest.raises(IndexFileError):
        ImageIndex.load(other, encoder)


@pytest.mark.parametrize("name, content", [("photo.png", b"\x89PNG\r\n\x1a\n..."),
                                           ("notes.txt", b"my notes"),
                                           ("model.safetensors", b"\x08\x00\x00{}"),
                                           ("old.npz", b"PK\x03\x04 someone else's archive")])
def test_saving_never_replaces_a_file_that_is_not_an_index(tmp_path, index, name, content):
    precious = tmp_path / name
    precious.write_bytes(content)
    with pytest.raises(ValueError, match="overwrite=True"):
        index.save(precious)
    assert precious.read_bytes() == content
    index.save(precious, overwrite=True)
    assert len(ImageIndex.load(precious)) == len(index)
    with pytest.raises(TypeError, match="True or False"):
        index.save(precious, overwrite="no")


def test_a_folder_path_is_refused_even_before_it_exists(tmp_path, index):
    with pytest.raises(ValueError, match="folder"):
        index.save(str(tmp_path / "newdir") + "/")
    assert list(tmp_path.iterdir()) == []


def test_the_checksum_covers_the_header(tmp_path, encoder, index):
    """A saved index relabelled with another encoder's name is caught, not loaded."""
    path = index.save(tmp_path / "colours.npz")
    with np.load(path) as archive:
        arrays = dict(archive)
    header = json.loads(arrays["header"].tobytes())
    header["encoder"] = "other-model"
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(IndexFileError, match="checksum"):
        ImageIndex.load(path, ColorEncoder(name="other-model"))


def test_another_kind_of_file_gets_no_advice_to_unpickle(tmp_path, encoder):
    picture = tmp_path / "holiday.npz"
    Image.new("RGB", (4, 4)).save(picture, format="PNG")
    with pytest.raises(IndexFileError, match="another kind of file") as error:
        ImageIndex.load(picture, encoder)
    assert "pickle" not in str(error.value)


def test_recall_at_k(index):
    queries = [f"a {color} square" for color in COLORS]
    relevant = ids_with_caption(index, queries)
    assert [len(r) for r in relevant] == [8] * 8
    assert recall_at_k(index, queries, relevant, ks=(1, 5)) == {1: 1.0, 5: 1.0}
    # relevance shifted by one colour: the retriever is still right, so recall drops
    shifted = relevant[1:] + relevant[:1]
    assert recall_at_k(index, queries, shifted, ks=(1, 8))[8] == 0.0
    one_each = [min(r) for r in relevant]  # a single relevant id per query, as ints
    recalls = recall_at_k(index, queries, one_each, ks=(1, 8, 64))
    assert recalls[64] == 1.0 and recalls[1] <= recalls[8] <= recalls[64]


def test_search_results_draws_a_grid(index, tmp_path):
    hits = index.search(["red", "blue"], k=4)
    fig = search_results(index, hits, queries=["red", "blue"])
    assert len(fig.axes) == 2 * 5  # a query column + 4 results per row
    assert fig.axes[0].get_title() == "query:\nred" and not fig.axes[0].images
    assert fig.axes[1].get_title().startswith(f"{hits[0][0].score:.3f}")
    assert fig.axes[1].images  # the image was drawn
    single = search_results(index, index.search("green", k=3))
    assert len(single.axes) == 3
    query = solid("yellow")
    by_image = search_results(index, [index.search(query, k=2)], queries=[query])
    assert by_image.axes[0].images and by_image.axes[0].get_title() == "query"
    loaded = ImageIndex.load(index.save(tmp_path / "i.npz"), index.encoder)
    missing = search_results(loaded, loaded.search("red", k=1))  # images were not saved
    assert "not" in missing.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="Nothing to show"):
        search_results(index, [])


def test_captions_wrap_between_words():
    from mmlearn.viz import _wrap
    assert _wrap("a small green triangle at the top", 14).splitlines() == [
        "a small green", "triangle at", "the top"]


@pytest.mark.slow
def test_the_search_module_draws_nothing():
    """Searching needs no plotting library: matplotlib is imported only to draw."""
    import subprocess
    import sys
    code = "import sys, mmlearn.search; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_dataset_items_may_be_dicts_and_tensors_are_refused(encoder):
    items = [{"image": solid("red"), "caption": "red"}, {"image": solid("blue"), "caption": "b"}]
    index = ImageIndex.build(encoder, items, progress=False)
    assert [item["caption"] for item in index.items] == ["red", "b"]
    with pytest.raises(ValueError, match="without a transform"):
        index.add([(torch.zeros(3, 8, 8), "a tensor")], progress=False)


def test_an_add_that_fails_midway_changes_nothing(index, encoder):
    before = (index.vectors.clone(), list(index.items))
    calls = []
    encode = encoder.encode_images

    def fail_on_second_batch(images):
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return encode(images)

    encoder.encode_images = fail_on_second_batch
    with pytest.raises(KeyboardInterrupt):
        index.add(ColorDataset(40), batch_size=16, progress=False)
    assert torch.equal(index.vectors, before[0]) and index.items == before[1]
    encoder.encode_images = encode
    assert index.add(ColorDataset(40), batch_size=16, progress=False) == 40  # works again


def test_add_one_file(tmp_path, encoder):
    path = tmp_path / "one.png"
    solid("cyan").save(path)
    index = ImageIndex(encoder)
    assert index.add(path, progress=False) == 1 and index.items[0]["path"] == str(path)


# Measured with the shipped course CLIP on ShapeWorld(500, "test_seen", seed) for seeds 0, 1, 2
# (a model with random weights in brackets): text queries = every distinct caption, relevant =
# the images with exactly that caption: recall@5 0.880, 0.870, 0.827 (0.016); image queries,
# same class among the 5 nearest other images: 0.998, 0.998, 1.000 (0.06). Bars with margin:
CAPTION_RECALL_AT_5_BAR, IMAGE_SAME_CLASS_BAR = 0.75, 0.95


@pytest.mark.skipif(not (checkpoints.WEIGHTS_DIR / "clip_shapeworld.safetensors").is_file(),
                    reason="the course CLIP weights are not in the repository yet")
def test_course_clip_finds_shapeworld_images(tmp_path):
    from mmlearn.clip import load_clip
    from mmlearn.shapes import ShapeWorld

    clip = load_clip("course", device="cpu", verbose=False)
    data = ShapeWorld(500, split="test_seen", seed=0)
    index = ImageIndex.load(ImageIndex.build(clip, data, progress=False).save(tmp_path / "s.npz"),
                            clip)
    captions = sorted(set(data.captions))
    recalls = recall_at_k(index, captions, ids_with_caption(index, captions), ks=(1, 5, 10))
    assert recalls[5] >= CAPTION_RECALL_AT_5_BAR, recalls
    _, ids = index.topk(index.vectors[:100].float(), k=6)
    assert (ids[:, 0] == torch.arange(100)).all()  # each image finds itself first
    same_class = (data.labels[ids[:, 1:]] == data.labels[:100, None]).float().mean().item()
    assert same_class >= IMAGE_SAME_CLASS_BAR
