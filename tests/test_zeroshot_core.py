"""Zero-shot core: classifier weights equal open_clip's, inputs equal its preprocess."""

import open_clip
import pytest
import torch
from open_clip.zero_shot_classifier import build_zero_shot_classifier

from mmlearn import shapes, train, zeroshot
from mmlearn.clip import to_model_input


@pytest.fixture(scope="module")
def untrained():
    model, tokenizer = train.new_course_clip(seed=1)
    return model.eval(), tokenizer


@pytest.mark.parametrize("templates", [
    ["a {}"],
    ["a {}", "a picture of a {}", "a photo of a big {}."],
    zeroshot.PLAIN_TEMPLATES,
])
def test_classifier_equals_open_clip(untrained, templates):
    model, tokenizer = untrained
    ours = zeroshot.build_classifier(model, tokenizer, shapes.CLASSES, templates)
    reference = build_zero_shot_classifier(model, tokenizer, shapes.CLASSES, templates,
                                           num_classes_per_batch=7)
    assert ours.shape == (model.text_projection.shape[1], len(shapes.CLASSES))
    assert torch.allclose(ours, reference, atol=1e-6)
    assert torch.allclose(ours.norm(dim=0), torch.ones(len(shapes.CLASSES)), atol=1e-5)


def test_plain_prompt_uses_the_right_article():
    assert zeroshot.plain_prompt("red circle") == "a red circle"
    assert zeroshot.plain_prompt("orange star") == "an orange star"


def test_model_input_equals_open_clip_preprocess(untrained):
    model, _ = untrained
    _, _, preprocess = open_clip.create_model_and_transforms("mmlearn-tiny-clip")
    data = shapes.ShapeWorld(6)
    by_hand = to_model_input(data.images, model)
    by_open_clip = torch.stack([preprocess(data[i][0]) for i in range(6)])
    assert torch.allclose(by_hand, by_open_clip, atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        to_model_input(data.images.float(), model)


def test_probabilities_and_accuracy_bookkeeping(untrained):
    model, tokenizer = untrained
    data = shapes.ShapeWorld(20, "all")
    classifier = zeroshot.build_classifier(model, tokenizer, shapes.CLASSES)
    probs = zeroshot.predict_proba(model, to_model_input(data.images, model), classifier,
                                   batch_size=7)
    assert probs.shape == (20, len(shapes.CLASSES))
    assert torch.allclose(probs.sum(dim=1), torch.ones(20), atol=1e-5)
    # accuracy is the share of argmax predictions equal to the labels
    predicted = probs.argmax(dim=1)
    assert zeroshot.dataset_accuracy(model, tokenizer, data) == pytest.approx(
        (predicted == data.labels).float().mean().item())
    with pytest.raises(ValueError, match="at least one"):
        zeroshot.build_classifier(model, tokenizer, [], ["a {}"])
