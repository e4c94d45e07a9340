"""Property-based tests (issue 24): Hypothesis throws at the public functions what a
learner might - pictures of every PIL mode and size, arrays and tensors of every dtype and
layout, NaN and inf, texts with control characters, RTL and CJK scripts, huge and odd
numbers, NumPy scalars, files that are not what their name says.

The property, for every call: a correct result, or a ValueError / TypeError raised by
mmlearn itself (the raising frame is in mmlearn/, not in torch or NumPy), within a time
budget, and no file changed outside the example's own temporary folder.

Inside `make test` a fixed, repeatable budget of examples runs (the "mmlearn" profile in
conftest.py); MMLEARN_HYPOTHESIS=long searches many more. Models load once per module,
at their smallest.
"""

import math
import os
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

import mmlearn
from mmlearn import checks, config, dalle, images, shapes, unclip, vqgan_clip, zeroshot
from mmlearn.clip import load_clip
from mmlearn.search import ImageIndex
from mmlearn.vqgan import load_course_vqgan

PACKAGE = os.path.dirname(os.path.abspath(mmlearn.__file__)) + os.sep
LONG = os.environ.get("MMLEARN_HYPOTHESIS") == "long"
SECONDS_PER_CALL = 20.0  # far above any right answer here; a hang or a huge job exceeds it


def examples(n: int):
    """``n`` examples in `make test`, twenty times more with MMLEARN_HYPOTHESIS=long."""
    return settings(max_examples=n * 20 if LONG else n)


# ------------------------------------------------------------------------------ the property


REFUSED = object()  # what answered() returns for a ValueError / TypeError from mmlearn


def answered(call, *args, **kwargs):
    """Run ``call``: its result, or REFUSED after a ValueError / TypeError from mmlearn.

    Anything else fails the test: another exception (a KeyError, an IndexError, torch's
    RuntimeError), an error raised inside torch or NumPy rather than by mmlearn, or a call
    that takes longer than SECONDS_PER_CALL.
    """
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # warnings are answers too (a cut text, ...)
            return call(*args, **kwargs)
    except (ValueError, TypeError) as error:
        raising = traceback.extract_tb(error.__traceback__)[-1]
        # A `raise` statement in mmlearn's own code: not a torch or NumPy function written
        # in C that raised while mmlearn called it (its last Python frame is mmlearn's too).
        assert os.path.abspath(raising.filename).startswith(PACKAGE), (
            f"{type(error).__name__} raised in {raising.filename}, not by mmlearn: {error}")
        assert "raise " in (raising.line or ""), (
            f"{type(error).__name__} from `{raising.line}` ({raising.filename}:"
            f"{raising.lineno}), not a raise of mmlearn's: {error}")
        assert str(error).strip(), "an error without a message"
        return REFUSED
    finally:
        elapsed = time.perf_counter() - start
        assert elapsed < SECONDS_PER_CALL, f"{call.__name__} took {elapsed:.1f} s"


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def in_scratch_folder():
    """Run the module with a scratch folder as the working directory, so that a relative
    path a call writes to lands there; the package's own files must not change."""
    weights = Path(PACKAGE) / "weights"
    before, cwd = snapshot(weights), os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            yield Path(scratch)
        finally:
            os.chdir(cwd)
    assert snapshot(weights) == before, "a shipped weights file changed"


pytestmark = [pytest.mark.usefixtures("one_thread", "in_scratch_folder")]


# ------------------------------------------------------------------------------ models, once


@pytest.fixture(scope="module")
def clip():
    return load_clip("course", device="cpu", verbose=False)


@pytest.fixture(scope="module")
def vqgan():
    return load_course_vqgan("cpu")


@pytest.fixture(scope="module")
def tiny_dalle():
    return dalle.new_dalle(seed=0, width=16, layers=1, heads=2).eval()


@pytest.fixture(scope="module")
def course_unclip(clip, vqgan):
    return unclip.load_course_unclip(clip, vqgan)


@pytest.fixture(scope="module")
def index(clip):
    return ImageIndex.build(clip, [shapes.draw("red", "circle"), shapes.draw("blue", "star")],
                            progress=False)


# ------------------------------------------------------------------------------ strategies

PIL_MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "LA",
             "PA", "RGBX", "RGBa", "La", "I;16", "I;16L", "I;16B", "I;16N"]
