"""Tests of mmlearn.clip.load_clip, all offline.

The pretrained path is tested with checkpoints made here in open_clip's own formats (a
randomly initialised ViT-B-32 saved with torch.save, and a fake Hugging Face cache laid out
as huggingface_hub lays it out), so no weights are ever downloaded. A small stand-in for the
course model tests the course path before (and besides) the real shipped weights.
"""

import json
import os
import socket
import time
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmlearn import checkpoints
from mmlearn import clip as clip_module
from mmlearn.clip import LoadedClip, WeightsUnavailableError, load_clip, pretrained_is_cached

TINY_NAME = "mmlearn-test-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32,
                   "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2,
                 "layers": 1},
}
LAION_REPO = "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
TEXTS = ["a photo of a cat", "a photo of a dog", "a photo of a human", "a red circle"]


def photos(n: int = 3, seed: int = 0) -> list[Image.Image]:
    """Small random RGB images of different sizes (the preprocessing must resize them)."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (40 + 9 * i, 50 + 7 * i, 3), dtype=np.uint8))
            for i in range(n)]


def reference_embeddings(model, preprocess, tokenizer, images, texts):
    """What the in-memory open_clip model gives, computed by hand with plain open_clip calls."""
    model.eval()
    with torch.no_grad():
        image_features = model.encode_image(torch.stack([preprocess(im) for im in images]))
        text_features = model.encode_text(tokenizer(texts))
    return F.normalize(image_features, dim=-1), F.normalize(text_features, dim=-1)


def assert_same_embeddings(clip: LoadedClip, model, preprocess, tokenizer) -> None:
    images = photos()
    expected_images, expected_texts = reference_embeddings(model, preprocess, tokenizer,
                                                           images, TEXTS)
    got_images = clip.encode_images(images, batch_size=2)  # two batches: batching must not matter
    got_texts = clip.encode_texts(TEXTS, batch_size=3)
    assert got_images.dtype == torch.float32 and got_images.device.type == "cpu"
    torch.testing.assert_close(got_images, expected_images, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_texts, expected_texts, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_images.norm(dim=-1), torch.ones(len(images)))
    # Different inputs must give different vectors, or the equality above proves little.
    assert (got_images[0] - got_images[1]).abs().max() > 1e-3


@pytest.fixture(scope="module")
def vit_b_32(tmp_path_factory):
    """A ViT-B-32 with random (seeded) weights, saved the way open_clip saves state dicts."""
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32")
    path = tmp_path_factory.mktemp("vit") / "vit_b_32_random.pt"
    torch.save(model.state_dict(), path)
    return model.eval(), preprocess, open_clip.get_tokenizer("ViT-B-32"), path


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """mmlearn's offline switch on, and an empty Hugging Face cache."""
    monkeypatch.setenv("MMLEARN_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    empty_cache(monkeypatch, tmp_path)


def empty_cache(monkeypatch, tmp_path) -> Path:
    import huggingface_hub.constants
    cache = tmp_path / "hf_cache"
    cache.mkdir(exist_ok=True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def network_calls(monkeypatch):
    """Make every socket connection and name lookup fail, and record the attempts."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args[:2])
        raise OSError("network use in a test that must stay offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls


@pytest.fixture
def tiny_course(monkeypatch, tmp_path):
    """A stand-in for the course model: a tiny open_clip config and its fp16 shipped weights."""
    configs = tmp_path / "model_configs"
    configs.mkdir()
    (configs / f"{TINY_NAME}.json").write_text(json.dumps(TINY_CONFIG))
    weights = tmp_path / "weights"
    monkeypatch.setattr(clip_module, "COURSE_MODEL", TINY_NAME)
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(checkpoints, "SUMS_FILE", weights / "SHA256SUMS")
    open_clip.add_model_config(configs)
    torch.manual_seed(1)
    model, _, preprocess = open_clip.create_model_and_transforms(TINY_NAME)
    half = checkpoints.half_precision(model.state_dict())
    checkpoints.save_checkpoint(half, weights / clip_module.COURSE_WEIGHTS)
    checkpoints.record_sha256(clip_module.COURSE_WEIGHTS)
    model.load_state_dict(half)  # the in-memory twin, rounded to fp16 like the shipped file
    return model.eval(), preprocess, open_clip.get_tokenizer(TINY_NAME), weights


# --- local files ----------------------------------------------------------------------------

@pytest.mark.slow
def test_random_vit_b_32_file_loads_and_gives_the_same_embeddings(vit_b_32, offline,
                                                                  network_calls):
    model, preprocess, tokenizer, path = vit_b_32
    clip = load_clip(path, device="cpu")  # architecture inferred from the tensor shapes
    assert clip.source == "file" and clip.weights == str(path)
    assert "ViT-B-32" in clip.name and clip.device == torch.device("cpu")
    assert not clip.model.training
    assert clip.context_length == 77
    assert_same_embeddings(clip, model, preprocess, tokenizer)
    assert network_calls == []


@pytest.mark.slow
def test_pretrained_tag_and_auto_use_the_hugging_face_cache_offline(vit_b_32, monkeypatch,
                                                                    tmp_path, network_calls,
                                                                    capsys):
    """Weights laid out as huggingface_hub caches them are found without any network."""
    model, preprocess, tokenizer, path = vit_b_32
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MMLEARN_OFFLINE", raising=False)
    cache = empty_cache(monkeypatch, tmp_path)
    commit = "0" * 40
    snapshot = cache / LAION_REPO / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (cache / LAION_REPO / "refs").mkdir()
    (cache / LAION_REPO / "refs" / "main").write_text(commit)
    assert not pretrained_is_cached()
    os.symlink(path, snapshot / "open_clip_pytorch_model.bin")
    assert pretrained_is_cached() and pretrained_is_cached("ViT-B-32:laion2b_s34b_b79k")
    assert not pretrained_is_cached("ViT-B-32:openai")
    clip = load_clip("auto")
    assert clip.source == "pretrained"
    assert clip.name == "open_clip ViT-B-32 / laion2b_s34b_b79k"
    assert Path(clip.weights).parent == snapshot
    printed = capsys.readouterr().out
    assert "using open_clip ViT-B-32 / laion2b_s34b_b79k" in printed and "cache" in printed
    assert 'load_clip("course")' in printed
    assert_same_embeddings(clip, model, preprocess, tokenizer)
    assert network_calls == []


@pytest.mark.slow  # builds a ViT-B-32 (seconds)
def test_corrupt_files_give_a_clear_error_naming_the_file(vit_b_32, tmp_path, offline):
    truncated = tmp_path / "truncated.pt"
    with open(vit_b_32[3], "rb") as f:
        truncated.write_bytes(f.read(100_000))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(2000))
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path in (truncated, garbage, empty):
        with pytest.raises(ValueError, match="could not be read as CLIP weights") as error:
            load_clip(path, model="ViT-B-32")
        assert str(path) in str(error.value) and "save it again" in str(error.value)


def test_files_that_are_not_state_dicts_are_refused(tmp_path, offline):
    a_list = tmp_path / "a_list.pt"
    torch.save([torch.zeros(3)], a_list)
    with pytest.raises(ValueError, match="not a state dict") as error:
        load_clip(a_list)
    assert str(a_list) in str(error.value)
    pickled_code = tmp_path / "pickled_object.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, pickled_code)  # weights_only must refuse it
    with pytest.raises(ValueError, match="could not be read") as error:
        load_clip(pickled_code, model="ViT-B-32")
    assert str(pickled_code) in str(error.value)


@pytest.mark.slow  # builds a ViT-B-32 (seconds)
def test_wrong_architecture_file_gives_a_clear_error(vit_b_32, tiny_course, tmp_path, offline):
    vit_path = vit_b_32[3]
    with pytest.raises(ValueError, match="does not fit the architecture") as error:
        load_clip(vit_path, model=TINY_NAME)  # ViT-B-32 weights into the tiny architecture
    assert str(vit_path) in str(error.value) and "They fit 'ViT-B-32'" in str(error.value)
    unknown = tmp_path / "unknown.pt"
    torch.save({"text_projection": torch.zeros(8, 4), "visual.proj": torch.zeros(8, 4)},
               unknown)
    with pytest.raises(ValueError, match="does not match any open_clip architecture") as error:
        load_clip(unknown)
    assert str(unknown) in str(error.value)
    with pytest.raises(ValueError, match="not an open_clip architecture"):
        load_clip(vit_path, model="ViT-B-99")


@pytest.mark.slow
def test_file_of_the_course_architecture_is_recognised(tiny_course, tmp_path, offline):
    model, preprocess, tokenizer, _ = tiny_course
    path = tmp_path / "my_course_clip.pt"
    torch.save(model.state_dict(), path)
    clip = load_clip(path)
    assert clip.name == f"{TINY_NAME} from file my_course_clip.pt"
    assert_same_embeddings(clip, model, preprocess, tokenizer)


def test_folder_with_open_clip_config_and_safetensors(tiny_course, tmp_path, offline):
    from safetensors.torch import save_file
    model, preprocess, tokenizer, _ = tiny_course
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CONFIG}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              folder / "open_clip_model.safetensors")
    clip = load_clip(folder)
    assert clip.source == "file" and clip.weights.endswith("open_clip_model.safetensors")
    assert_same_embeddings(clip, model, preprocess, tokenizer)


# --- offline behaviour: fallback and fast failure --------------------------------------------

@pytest.mark.parametrize("variable", ["MMLEARN_OFFLINE", "HF_HUB_OFFLINE"])
def test_auto_falls_back_to_the_course_model_offline(variable, tiny_course, monkeypatch,
                                                     tmp_path, network_calls, capsys):
    for name in ("MMLEARN_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "1")
    empty_cache(monkeypatch, tmp_path)
    model, preprocess, tokenizer, weights = tiny_course
    start = time.perf_counter()
    clip = load_clip()
    seconds = time.perf_counter() - start
    assert clip.source == "course" and TINY_NAME in clip.name
    assert clip.weights == str(weights / clip_module.COURSE_WEIGHTS)
    printed = capsys.readouterr().out
    assert f"using {clip.name}" in printed and "offline" in printed
    assert "load_clip('ViT-B-32:laion2b_s34b_b79k')" in printed  # how to get the other one
    assert seconds < 60, f"offline fallback took {seconds:.1f} s: is it waiting for a network?"
    assert_same_embeddings(clip, model, preprocess, tokenizer)
    assert network_calls == []


def test_auto_falls_back_quickly_when_the_hub_does_not_answer(tiny_course, monkeypatch,
                                                              tmp_path, network_calls, capsys):
    """Online but unreachable: auto asks the network (the guard sees it) and falls back."""
    for name in ("MMLEARN_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; `make test` sets it for the run.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    empty_cache(monkeypatch, tmp_path)
    start = time.perf_counter()
    clip = load_clip()
    assert time.perf_counter() - start < clip_module.REACH_TIMEOUT_S + 3
    assert clip.source == "course"
    assert "did not answer" in capsys.readouterr().out
    assert network_calls, "the network guard saw no attempt: it would not catch real use"


def test_a_failed_download_becomes_advice_and_auto_falls_back(tiny_course, monkeypatch,
                                                              tmp_path, capsys):
    """Reachable hub, but the download breaks: a clear error, no socket traceback chain."""
    for name in ("MMLEARN_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    empty_cache(monkeypatch, tmp_path)

    def broken_download(*args, **kwargs):
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(clip_module, "_reachable", lambda config: True)
    monkeypatch.setattr(open_clip, "download_pretrained", broken_download)
    with pytest.raises(WeightsUnavailableError, match="Downloading the weights") as error:
        load_clip("ViT-B-32:laion2b_s34b_b79k")
    assert error.value.__cause__ is None and error.value.__suppress_context__
    assert "connection reset by peer" in str(error.value)
    clip = load_clip("auto")
    assert clip.source == "course"
    assert "getting the pretrained weights failed" in capsys.readouterr().out


@pytest.mark.parametrize("tag", ["ViT-B-32:laion2b_s34b_b79k", "ViT-B-32-quickgelu:openai"])
def test_pretrained_tag_offline_fails_fast_with_advice(tag, offline, network_calls):
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as error:
        load_clip(tag)
    seconds = time.perf_counter() - start
    message = str(error.value)
    assert seconds < 60, f"offline failure took {seconds:.1f} s: is it waiting for a network?"
    assert "Offline mode is on" in message and tag in message
    assert "Hugging Face cache" in message and "load_clip('course')" in message
    assert network_calls == []


def test_open_clip_keywords_and_bad_sources(offline):
    with pytest.raises(WeightsUnavailableError, match="ViT-B-32:openai"):
        load_clip(model="ViT-B-32", pretrained="openai")
    with pytest.raises(ValueError, match="Tags for ViT-B-32"):
        load_clip("ViT-B-32:no_such_tag")
    with pytest.raises(ValueError, match="not 'auto', 'course'"):
        load_clip("no/such/file.pt")
    with pytest.raises(ValueError, match="not both"):
        load_clip("course", pretrained="openai")


def test_encode_rejects_bad_input(tiny_course, offline):
    clip = load_clip("course")
    with pytest.raises(ValueError, match="open_image"):
        clip.encode_images(["cat.jpg"])
    with pytest.raises(ValueError, match="no images"):
        clip.encode_images([])
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        clip.encode_images(torch.zeros(2, 32, 32))
    with pytest.raises(ValueError, match="no texts"):
        clip.encode_texts([])
    batch = torch.stack([clip.preprocess(im) for im in photos(2)])
    torch.testing.assert_close(clip.encode_images(batch), clip.encode_images(photos(2)))


# --- the real shipped course model -----------------------------------------------------------

COURSE_FILE = checkpoints.WEIGHTS_DIR / clip_module.COURSE_WEIGHTS


@pytest.mark.skipif(not COURSE_FILE.exists(), reason="course CLIP weights not trained yet")
def test_auto_falls_back_to_the_shipped_course_model(offline, network_calls, capsys):
    start = time.perf_counter()
    clip = load_clip()
    seconds = time.perf_counter() - start
    assert clip.source == "course"
    assert clip.name == "course CLIP mmlearn-tiny-clip (trained on ShapeWorld)"
    assert seconds < 60, f"offline fallback took {seconds:.1f} s: is it waiting for a network?"
    assert "offline" in capsys.readouterr().out
    texts = clip.encode_texts(["a red circle", "a blue square"])
    assert texts.shape[0] == 2 and torch.allclose(texts.norm(dim=-1), torch.ones(2))
    assert network_calls == []



# --- memory: Binder's 2 GB ----------------------------------------------------------------

@pytest.mark.slow
def test_auto_takes_the_course_model_under_binders_memory_limit(vit_b_32, monkeypatch,
                                                                tmp_path, network_calls, capsys):
    """Cached pretrained weights, but MEM_LIMIT as on mybinder.org: the course model, and why."""
    _, _, _, path = vit_b_32
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = empty_cache(monkeypatch, tmp_path)
    snapshot = cache / LAION_REPO / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (cache / LAION_REPO / "refs").mkdir()
    (cache / LAION_REPO / "refs" / "main").write_text("0" * 40)
    os.symlink(path, snapshot / "open_clip_pytorch_model.bin")
    monkeypatch.setenv("MEM_LIMIT", "2147483648")
    clip = load_clip("auto")
    assert clip.source == "course"
    printed = capsys.readouterr().out
    assert "2.1 GB" in printed and "MEM_LIMIT" in printed
    monkeypatch.setenv("MEM_LIMIT", str(16 * 2**30))
    monkeypatch.setattr(clip_module, "memory_limit_bytes", lambda: 16 * 2**30)
    assert load_clip("auto").source == "pretrained"


def test_the_memory_limit_is_read_from_mem_limit_and_cgroups(monkeypatch, tmp_path):
    from mmlearn.config import memory_limit_bytes
    monkeypatch.delenv("MEM_LIMIT", raising=False)
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("max\n")
    v1.write_text(f"{2**63 - 4096}\n")  # cgroup v1's way of saying "no limit"
    assert memory_limit_bytes((str(v2), str(v1), str(tmp_path / "absent"))) is None
    v2.write_text("1073741824\n")
    assert memory_limit_bytes((str(v2),)) == 2**30
    monkeypatch.setenv("MEM_LIMIT", "536870912")
    assert memory_limit_bytes((str(v2),)) == 2**29  # the smaller of the two


@pytest.mark.slow
def test_loaded_weights_are_the_files_not_a_copy(vit_b_32, offline):
    """The parameters are assigned from the memory-mapped file: no random copy remains."""
    model, _, _, path = vit_b_32
    clip = load_clip(path, model="ViT-B-32", device="cpu")
    expected = model.state_dict()
    for name, tensor in clip.model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


@pytest.mark.parametrize("source, error, match", [(None, TypeError, "string"),
                                                  (12, TypeError, "string"),
                                                  ("", ValueError, "empty"),
                                                  ("   ", ValueError, "empty")])
def test_a_source_that_names_nothing_says_what_to_pass(source, error, match, offline):
    with pytest.raises(error, match=match):
        load_clip(source)


@pytest.mark.slow  # builds a ViT-B-32 (seconds)
def test_the_course_weights_file_and_a_copy_load_without_naming_the_architecture(tmp_path):
    """Issue 24: load_clip(path) of the course's own weights asked for model= and then
    suggested ViT-B-32, an architecture those weights do not fit."""
    import shutil

    from mmlearn import checkpoints
    from mmlearn.clip import COURSE_MODEL, COURSE_WEIGHTS, load_clip

    shipped = checkpoints.shipped_path(COURSE_WEIGHTS)
    copy = tmp_path / "my_clip.safetensors"
    shutil.copy(shipped, copy)
    course = load_clip("course", device="cpu", verbose=False)
    for path in (shipped, copy):
        loaded = load_clip(path, device="cpu")
        assert COURSE_MODEL in loaded.name
        assert torch.allclose(loaded.encode_texts(["a red circle"]),
                              course.encode_texts(["a red circle"]))
    with pytest.raises(ValueError, match=f"They fit '{COURSE_MODEL}': leave model= out"):
        load_clip(copy, device="cpu", model="ViT-B-32")


def test_unknown_weights_get_no_made_up_architecture(tmp_path):
    from safetensors.torch import save_file

    from mmlearn.clip import load_clip

    path = tmp_path / "odd.safetensors"
    save_file({"text_projection": torch.zeros(3, 5), "visual.proj": torch.zeros(4, 5)}, str(path))
    with pytest.raises(ValueError, match="model='ARCH'") as error:
        load_clip(path, device="cpu")
    assert "ViT-B-32" not in str(error.value)
