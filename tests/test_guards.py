"""Inputs that once gave a wrong answer or a crash from deep inside NumPy or torch (issue 24):
each now gets a ValueError or TypeError from mmlearn that names the argument."""

import numpy as np
import pytest

from mmlearn import checks, config, shapes, zeroshot
from mmlearn.clip import load_clip


@pytest.fixture(scope="module")
def course_clip():
    return load_clip("course", device="cpu")


@pytest.mark.parametrize("seed", [np.int64(3), np.uint32(7), 0, 2**32 - 1])
def test_numpy_integers_and_the_whole_range_are_seeds(seed):
    config.seed_everything(seed)
    assert len(shapes.ShapeWorld(2, seed=seed)) == 2


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40])
def test_seeds_no_generator_takes_are_refused_by_name(seed):
    with pytest.raises(ValueError, match="seed must be between 0 and 2\\*\\*32 - 1"):
        config.seed_everything(seed)
    with pytest.raises(ValueError, match="seed must be between"):
        shapes.ShapeWorld(2, seed=seed)


@pytest.mark.parametrize("seed", [1.5, "3", True, None])
def test_a_seed_must_be_a_whole_number(seed):
    with pytest.raises(TypeError, match="seed must be a whole number"):
        config.seed_everything(seed)


def test_a_set_of_labels_is_refused_because_it_has_no_order(course_clip):
    picture = shapes.draw("red", "circle")
    with pytest.raises(TypeError, match="not a set"):
        zeroshot.classify(course_clip, [picture], {"red circle", "blue square"})
    with pytest.raises(TypeError, match="not a set"):
        checks.texts(frozenset({"a"}), "labels", "a red circle")


@pytest.mark.parametrize("n, resolution", [(4, 10**5), (1, 2048)])
def test_a_picture_too_big_for_any_kernel_is_refused(n, resolution):
    with pytest.raises(ValueError, match="at most 1024 px"):
        shapes.ShapeWorld(n, resolution=resolution)


def test_a_data_set_too_big_for_a_binder_kernel_is_refused_unless_asked_for():
    with pytest.raises(ValueError, match="max_bytes=4915200000"):
        shapes.ShapeWorld(400_000, resolution=64)
    small_budget = 3 * 32 * 32 * 3
    assert len(shapes.ShapeWorld(3, resolution=32, max_bytes=small_budget)) == 3
    with pytest.raises(ValueError, match="more than the"):
        shapes.ShapeWorld(4, resolution=32, max_bytes=small_budget)