sizes = st.tuples(st.integers(1, 40), st.integers(1, 40)) | st.sampled_from(
    [(1, 1), (1, 300), (300, 1), (2, 97)])


@st.composite
def pil_pictures(draw):
    """A PIL image of any mode and an odd size, with random content (NaN and inf in F)."""
    mode, (width, height) = draw(st.sampled_from(PIL_MODES)), draw(sizes)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if mode == "F":
        values = rng.normal(0, draw(st.sampled_from([1.0, 1e6])), (height, width))
        values[rng.random((height, width)) < 0.1] = draw(st.sampled_from([np.nan, np.inf]))
        return Image.fromarray(values.astype(np.float32), mode="F")
    base = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA")
    try:
        return base.convert(mode)
    except (ValueError, OSError):
        return Image.new(mode, (width, height))


array_shapes = st.sampled_from([(5, 7), (5, 7, 1), (5, 7, 3), (5, 7, 4), (3, 5, 7), (1, 3, 8, 8),
                                (3, 1, 1), (0, 3, 4), (2, 3, 32, 32), ()])
array_dtypes = st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16,
                                np.float16, np.float32, np.float64, np.bool_, np.complex64])


@st.composite
def arrays_and_tensors(draw):
    """A NumPy array or a torch tensor of any dtype and layout (NaN and inf included)."""
    array = draw(hnp.arrays(draw(array_dtypes), draw(array_shapes)))
    if draw(st.booleans()):
        return array
    try:
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    except TypeError:  # a dtype torch does not have
        return array
    if tensor.ndim >= 2 and draw(st.booleans()):
        tensor = tensor.transpose(-1, -2)  # another layout, not contiguous
    return tensor


pictures = pil_pictures() | arrays_and_tensors() | st.sampled_from(
    [None, "red.png", b"\x89PNG", [], 3])

SPECIAL_TEXTS = ["", " ", "\t\n", "\u200b", "\x00", "\u202e" + "red circle", "红色的圆",
                 "دائرة حمراء", "a red\ncircle", "a\tblue\rstar", "red " * 400,
                 "a red circle" + "\x07", "🔴", "photo.png", "{}", "{0} {1}", "a {"]
texts = st.text(max_size=60) | st.sampled_from(SPECIAL_TEXTS) | st.text(
    alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "Lo", "Mn"]),
    max_size=30)

INTERESTING_NUMBERS = [0, 1, 2, 3, 7, 32, -1, -2**40, 2**31, 2**32, 2**32 - 1, 2**63, 10**7,
                       10**12, 0.5, 1e-45, 1e-3, 1e300, -0.0, math.nan, math.inf, -math.inf,
                       True, False, np.int64(3), np.int32(-2), np.uint32(2**32 - 1),
                       np.float32(0.7), np.float64(np.nan), np.bool_(True), np.int64(10**12),
                       None, "3", [3]]
numbers = st.sampled_from(INTERESTING_NUMBERS) | st.integers(-3, 40) | st.floats(
    allow_nan=True, allow_infinity=True, width=32)


# ------------------------------------------------------------------------------ pictures


@examples(60)
@given(pictures)
@example(np.zeros((5, 7, 3), np.uint8))  # a NumPy picture: AttributeError from Pillow before
def test_to_rgb_and_to_uint8_tensor_give_rgb_or_refuse(picture):
    rgb = answered(images.to_rgb, picture)
    if rgb is not REFUSED:
        assert rgb.mode == "RGB" and rgb.size == picture.size
    pixels = answered(images.to_uint8_tensor, picture)
    if pixels is not REFUSED:
        assert pixels.dtype == torch.uint8 and pixels.shape == (3, picture.height, picture.width)


