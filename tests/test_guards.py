"""Inputs that once gave a wrong answer or a crash from deep inside NumPy or torch (issue 24):
each now gets a ValueError or TypeError from mmlearn that names the argument."""

import numpy as np
import pytest
import torch

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


# ---- found while writing and running tests/test_properties.py (issue 24, second part)


@pytest.fixture(scope="module")
def tiny_dalle_and_vqgan():
    from mmlearn import dalle
    from mmlearn.vqgan import load_course_vqgan
    return dalle.new_dalle(seed=0, width=16, layers=1, heads=2).eval(), load_course_vqgan("cpu")


@pytest.mark.parametrize("temperature", [1e-45, 1e-5, 1e6])
def test_a_temperature_too_small_or_large_to_sample_is_refused(tiny_dalle_and_vqgan, temperature):
    from mmlearn import dalle
    model, vqgan = tiny_dalle_and_vqgan
    with pytest.raises(ValueError, match="temperature must be a finite number from 0.001"):
        dalle.sample(model, vqgan, "a red circle", n=1, temperature=temperature)


def test_numpy_numbers_are_dalle_settings(tiny_dalle_and_vqgan):
    from mmlearn import dalle
    model, vqgan = tiny_dalle_and_vqgan
    drawn = dalle.sample(model, vqgan, "a red circle", n=np.int64(2), temperature=np.float32(0.7),
                         top_k=np.int32(5), seed=np.uint32(1))
    assert drawn.images.shape == (2, 3, 32, 32)


def test_too_many_dalle_samples_at_once_are_refused_unless_asked_for(tiny_dalle_and_vqgan):
    from mmlearn import dalle
    model, vqgan = tiny_dalle_and_vqgan
    with pytest.raises(ValueError, match=r"Sampling 1 x 10000000 images .* max_bytes="):
        dalle.sample(model, vqgan, "a red circle", n=10**7)
    with pytest.raises(ValueError, match="more than the"):
        dalle.sample(model, vqgan, "a red circle", n=3, max_bytes=100)
    needed = dalle.sampling_bytes(model, 3)
    assert len(dalle.sample(model, vqgan, "a red circle", n=3, max_bytes=needed).images) == 3


@pytest.mark.parametrize("prompt", ["a red\ncircle", "a\tred\r\ncircle", "a red\u2003circle",
                                    "a\vred circle"])
def test_any_whitespace_separates_words_in_a_dalle_prompt(tiny_dalle_and_vqgan, prompt):
    model, _ = tiny_dalle_and_vqgan
    assert model.tokenizer.words(prompt) == ["a", "red", "circle"]
    assert model.tokenizer.unknown_words(prompt) == []


@pytest.mark.parametrize("setting, message", [({"size": 4096}, "size=4096 with cutouts=16"),
                                              ({"cutouts": 10**6}, "cutouts=1000000")])
def test_vqgan_clip_refuses_what_no_kernel_holds(course_clip, setting, message):
    from mmlearn import vqgan_clip
    from mmlearn.vqgan import load_course_vqgan
    with pytest.raises(ValueError, match=f"{message} would take .* GiB.*max_bytes="):
        vqgan_clip.generate("a red star", course_clip, load_course_vqgan("cpu"), steps=0,
                            **setting)


def test_vqgan_clip_takes_numpy_sizes_and_goes_past_the_limit_when_asked(course_clip):
    from mmlearn import vqgan_clip
    from mmlearn.vqgan import load_course_vqgan
    vqgan = load_course_vqgan("cpu")
    result = vqgan_clip.generate("a red star", course_clip, vqgan, steps=0, size=np.int64(16),
                                 max_bytes=2**40)
    assert result.image.size == (16, 16)
    with pytest.raises(ValueError, match="more than the 0.0 GiB allowed"):
        vqgan_clip.generate("a red star", course_clip, vqgan, steps=0, max_bytes=1000)


def test_a_template_that_pushes_the_label_past_the_context_is_refused(course_clip):
    long_template = ("a very long template that pushes the label far past the end of what "
                     "the text encoder reads {}")
    picture = shapes.draw("red", "circle")
    with pytest.raises(ValueError, match="the same tokens: the text encoder reads only 20"):
        zeroshot.classify(course_clip, [picture], ["red circle", "blue star"], [long_template])
    with pytest.raises(ValueError, match="the same tokens"):
        zeroshot.build_classifier(course_clip.model, course_clip.tokenizer,
                                  ["red circle", "blue star"], [long_template])


