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


# ---- issue 24, second pass: the guards of what the lessons call directly


class _Models:
    """The models the table below needs, each loaded once (smallest sizes)."""

    def __init__(self, clip):
        from mmlearn import dalle, diffusion
        from mmlearn.vqgan import load_course_vqgan
        self.clip = clip
        self.vqgan = load_course_vqgan("cpu")
        self.dalle = dalle.new_dalle(seed=0, width=16, layers=1, heads=2).eval()
        self.unet = diffusion.TinyUNet(in_channels=16, widths=(8, 16), cond_dim=64, emb_dim=16)
        self.schedule = diffusion.cosine_schedule(50)
        self.index = None


@pytest.fixture(scope="module")
def models(course_clip):
    return _Models(course_clip)


def _latent(m, batch=1):
    return torch.zeros(batch, m.vqgan.embed_dim, 2, 2)


def _x(batch=2):
    return torch.zeros(batch, 16, 8, 8)


def _t(batch=2):
    return torch.full((batch,), 10)


def _index(m):
    from mmlearn.search import ImageIndex
    if m.index is None:
        m.index = ImageIndex.build(m.clip, [shapes.draw("red", "circle")], progress=False)
    return m.index


def _dalle_call(name):
    from mmlearn import dalle
    return getattr(dalle, name)


def _module(name):
    import importlib
    return importlib.import_module(f"mmlearn.{name}")