@examples(15)
@given(pil_pictures(), st.sampled_from(["png", "tiff", "webp", "gif", "bmp", "npz"]))
def test_open_image_reads_what_was_saved_or_refuses(picture, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"picture.{suffix}"
        try:
            picture.save(path)
        except (OSError, ValueError, KeyError):  # this format cannot hold this mode
            path.write_bytes(b"not a picture at all")
        try:
            opened = images.open_image(path)
        except images.BadImageError as error:
            assert str(path) in str(error)
        else:
            assert opened.mode == "RGB" and opened.size == picture.size


@examples(30)
@given(pictures)
@example(torch.full((1, 3, 32, 32), 255.0))  # raw pixels: embedded without a word before
@example(torch.full((3, 32, 32), math.nan))
def test_encode_images_embeds_any_picture_or_refuses(clip, picture):
    given_list = [picture] if isinstance(picture, Image.Image) else picture
    vectors = answered(clip.encode_images, given_list)
    if vectors is not REFUSED:
        assert vectors.ndim == 2 and vectors.shape[1] == 64 and vectors.isfinite().all()
        assert torch.allclose(vectors.norm(dim=1), torch.ones(len(vectors)), atol=1e-4)


@examples(20)
@given(pictures)
def test_classify_gives_probabilities_for_any_picture_or_refuses(clip, picture):
    given_list = [picture] if isinstance(picture, Image.Image) else picture
    probabilities = answered(zeroshot.classify, clip, given_list, ["red circle", "blue star"])
    if probabilities is not REFUSED:
        assert probabilities.shape[1] == 2 and probabilities.isfinite().all()
        assert torch.allclose(probabilities.sum(1), torch.ones(len(probabilities)), atol=1e-4)


@examples(15)
@given(pictures)
def test_an_index_builds_and_searches_any_picture_or_refuses(clip, index, picture):
    given_list = [picture] if isinstance(picture, Image.Image) else picture
    built = answered(ImageIndex.build, clip, given_list, progress=False)
    if built is not REFUSED:
        assert len(built) >= 1 and built.vectors.isfinite().all()
    hits = answered(index.search, picture, k=2)
    if hits is not REFUSED:
        assert 1 <= len(hits) <= 2


@examples(10)
@given(pictures)
def test_vqgan_clip_starts_from_any_init_picture_or_refuses(clip, vqgan, picture):
    result = answered(vqgan_clip.generate, "a red star", clip, vqgan, steps=0,
                      init_image=picture)
    if result is not REFUSED:
        assert result.image.size == (32, 32)


@examples(8)
@given(pictures)
def test_unclip_variations_of_any_picture_or_refuse(course_unclip, picture):
    drawn = answered(course_unclip.variations, picture, n=1, steps=1)
    if drawn is not REFUSED:
        assert drawn.images.shape == (1, 3, 32, 32) and drawn.images.dtype == torch.uint8


# ------------------------------------------------------------------------------ texts


@examples(40)
@given(texts)
def test_texts_are_embedded_classified_and_searched_or_refused(clip, index, text):
    vectors = answered(clip.encode_texts, [text])
    if vectors is not REFUSED:
        assert vectors.shape == (1, 64) and vectors.isfinite().all()
    probabilities = answered(zeroshot.classify, clip, [shapes.draw("red", "circle")],
                             [text, "blue star"])
    if probabilities is not REFUSED:
        assert checks.visible(text).strip()  # a blank label must not be answered
        assert torch.allclose(probabilities.sum(1), torch.ones(1), atol=1e-4)
    hits = answered(index.search, text, k=1)
    if hits is not REFUSED:
        assert checks.visible(text).strip() and len(hits) == 1


@examples(40)
@given(texts)
@example("a red\ncircle")  # newline: "redcircle" before, one unknown word
def test_dalle_reads_any_whitespace_as_a_separator(tiny_dalle, text):
    words = answered(tiny_dalle.tokenizer.words, text)
    assert words is not REFUSED and all(not any(ch.isspace() for ch in w) for w in words)
    spaced = "".join(" " if ch.isspace() else ch for ch in text)
    assert words == tiny_dalle.tokenizer.words(spaced)


@examples(30)
@given(st.lists(st.sampled_from(dalle.shapeworld_words()), min_size=1, max_size=6),
       st.lists(st.sampled_from([" ", "\n", "\t", "\r\n", "\u00a0", "\u2003", "\v"]),
                min_size=6, max_size=6))
def test_known_words_joined_by_any_whitespace_stay_known(tiny_dalle, words, gaps):
    prompt = "".join(w + g for w, g in zip(words, gaps))
    assert tiny_dalle.tokenizer.words(prompt) == words
    assert tiny_dalle.tokenizer.unknown_words(prompt) == []


@examples(15)
@given(texts)
def test_dalle_samples_any_prompt_or_refuses(tiny_dalle, vqgan, text):
    drawn = answered(dalle.sample, tiny_dalle, vqgan, text, n=1)
    if drawn is not REFUSED:
        assert drawn.images.shape == (1, 3, 32, 32)


@examples(40)
@given(texts)
def test_prompts_captions_and_checks_parse_or_refuse(text):
    parsed = answered(vqgan_clip.parse_prompts, text)
    if parsed is not REFUSED:
        assert parsed and any(p.weight != 0 for p in parsed)
    claims = answered(shapes.parse_caption, text)
    if claims is not REFUSED:
        assert all(c["color"] in shapes.COLORS and c["shape"] in shapes.SHAPES for c in claims)
    assert answered(checks.text, text, "label", "red circle") in (REFUSED, text)
    answered(checks.template, text, "template")


@examples(8)
@given(texts)
def test_vqgan_clip_and_unclip_take_any_prompt_or_refuse(clip, vqgan, course_unclip, text):
    result = answered(vqgan_clip.generate, text, clip, vqgan, steps=0)
    if result is not REFUSED:
        assert result.image.size == (32, 32)
    drawn = answered(course_unclip.generate, [text], n=1, steps=1)
    if drawn is not REFUSED:
        assert drawn[0].images.shape == (1, 3, 32, 32)


@examples(15)
@given(texts)
@example("a very long template that pushes the label past the text encoders cut {}")
def test_a_template_never_gives_two_classes_the_same_prompt_silently(clip, text):
    templates = [text] if "{" in text else [text + " {}"]
    probabilities = answered(zeroshot.classify, clip, [shapes.draw("red", "circle")],
                             ["red circle", "blue star"], templates)
    if probabilities is not REFUSED:
        tokens = clip.tokenizer([t.format(label) for t in templates
                                 for label in ("red circle", "blue star")])
        assert not torch.equal(tokens[0], tokens[1])


# ------------------------------------------------------------------------------ numbers


@pytest.mark.slow  # generates with every number drawn: 1.5-4.5 s (pytest --durations)
@examples(40)
@given(numbers)
@example(np.int64(3))
@example(1e-45)  # temperature: passed the check, then failed inside torch.multinomial
def test_numbers_given_to_settings_are_used_or_refused(tiny_dalle, vqgan, index, number):
    assert answered(checks.integer, number, "n") in (REFUSED, number)
    assert answered(checks.seed, number) in (REFUSED, number)
    value = answered(checks.positive_number, number, "lr", 0.1)
    assert value is REFUSED or (math.isfinite(value) and value > 0)
    if answered(config.seed_everything, number) is REFUSED:
        assert answered(checks.seed, number) is REFUSED
    world = answered(shapes.ShapeWorld, number, resolution=24)
    assert world is REFUSED or len(world) == number
    world = answered(shapes.ShapeWorld, 2, seed=number, resolution=24)
    assert world is REFUSED or len(world) == 2
    picture = answered(shapes.draw, "red", "circle", resolution=number)
    assert picture is REFUSED or picture.size == (number, number)
    hits = answered(index.search, "a red circle", k=number)
    assert hits is REFUSED or len(hits) == min(number, 2)
    for setting in ("n", "temperature", "top_k", "seed"):
        drawn = answered(dalle.sample, tiny_dalle, vqgan, "a red circle",
                         **{"n": 1, setting: number})
        assert drawn is REFUSED or len(drawn.images) == (number if setting == "n" else 1)


@pytest.mark.slow  # generates with every number drawn: 1.5-4.5 s (pytest --durations)
@examples(20)
@given(numbers)
@example(4096)      # size: out of memory before
@example(10**6)     # cutouts: the same
def test_vqgan_clip_settings_are_used_or_refused(clip, vqgan, number):
    for setting in ("size", "cutouts", "lr", "min_crop", "seed"):
        steps = 1 if setting != "size" else 0
        result = answered(vqgan_clip.generate, "a red star", clip, vqgan,
                          **{"steps": steps, setting: number})
        if result is not REFUSED and setting == "size":
            assert result.image.size == (number, number)


@pytest.mark.slow  # generates with every number drawn: 1.5-4.5 s (pytest --durations)
@examples(12)
@given(numbers)
def test_unclip_settings_are_used_or_refused(course_unclip, number):
    for setting in ("n", "scale", "seed", "batch_prompts"):
        drawn = answered(course_unclip.generate, ["a red circle"],
                         **{"n": 1, "steps": 1, setting: number})
        assert drawn is REFUSED or len(drawn) == 1
    path = answered(course_unclip.interpolate, shapes.draw("red", "circle"),
                    shapes.draw("blue", "star"), k=number, steps=1)
    assert path is REFUSED or len(path) == number


# ------------------------------------------------------------------------------ files


LEARNER_FILES = {"photo.png": None, "notes.txt": b"my notes", "weights.safetensors": b"\x00" * 64}


@examples(30)
@given(st.sampled_from(["photo.png", "notes.txt", "weights.safetensors", "index.npz",
                        "new.npz", "newdir/", "folder", "missing/sub.npz", "x" * 244 + ".npz",
                        "", " ", "ünï cödé.npz"]),
       st.sampled_from([False, True, "no", 0, None, np.bool_(False)]))
def test_saving_an_index_never_loses_a_learners_file(index, target, overwrite):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        shapes.draw("red", "circle").save(folder / "photo.png")
        (folder / "notes.txt").write_bytes(LEARNER_FILES["notes.txt"])
        (folder / "weights.safetensors").write_bytes(LEARNER_FILES["weights.safetensors"])
        (folder / "folder").mkdir()
        index.save(folder / "index.npz")
        before = {p: (folder / p).read_bytes() for p in ("photo.png", "notes.txt",
                                                         "weights.safetensors")}
        path = answered(index.save, folder / target if target.strip() else target,
                        overwrite=overwrite)
        replaced = {Path(path).name} if path is not REFUSED and overwrite is True else set()
        for learner_file, content in before.items():
            if learner_file not in replaced:
                assert (folder / learner_file).read_bytes() == content, learner_file
        if path is not REFUSED:
            assert len(ImageIndex.load(path)) == len(index)
        leftovers = [p.name for p in folder.rglob("*") if p.name.startswith(".")]
        assert not leftovers, f"temporaries left behind: {leftovers}"


@examples(40)
@given(arrays_and_tensors(), arrays_and_tensors() | st.sampled_from([0, 49, 50, -1, None]))
@example(torch.zeros(2, 16, 8, 8, dtype=torch.uint8), torch.tensor([3, 4]))  # was mixed silently
@example(torch.zeros(2, 3), torch.zeros(5, dtype=torch.long))  # 5 times, 2 samples: torch error
def test_the_loop_helpers_take_any_tensor_or_refuse(vqgan, tensor, times):
    """Issue 24, second pass: what the lessons call inside their loops (a diffusion step,
    decoding a latent, the VQGAN+CLIP loss) answers or refuses by name, for any tensor."""
    from mmlearn import diffusion
    schedule = diffusion.cosine_schedule(50)
    for step in (diffusion.add_noise, diffusion.predict_x0):
        answered(step, tensor, times, tensor, schedule)
    answered(diffusion.ddim_step, tensor, tensor, times, times, schedule)
    answered(diffusion.ddpm_step, tensor, tensor, times, times, schedule, tensor)
    answered(vqgan.decode, tensor)
    answered(vqgan_clip.decode_latent, vqgan, tensor)
    answered(vqgan_clip.spherical_distance, tensor, times)
    answered(vqgan_clip.prompt_loss, tensor, tensor, times)


@examples(20)
@given(st.sampled_from(["png", "empty", "random", "truncated", "relabelled", "folder",
                        "missing", "text"]), st.binary(max_size=64))
@example("png", b"")  # a PNG renamed .npz: NumPy's advice to use allow_pickle before
def test_loading_an_index_accepts_only_an_intact_index(index, kind, noise):
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        path = folder / "index.npz"
        if kind == "png":
            shapes.draw("red", "circle").save(folder / "p.png")
            (folder / "p.png").rename(path)
        elif kind in ("empty", "random", "text"):
            path.write_bytes({"empty": b"", "random": noise, "text": b"hello " + noise}[kind])
        elif kind in ("truncated", "relabelled"):
            index.save(path)
            data = path.read_bytes()
            if kind == "truncated":
                path.write_bytes(data[:len(data) // 2])
            else:
                arrays = dict(np.load(path))
                header = bytes(arrays["header"]).replace(b'"dim": 64', b'"dim": 65')
                arrays["header"] = np.frombuffer(header, dtype=np.uint8)
                np.savez(path, **arrays)
        elif kind == "folder":
            path.mkdir()
        try:
            loaded = answered(ImageIndex.load, path)
        except FileNotFoundError as error:  # a missing file: Python's own, clear error
            assert kind == "missing" and str(path) in str(error)
        else:
            assert loaded is REFUSED, f"a {kind} file was loaded as an index"
