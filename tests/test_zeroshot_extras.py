"""Lesson 02's helpers: label checks, classify with any LoadedClip, top-k, confusion matrix."""

import pytest
import torch

from mmlearn import shapes, zeroshot
from mmlearn.clip import load_clip


@pytest.fixture(scope="module")
def course():
    return load_clip("course", verbose=False)


def test_course_model_classifies_drawn_shapes(course):
    names = ["red circle", "blue square", "green triangle", "yellow star"]
    images = [shapes.draw(*name.split()) for name in names]
    probabilities = zeroshot.classify(course, images, names)
    assert probabilities.shape == (4, 4)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(4), atol=1e-5)
    assert probabilities.argmax(dim=1).tolist() == [0, 1, 2, 3]


def test_an_ensemble_of_one_template_equals_that_template(course):
    image = [shapes.draw("purple", "cross")]
    labels = ["purple cross", "orange diamond"]
    one = zeroshot.classify(course, image, labels, ["a picture of a {}"])
    assert torch.allclose(one, zeroshot.classify(course, image, labels, ("a picture of a {}",)))


@pytest.mark.parametrize("labels, complaint", [([], "at least one"), (["cat", ""], "at least one"),
                                               (["cat", "dog", "cat"], "repeated")])
def test_bad_label_lists_are_refused(course, labels, complaint):
    with pytest.raises(ValueError, match=complaint):
        zeroshot.classify(course, [shapes.draw("red", "circle")], labels)


def test_a_label_longer_than_the_context_is_reported(course):
    long_label = " ".join(["very"] * 40) + " red circle"
    with pytest.warns(UserWarning, match="the rest is cut"):
        zeroshot.classify(course, [shapes.draw("red", "circle")], [long_label, "blue square"])


def test_top_labels_and_confusion_matrix():
    probabilities = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert zeroshot.top_labels(probabilities, ["a", "b", "c"], k=2) == [[("b", 0.7), ("c", 0.2)],
                                                                  [("a", 0.5), ("c", 0.3)]]
    matrix = zeroshot.confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