def test_a_template_that_is_cut_after_the_label_warns(course_clip):
    template = ("a {} drawn on a dark background in the middle of a small square picture, "
                "seen from far away on a grey day")
    with pytest.warns(UserWarning, match="the text encoder reads only the first 20"):
        zeroshot.classify(course_clip, [shapes.draw("red", "circle")],
                          ["red circle", "blue star"], [template])


def test_dataset_accuracy_refuses_class_names_that_do_not_number_its_labels(course_clip):
    data = shapes.ShapeWorld(4)
    with pytest.raises(ValueError, match="shapes.CLASSES .36 names.*classnames has 2"):
        zeroshot.dataset_accuracy(course_clip.model, course_clip.tokenizer, data,
                                  ["red circle", "blue star"])
    images = zeroshot.to_model_input(data.images, course_clip.model)
    with pytest.raises(ValueError, match="each label must index classnames"):
        zeroshot.accuracy(course_clip.model, course_clip.tokenizer, images,
                          torch.tensor([0, 1, 2, 35]), ["red circle", "blue star"])


def test_predict_proba_refuses_raw_pixels(course_clip):
    classifier = zeroshot.build_classifier(course_clip.model, course_clip.tokenizer,
                                           ["red circle", "blue star"])
    raw = shapes.ShapeWorld(2).images.float()
    with pytest.raises(ValueError, match="looks like raw pixels"):
        zeroshot.predict_proba(course_clip.model, raw, classifier)
    with pytest.raises(TypeError, match="N x 3 x H x W"):
        zeroshot.predict_proba(course_clip.model, raw[0], classifier)


@pytest.mark.parametrize("picture", [np.zeros((5, 7, 3), np.uint8), torch.zeros(3, 5, 7), None])
def test_to_rgb_names_what_to_do_with_an_array(picture):
    from mmlearn import images
    with pytest.raises(TypeError, match="must be a PIL image.*Image.fromarray"):
        images.to_rgb(picture)
    with pytest.raises(TypeError, match="must be a PIL image"):
        images.to_uint8_tensor(picture)


# ---- what the long Hypothesis profile found (kept as explicit regressions)


def test_a_float16_or_float64_preprocessed_batch_is_embedded_like_float32(course_clip):
    batch = torch.zeros(2, 3, 32, 32)
    expected = course_clip.encode_images(batch)
    for dtype in (torch.float16, torch.float64):
        assert torch.allclose(course_clip.encode_images(batch.to(dtype)), expected, atol=1e-3)


@pytest.mark.parametrize("images, error, message", [
    (torch.zeros(3, 5, 7), ValueError, "must be N x 3 x 32 x 32"),
    (None, TypeError, "list of PIL images"),
    (np.zeros((), np.uint8), TypeError, "NumPy array.*Image.fromarray"),
    (np.zeros((5, 7, 3), np.uint8), TypeError, "NumPy array"),
])
def test_encode_images_names_what_it_takes(course_clip, images, error, message):
    with pytest.raises(error, match=message):
        course_clip.encode_images(images)


@pytest.mark.parametrize("source", [np.zeros((), np.uint8), torch.zeros(2, 3, 32, 32)])
def test_an_array_is_not_a_source_of_an_index(course_clip, source):
    from mmlearn.search import ImageIndex
    with pytest.raises(TypeError, match="Cannot index a .*add_vectors"):
        ImageIndex.build(course_clip, source, progress=False)


@pytest.mark.parametrize("query", [np.zeros(()), torch.zeros(1, 3, 32, 32),
                                   np.zeros(64, np.complex64)])
def test_a_query_array_that_is_not_vectors_is_refused(course_clip, query):
    from mmlearn.search import ImageIndex
    index = ImageIndex.build(course_clip, [shapes.draw("red", "circle")], progress=False)
    with pytest.raises(ValueError, match=r"one real vector \[D\] or a batch"):
        index.search(query)


def test_an_init_image_with_other_than_three_channels_is_refused(course_clip):
    from mmlearn import vqgan_clip
    from mmlearn.vqgan import load_course_vqgan
    with pytest.raises(ValueError, match=r"uint8 tensor \[3, H, W\]; got .* shape \(5, 7, 1\)"):
        vqgan_clip.generate("a red star", course_clip, load_course_vqgan("cpu"), steps=0,
                            init_image=torch.zeros(5, 7, 1, dtype=torch.uint8))