# (what, call(models), error, pattern the message must match: it names the argument)
BAD_CALLS = [
    # clip, config
    ("clip.normalize uint8",
     lambda m: m.clip.normalize(torch.zeros(1, 3, 32, 32, dtype=torch.uint8)),
     TypeError, "images must be a float tensor"),
    ("clip.normalize channels last", lambda m: m.clip.normalize(torch.zeros(1, 32, 32, 3)),
     ValueError, "images must have 3 colour channels"),
    ("config.describe_device", lambda m: config.describe_device(3), TypeError, "device must be"),
    # diffusion
    ("cosine_schedule steps", lambda m: _module("diffusion").cosine_schedule(0), ValueError,
     "steps must be at least 1"),
    ("cosine_schedule end", lambda m: _module("diffusion").cosine_schedule(10, end=2.0),
     ValueError, "end must be a finite number"),
    ("add_noise float t", lambda m: _module("diffusion").add_noise(
        _x(), torch.full((2,), 10.0), _x(), m.schedule), TypeError, "t must be an integer tensor"),
    ("add_noise noise shape", lambda m: _module("diffusion").add_noise(
        _x(), _t(), _x(3), m.schedule), ValueError, "noise must be a float tensor .*shape"),
    ("add_noise t per sample", lambda m: _module("diffusion").add_noise(
        _x(), _t(3), _x(), m.schedule), ValueError, "t must hold one time per sample"),
    ("add_noise int t past the end", lambda m: _module("diffusion").add_noise(
        _x(), 50, _x(), m.schedule), ValueError, "t must be a time from 0 to 49"),
    ("add_noise schedule", lambda m: _module("diffusion").add_noise(_x(), _t(), _x(), 50),
     TypeError, "schedule must be a Schedule"),
    ("add_noise uint8 x0", lambda m: _module("diffusion").add_noise(
        _x().byte(), _t(), _x(), m.schedule), TypeError, "x0 must be a float tensor"),
    ("predict_x0 eps", lambda m: _module("diffusion").predict_x0(
        _x(), torch.zeros(2, 16, 4, 4), _t(), m.schedule), ValueError, "eps must be"),
    ("ddim_step t_prev", lambda m: _module("diffusion").ddim_step(
        _x(), _x(), _t(), [9, 9], m.schedule), TypeError, "t_prev"),
    ("ddim_step clip_x0", lambda m: _module("diffusion").ddim_step(
        _x(), _x(), _t(), _t() - 1, m.schedule, clip_x0=-1), ValueError, "clip_x0"),
    ("ddpm_step noise", lambda m: _module("diffusion").ddpm_step(
        _x(), _x(), _t(), _t() - 1, m.schedule, None), TypeError, "noise must be a float tensor"),
    ("diffusion_loss cond", lambda m: _module("diffusion").diffusion_loss(
        m.unet, _x(), torch.zeros(3, 64), m.schedule), ValueError, "cond and the pictures"),
    ("diffusion_loss cond_dim", lambda m: _module("diffusion").diffusion_loss(
        m.unet, _x(), torch.zeros(2, 32), m.schedule), ValueError, r"cond must be .*\[B, 64\]"),
    ("diffusion_loss channels", lambda m: _module("diffusion").diffusion_loss(
        m.unet, torch.zeros(2, 3, 8, 8), None, m.schedule), ValueError, "x0 must be"),
    ("diffusion_loss p_uncond", lambda m: _module("diffusion").diffusion_loss(
        m.unet, _x(), None, m.schedule, p_uncond=2), ValueError, "p_uncond"),
    ("guided_noise scale", lambda m: _module("diffusion").guided_noise(
        m.unet, _x(), _t(), torch.zeros(2, 64), float("nan")), ValueError, "scale must be"),
    ("guided_noise cond", lambda m: _module("diffusion").guided_noise(
        m.unet, _x(), _t(), torch.zeros(2, 7), 3.0), ValueError, "cond must be"),
    ("guided_noise model", lambda m: _module("diffusion").guided_noise(
        None, _x(), _t(), torch.zeros(2, 64), 3.0), TypeError, "model must be a denoiser"),
    # vqgan
    ("to_vqgan_range uint8", lambda m: _module("vqgan").to_vqgan_range(
        shapes.ShapeWorld(1).images), TypeError, "images must be a float tensor"),
    ("to_unit_range list", lambda m: _module("vqgan").to_unit_range([0.5]), TypeError,
     "images must be a float tensor"),
    ("VQGAN.encode channels", lambda m: m.vqgan.encode(torch.zeros(1, 1, 32, 32)), ValueError,
     "x must be a float tensor"),
    ("VQGAN.decode embed_dim", lambda m: m.vqgan.decode(torch.zeros(1, 3, 2, 2)), ValueError,
     "z_q must be a float tensor"),
    ("VQGAN.nearest_codes 3-D", lambda m: m.vqgan.nearest_codes(torch.zeros(16, 2, 2)),
     ValueError, "z must be a float tensor"),
    ("VQGAN.decode_indices float", lambda m: m.vqgan.decode_indices(torch.zeros(1, 2, 2)),
     TypeError, "indices must be an integer tensor"),
    ("VQGAN.reconstruct uint8", lambda m: m.vqgan.reconstruct(shapes.ShapeWorld(1).images),
     TypeError, "x must be a float tensor"),
    ("reconstruction_report float", lambda m: _module("vqgan").reconstruction_report(
        m.vqgan, torch.zeros(1, 3, 32, 32)), TypeError, "images must be an integer tensor"),
    ("reconstruction_report batch_size", lambda m: _module("vqgan").reconstruction_report(
        m.vqgan, shapes.ShapeWorld(1).images, batch_size=0), ValueError, "batch_size"),
    ("code_footprints size", lambda m: _module("vqgan").code_footprints(
        m.vqgan, torch.zeros(1, 3, 30, 30, dtype=torch.uint8)), ValueError, "multiple of 4"),
    ("codebook_grid_image order", lambda m: _module("vqgan").codebook_grid_image(
        torch.zeros(4, 3, 4, 4), order=torch.arange(3)), ValueError, "order"),
    # vqgan_clip
    ("spherical_distance D", lambda m: _module("vqgan_clip").spherical_distance(
        torch.zeros(2, 8), torch.zeros(2, 4)), ValueError, "a and b must be embeddings"),
    ("spherical_distance int", lambda m: _module("vqgan_clip").spherical_distance(
        torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8)), TypeError, "a must be a float"),
    ("prompt_loss weights", lambda m: _module("vqgan_clip").prompt_loss(
        torch.zeros(4, 8), torch.zeros(2, 8), torch.ones(3)), ValueError, "weights must hold"),
    ("prompt_loss targets", lambda m: _module("vqgan_clip").prompt_loss(
        torch.zeros(4, 8), torch.zeros(2, 6), torch.ones(2)), ValueError, "targets must have"),
    ("clamp_to_codebook", lambda m: _module("vqgan_clip").clamp_to_codebook(
        torch.zeros(1, 3, 2, 2), m.vqgan), ValueError, "z must be a float tensor"),
    ("decode_latent", lambda m: _module("vqgan_clip").decode_latent(m.vqgan, torch.zeros(4)),
     ValueError, "z must be a float tensor"),
    ("generation_step no grad", lambda m: _module("vqgan_clip").generation_step(
        _latent(m), None, [m.clip], m.vqgan, [], None, 4), ValueError, "z must require"),
    ("generation_step targets", lambda m: _module("vqgan_clip").generation_step(
        _latent(m).requires_grad_(True), torch.optim.Adam([torch.zeros(1, requires_grad=True)]),
        [m.clip], m.vqgan, [], lambda x: x, 4), ValueError, "guides and targets"),
    # unclip
    ("vqgan_latents float", lambda m: _module("unclip").vqgan_latents(
        m.vqgan, torch.zeros(1, 3, 32, 32)), TypeError, "images must be an integer tensor"),
    ("decode_latents", lambda m: _module("unclip").decode_latents(m.vqgan, torch.zeros(1, 3, 2, 2)),
     ValueError, "latents must be a float tensor"),
    ("slerp batches", lambda m: _module("unclip").slerp(torch.zeros(2, 4), torch.zeros(2, 4), 0.5),
     ValueError, "a and b must be one embedding each"),
    ("slerp weights", lambda m: _module("unclip").slerp(torch.ones(4), torch.ones(4), "0.5"),
     TypeError, "weights must be"),
    ("train_decoder cond", lambda m: _module("unclip").train_decoder(
        m.unet, _x(), torch.zeros(3, 64), _module("unclip").DecoderConfig()), ValueError,
     "latents and cond"),
    ("train_decoder seed", lambda m: _module("unclip").train_decoder(
        m.unet, _x(), torch.zeros(2, 64), _module("unclip").DecoderConfig(), seed=-1),
     ValueError, "seed must be"),
    # dalle
    ("TinyDalle.embed_text float", lambda m: m.dalle.embed_text(torch.zeros(1, 12)), TypeError,
     "text must be an integer tensor"),
    ("TinyDalle.embed_text long", lambda m: m.dalle.embed_text(torch.zeros(1, 13).long()),
     ValueError, "text has 13 positions"),
    ("TinyDalle.embed_image start", lambda m: m.dalle.embed_image(torch.zeros(1, 1).long(),
                                                                  start=64),
     ValueError, "image has 1 positions, more than the 0"),
    ("TinyDalle.transform width", lambda m: m.dalle.transform(torch.zeros(1, 3, 8)), ValueError,
     "x must be a float tensor"),
    ("TinyDalle.transform caches", lambda m: m.dalle.transform(torch.zeros(1, 3, 16),
                                                               [None, None]),
     TypeError, "caches must be"),
    ("WordTokenizer.decode id", lambda m: m.dalle.tokenizer.decode([999]), ValueError,
     "ids holds 999"),
    ("WordTokenizer.decode str", lambda m: m.dalle.tokenizer.decode("a red circle"), TypeError,
     "ids must be a list"),
    ("causal_mask", lambda m: _dalle_call("causal_mask")(-1), ValueError, "length must be"),
    ("causal_mask huge", lambda m: _dalle_call("causal_mask")(10**6), ValueError,
     "causal mask .* max_bytes"),
    ("dalle_loss image", lambda m: _dalle_call("dalle_loss")(
        m.dalle, torch.zeros(2, 12).long(), torch.zeros(2, 63).long(), 0), ValueError,
     "image must be"),
    ("dalle_loss batch", lambda m: _dalle_call("dalle_loss")(
        m.dalle, torch.zeros(2, 12).long(), torch.zeros(3, 64).long(), 0), ValueError,
     "text and image"),
    ("decode_tokens float", lambda m: _dalle_call("decode_tokens")(m.vqgan, torch.zeros(1, 64)),
     TypeError, "tokens must be an integer tensor"),
    ("decode_tokens not square", lambda m: _dalle_call("decode_tokens")(
        m.vqgan, torch.zeros(1, 60).long()), ValueError, "tokens must be N >= 1 square"),
    ("new_dalle seed", lambda m: _dalle_call("new_dalle")(seed=-1), ValueError, "seed must be"),
    ("new_dalle size name", lambda m: _dalle_call("new_dalle")(widht=16), TypeError,
     "Unknown size: 'widht' .did you mean 'width'"),
    ("new_dalle heads", lambda m: _dalle_call("new_dalle")(width=10, heads=4), ValueError,
     "width must be a multiple of heads"),
    ("new_dalle huge", lambda m: _dalle_call("new_dalle")(width=10**5), ValueError, "max_bytes"),
    # evaluation, judge, losses
    ("color_shape_prompts", lambda m: _module("evaluation").color_shape_prompts([("red", "cirle")]),
     ValueError, "Unknown shape 'cirle'"),
    ("color_shape_prompts empty", lambda m: _module("evaluation").color_shape_prompts([]),
     TypeError, "combos must be a non-empty list"),
    ("dalle_hit_rates prompts", lambda m: _module("evaluation").dalle_hit_rates(
        m.dalle, m.vqgan, m.clip, ["hello"]), ValueError, r"prompts\[0\]"),
    ("dalle_hit_rates keep", lambda m: _module("evaluation").dalle_hit_rates(
        m.dalle, m.vqgan, m.clip, ["a red circle"], keep=0), ValueError, "keep"),
    ("unclip_hit_rates judge", lambda m: _module("evaluation").unclip_hit_rates(
        None, ["a red circle"], judge="mine"), TypeError, "judge must be a function"),
    ("judge_images empty", lambda m: _module("judge").judge_images([]), ValueError,
     "images is empty"),
    ("judge_images float", lambda m: _module("judge").judge_images(torch.zeros(1, 3, 32, 32)),
     ValueError, "images is a float32 tensor"),
    ("judge_images strict", lambda m: _module("judge").judge_images(
        shapes.ShapeWorld(1).images, strict="no"), TypeError, "strict must be True or False"),
    ("similarity_matrix D", lambda m: _module("losses").similarity_matrix(
        torch.zeros(2, 4), torch.zeros(2, 5)), ValueError, "image_features and text_features"),
    ("similarity_matrix 1-D", lambda m: _module("losses").similarity_matrix(
        torch.zeros(4), torch.zeros(2, 4)), ValueError, r"image_features must be .*v\[None\]"),
    ("same_caption str", lambda m: _module("losses").same_caption("a red circle"), TypeError,
     "captions must be a list"),
    # search, shapes, train
    ("ImageIndex.image negative", lambda m: _index(m).image(-1), ValueError,
     "id must be an item of the index, from 0 to 0"),
    ("ImageIndex.hit float id", lambda m: _index(m).hit(0.5, 1.0), TypeError,
     "id must be a whole number"),
    ("with_articles", lambda m: shapes.with_articles(None), TypeError, "text must be a string"),
    ("ShapeWorld.grid", lambda m: shapes.ShapeWorld(2).grid(n=0), ValueError, "n must be"),
    ("ShapeWorld.grid scale", lambda m: shapes.ShapeWorld(2).grid(scale=10**5), ValueError,
     "max_bytes"),
    ("ShapeWorld.show", lambda m: shapes.ShapeWorld(2).show(columns=0), ValueError,
     "columns must be"),
    ("palette", lambda m: shapes.palette(1.5), TypeError, "scale must be a whole number"),
    ("learning_rate", lambda m: _module("train").learning_rate(-1, _module("train").TrainConfig()),
     ValueError, "step must be at least 0"),
    ("tokenize_once", lambda m: _module("train").tokenize_once(m.clip.tokenizer, "a red circle"),
     TypeError, "captions must be a list"),
    ("evaluate", lambda m: _module("train").evaluate(m.clip.model, m.clip.tokenizer, [1]),
     TypeError, "sets must be a dict"),
    ("held_out_sets", lambda m: _module("train").held_out_sets(0), ValueError, "n .*positive"),
    ("random_batches", lambda m: _module("train").random_batches(10, 0), ValueError,
     "batch_size must be at least 1"),
    # viz, widgets, zeroshot
    ("viz.image_grid floats", lambda m: _module("viz").image_grid(torch.rand(2, 3, 8, 8)),
     ValueError, "float_to_uint8"),
    ("viz.image_grid channels last", lambda m: _module("viz").image_grid(
        torch.zeros(2, 8, 8, 3, dtype=torch.uint8)), ValueError, "images must be pictures"),
    ("viz.image_grid titles", lambda m: _module("viz").image_grid(
        shapes.ShapeWorld(2).images, ["one"]), ValueError, "titles must hold one label"),
    ("viz.similarity_heatmap", lambda m: _module("viz").similarity_heatmap(torch.zeros(4)),
     ValueError, "similarity must be an N x M matrix"),
    ("viz.probability_bars", lambda m: _module("viz").probability_bars(["a", "b"], [0.5]),
     ValueError, "labels must hold one label per probability"),
    ("viz.temperature_effect", lambda m: _module("viz").temperature_effect([0.3, 0.2], [0.1, 0]),
     ValueError, "temperatures must be finite numbers above 0"),
    ("viz.training_curves", lambda m: _module("viz").training_curves([1.0, 0.5]), TypeError,
     "history must be what train.train returns"),
    ("viz.token_grid", lambda m: _module("viz").token_grid(torch.zeros(3, 8, 8), torch.zeros(64),
                                                           torch.zeros(3, 8, 8)),
     ValueError, "tokens must be one grid"),
    ("viz.causal_mask", lambda m: _module("viz").causal_mask(torch.ones(3, 4)), ValueError,
     "mask must be square"),
    ("widgets.search_box", lambda m: _module("widgets").search_box("a red circle"), TypeError,
     "search must be a function"),
    ("widgets.show_search k", lambda m: _module("widgets").show_search(_index(m), "red", k=0),
     ValueError, "k must be at least 1"),
    ("widgets.show_search index", lambda m: _module("widgets").show_search([], "red"),
     TypeError, "index must be an ImageIndex"),
    ("widgets.zero_shot_demo", lambda m: _module("widgets").zero_shot_demo(
        "classify", {"circle": shapes.draw("red", "circle")}), TypeError,
     "classify must be a function"),
    ("widgets.zero_shot_demo images", lambda m: _module("widgets").zero_shot_demo(
        lambda image, labels: [1.0], [shapes.draw("red", "circle")]), TypeError,
     "images must be a dict"),
    ("zeroshot.confusion_matrix range", lambda m: zeroshot.confusion_matrix(
        torch.tensor([0, 5]), torch.tensor([0, 1]), 3), ValueError,
     "predictions must hold class indices from 0 to 2"),
    ("zeroshot.confusion_matrix lengths", lambda m: zeroshot.confusion_matrix(
        torch.tensor([0, 1]), torch.tensor([0]), 3), ValueError, "predictions and targets"),
    ("zeroshot.plain_prompt", lambda m: zeroshot.plain_prompt(3), TypeError,
     "classname must be a string"),
]


