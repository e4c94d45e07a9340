"""The course CLIP: its open_clip config, its shipped checkpoint and that checkpoint's quality."""

import json

import open_clip
import pytest
import torch

from mmlearn import checkpoints, model_configs, shapes, train, zeroshot

WEIGHTS = "clip_shapeworld.safetensors"
pytestmark = pytest.mark.usefixtures("one_thread")

# Measured by scripts/train_clip.py on 1000 test_seen / 1000 test_unseen images (seed 0):
# seen 1.000, unseen 0.995. The bars below leave a margin for other CPUs / torch versions.
SEEN_BAR, UNSEEN_BAR = 0.98, 0.95


def test_config_is_registered_with_open_clip():
    assert model_configs.register() == [model_configs.COURSE_CLIP]
    assert model_configs.COURSE_CLIP in open_clip.list_models()
    model_configs.register()  # again: harmless
    config = open_clip.get_model_config(model_configs.COURSE_CLIP)
    assert config["text_cfg"]["vocab_size"] == 49408  # open_clip's own BPE tokenizer fits
    tokenizer = open_clip.get_tokenizer(model_configs.COURSE_CLIP)
    assert tokenizer.context_length == config["text_cfg"]["context_length"]


def test_every_shapeworld_caption_fits_in_the_context():
    config = open_clip.get_model_config(model_configs.COURSE_CLIP)
    long_tokenizer = open_clip.get_tokenizer(model_configs.COURSE_CLIP, context_length=77)
    captions = set(shapes.ShapeWorld(1500, "all", max_objects=3).captions)
    lengths = (long_tokenizer(sorted(captions)) != 0).sum(dim=1)
    assert lengths.max() <= config["text_cfg"]["context_length"]


@pytest.fixture(scope="module")
def shipped():
    path = checkpoints.shipped_path(WEIGHTS)  # raises if the sha256 does not match
    model_configs.register()
    model, _, preprocess = open_clip.create_model_and_transforms(
        model_configs.COURSE_CLIP, pretrained=str(path))
    return model.eval(), open_clip.get_tokenizer(model_configs.COURSE_CLIP), path


def test_shipped_file_is_small_fp16_and_recorded(shipped):
    _, _, path = shipped
    assert path.stat().st_size < 8e6
    state = checkpoints.load_checkpoint(path)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert checkpoints.recorded_sha256(WEIGHTS) == checkpoints.sha256_of(path)


def test_open_clip_reads_it_without_unpickling(monkeypatch, shipped):
    """open_clip itself loads the shipped file, as safetensors: torch.load is never called."""
    _, _, path = shipped
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    model, _, _ = open_clip.create_model_and_transforms(model_configs.COURSE_CLIP,
                                                        pretrained=str(path))
    assert calls == []
    stored = checkpoints.load_checkpoint(path)["logit_scale"]
    assert torch.equal(model.logit_scale.detach(), stored.float())


def test_shipped_model_zero_shot_accuracy(shipped):
    model, tokenizer, _ = shipped
    scores = train.evaluate(model, tokenizer, train.held_out_sets(1000, seed=0))
    assert scores["seen"] >= SEEN_BAR, scores
    assert scores["unseen"] >= UNSEEN_BAR, scores


def test_shipped_model_on_other_test_images_and_prompts(shipped):
    # fresh images (another seed) and a different prompt template still work
    model, tokenizer, _ = shipped
    data = shapes.ShapeWorld(300, "test_unseen", seed=7)
    templates = [lambda c: shapes.with_articles(f"a picture of a {c}")]
    accuracy = zeroshot.dataset_accuracy(model, tokenizer, data, templates=templates)
    assert accuracy >= UNSEEN_BAR - 0.1


def test_config_file_is_the_registered_one():
    path = model_configs.CONFIG_DIR / f"{model_configs.COURSE_CLIP}.json"
    assert json.loads(path.read_text()) == open_clip.get_model_config(model_configs.COURSE_CLIP)


# The guide of lesson 04: the same recipe trained on augmented views
# (python scripts/train_clip.py --augment). It must stay as accurate on clean pictures.
@pytest.mark.slow
def test_augmented_view_model_is_shipped_and_as_accurate():
    from mmlearn.clip import AUGMENTED_WEIGHTS, load_clip

    path = checkpoints.shipped_path(AUGMENTED_WEIGHTS)  # raises if the sha256 does not match
    assert path.stat().st_size < 8e6
    guide = load_clip("course-augmented", "cpu")
    assert "augmented" in guide.name and guide.source == "course"
    scores = train.evaluate(guide.model, guide.tokenizer, train.held_out_sets(1000, seed=0))
    assert scores["seen"] >= SEEN_BAR, scores
    assert scores["unseen"] >= UNSEEN_BAR, scores