@pytest.mark.parametrize("call, error, message", [row[1:] for row in BAD_CALLS],
                         ids=[row[0] for row in BAD_CALLS])
def test_a_bad_argument_is_refused_by_name(models, call, error, message):
    with pytest.raises(error, match=message) as raised:
        call(models)
    # Raised by mmlearn's own guard, not by torch or NumPy from deep inside.
    assert "/mmlearn/" in raised.traceback[-1].path.as_posix()


def test_the_guards_let_the_lessons_calls_through(models):
    """What the lessons pass (times as Python ints or tensors, one time for all, a [1, D]
    embedding for slerp, more titles than pictures) still works as before."""
    from mmlearn import diffusion, unclip, viz, vqgan_clip
    s, x = models.schedule, _x()
    assert torch.equal(diffusion.add_noise(x, 10, x, s), diffusion.add_noise(x, _t(), x, s))
    assert torch.equal(diffusion.add_noise(x, torch.tensor([10]), x, s),
                       diffusion.add_noise(x, _t(), x, s))
    assert torch.equal(diffusion.ddpm_step(x, x, _t(), -1, s, x),
                       diffusion.ddpm_step(x, x, _t(), torch.full((2,), -1), s, x))
    a = torch.nn.functional.normalize(torch.randn(1, 8), dim=-1)
    assert unclip.slerp(a, -a.flip(1), torch.linspace(0, 1, 3)).shape == (3, 8)
    distances = vqgan_clip.spherical_distance(torch.zeros(4, 1, 8), torch.zeros(1, 2, 8))
    assert distances.shape == (4, 2)
    viz.image_grid(shapes.ShapeWorld(2).images, ["one", "two", "three"])
    viz.image_grid(shapes.ShapeWorld(2).images.float())  # floats in 0..255 show as before
    import matplotlib.pyplot as plt
    plt.close("all")


@pytest.mark.parametrize("word, suggestion", [
    ("rèd", "red"), ("stpes", "steps"), ("circl", "circle"), ("trinagle", "triangle"),
    ("pink", None),      # shares 'in' with "in", but no typo makes 'pink' of 'in'
    ("zzz", None),
])
def test_a_suggestion_is_a_likely_typo_not_any_word_sharing_letters(word, suggestion):
    vocabulary = ["red", "steps", "circle", "triangle", "in", "a", "at", "the"]
    assert checks.close_match(word, vocabulary) == suggestion
