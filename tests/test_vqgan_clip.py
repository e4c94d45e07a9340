"""Tests of mmlearn.vqgan_clip: prompts, the loss, cutouts, the loop, saving, and quality.

The pretrained path (open_clip ViT + taming's f16 VQGAN, 256 px on a GPU) cannot run here;
its code path is tested with small random-weight models of the same layouts, loaded
through the same functions (``load_clip(file, model=...)``, ``load_taming_vqgan``).
The quality test runs the course models and asks the independent judge, not CLIP.
"""

import json
import math
import os

import numpy as np
import open_clip
import pytest
import torch
import yaml
from PIL import Image

from mmlearn import judge, shapes, vqgan_clip
from mmlearn.clip import load_clip
from mmlearn.vqgan import load_course_vqgan, load_taming_vqgan, vqgan_from_config
from mmlearn.vqgan_clip import WeightedPrompt, parse_prompts

# ------------------------------------------------------------------------------ prompts


def test_prompts_parse_text_weights_and_negatives():
    assert parse_prompts("a red circle") == [WeightedPrompt("a red circle", 1.0)]
    assert parse_prompts(" a red circle:1 | blue:-0.5 ") == [
        WeightedPrompt("a red circle", 1.0), WeightedPrompt("blue", -0.5)]
    assert parse_prompts("a: b:2")[0] == WeightedPrompt("a: b", 2.0)  # the last colon counts
    assert parse_prompts("x:0 | y:1e-1")[1].weight == pytest.approx(0.1)


@pytest.mark.parametrize("spec, message", [
    ("", "empty"), ("   ", "empty"), (None, "empty"),
    ("a red circle | | blue", "Part 2 .* no text"), (":1", "no text"),
    ("a red circle:heavy", "weight 'heavy'"), ("red:", "weight ''"), ("red:nan", "number"),
    ("red:inf", "number"), ("red:0 | blue:0", "All weights"),
])
def test_malformed_prompts_are_refused_with_advice(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_prompts(spec)


# ------------------------------------------------------------------------------ loss


def test_spherical_distance_is_half_the_squared_angle():
    a = torch.tensor([[1.0, 0.0]])
    for angle in (0.0, 0.3, math.pi / 2, 2.5, math.pi):
        b = torch.tensor([[math.cos(angle), math.sin(angle)]])
        assert vqgan_clip.spherical_distance(a, b).item() == pytest.approx(angle ** 2 / 2, abs=1e-5)


def test_negative_weights_push_away_and_weights_scale():
    torch.manual_seed(0)
    image = torch.randn(4, 8, requires_grad=True)
    target = torch.nn.functional.normalize(torch.randn(1, 8), dim=-1)
    pull = vqgan_clip.prompt_loss(image, target, torch.tensor([1.0]))
    push = vqgan_clip.prompt_loss(image, target, torch.tensor([-0.5]))
    assert push.item() == pytest.approx(-0.5 * pull.item())
    (grad_pull,) = torch.autograd.grad(pull, image)
    (grad_push,) = torch.autograd.grad(push, image)
    assert torch.allclose(grad_push, -0.5 * grad_pull, atol=1e-6)


def test_cutouts_are_random_batched_and_differentiable():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 40, requires_grad=True)
    views = vqgan_clip.make_cutouts(image, 6, vqgan_clip.cutout_transform(24, min_crop=0.5))
    assert views.shape == (6, 3, 24, 24)
    assert not torch.allclose(views[0], views[1])
    views.sum().backward()
    assert image.grad.abs().sum() > 0
    whole = vqgan_clip.make_cutouts(image, 1, vqgan_clip.cutout_transform(40, 1.0, augment=False))
    assert torch.allclose(whole, image, atol=1e-5)  # no crop, no augmentation: the image
    with pytest.raises(ValueError, match="min_crop"):
        vqgan_clip.cutout_transform(24, min_crop=0)


def test_crops_stay_inside_the_picture_and_half_of_the_views_are_mirrored():
    torch.manual_seed(0)
    picture = torch.zeros(1, 3, 32, 32)
    picture[..., :, :8] = 1.0  # a bright band on the left; the rest is dark
    crops = vqgan_clip.make_cutouts(picture + 0.5, 200, vqgan_clip.cutout_transform(32, 0.6,
                                                                                     False))
    assert crops.min() >= 0.5 - 1e-6  # no padding: every crop lies inside the picture
    views = vqgan_clip.make_cutouts(picture, 400, vqgan_clip.cutout_transform(32))
    left, right = views[..., :8].mean(dim=(1, 2, 3)), views[..., -8:].mean(dim=(1, 2, 3))
    assert 0.4 < (right > left).float().mean() < 0.6  # the band moved right: a mirrored view


# ------------------------------------------------------------------------------ the pretrained path

TINY_VIT = {"embed_dim": 32,
            "vision_cfg": {"image_size": 48, "layers": 2, "width": 64, "patch_size": 16},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                         "layers": 1}}
TINY_F16 = {"model": {"target": "taming.models.vqgan.VQModel", "params": {
    "embed_dim": 16, "n_embed": 128,
    "ddconfig": {"double_z": False, "z_channels": 16, "resolution": 64, "in_channels": 3,
                 "out_ch": 3, "ch": 32, "ch_mult": [1, 1, 1, 1, 2], "num_res_blocks": 1,
                 "attn_resolutions": [16], "dropout": 0.0},
    "lossconfig": {"target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator"}}}}


@pytest.fixture(scope="module")
def pretrained_layout(tmp_path_factory):
    """A random ViT CLIP saved as an open_clip state dict and a random f16 taming .ckpt."""
    folder = tmp_path_factory.mktemp("pretrained")
    (folder / "tiny-vit.json").write_text(json.dumps(TINY_VIT))
    open_clip.add_model_config(folder / "tiny-vit.json")
    torch.manual_seed(0)
    torch.save(open_clip.create_model("tiny-vit").state_dict(), folder / "clip.pt")
    (folder / "model.yaml").write_text(yaml.safe_dump(TINY_F16))
    vqgan = vqgan_from_config(folder / "model.yaml")
    torch.save({"state_dict": vqgan.state_dict(), "global_step": 1}, folder / "last.ckpt")
    return (load_clip(folder / "clip.pt", model="tiny-vit"),
            load_taming_vqgan(folder / "last.ckpt", folder / "model.yaml", device="cpu"))


def test_pretrained_layouts_run_through_the_same_code_path(pretrained_layout):
    clip, vqgan = pretrained_layout
    assert vqgan.downsample_factor == 16 and clip.input_size == 48
    seen = []
    result = vqgan_clip.generate("a lighthouse:1 | blurry:-0.3", clip, vqgan, size=64, steps=4,
                               cutouts=3, lr=0.2, frame_every=2,
                               callback=lambda step, image, loss: seen.append(step))
    assert result.image.size == (64, 64) and len(result.frames) == 3 and seen == [0, 2, 4]
    assert len(result.losses) == 4 and all(math.isfinite(x) for x in result.losses)
    start = vqgan_clip.random_latent(vqgan, 64, seed=0)
    assert result.latent.shape == start.shape == (1, 16, 4, 4)
    assert not torch.equal(result.latent, start)  # the gradient reached z
    low, high = vqgan.codebook.min(0).values, vqgan.codebook.max(0).values
    z = result.latent.permute(0, 2, 3, 1)
    assert (z >= low - 1e-6).all() and (z <= high + 1e-6).all()
    with pytest.raises(ValueError, match="multiple of 16"):
        vqgan_clip.generate("a lighthouse", clip, vqgan, size=40, steps=1)


# ------------------------------------------------------------------------------ course models


@pytest.fixture(scope="module")
def course():
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return load_clip("course", verbose=False), load_course_vqgan("cpu")


def test_same_seed_same_picture_and_init_image(course):
    clip, vqgan = course
    first = vqgan_clip.generate("a red star", clip, vqgan, steps=5)
    again = vqgan_clip.generate("a red star", clip, vqgan, steps=5)
    other = vqgan_clip.generate("a red star", clip, vqgan, steps=5, seed=1)
    assert np.array_equal(np.array(first.image), np.array(again.image))
    assert not np.array_equal(np.array(first.image), np.array(other.image))
    picture = shapes.draw("blue", "circle")
    start = vqgan_clip.generate("a red star", clip, vqgan, steps=0, init_image=picture)
    assert judge.judge_images(start.image)[0].color == "blue"  # steps=0: the init picture


def test_several_guides_add_their_losses_and_must_share_an_input_size(course,
                                                                      pretrained_layout):
    clip, vqgan = course
    single = vqgan_clip.generate("a red star", clip, vqgan, steps=3)
    double = vqgan_clip.generate("a red star", [clip, clip], vqgan, steps=3)
    assert double.losses[0] == pytest.approx(2 * single.losses[0], rel=1e-5)
    assert np.array_equal(np.array(double.image), np.array(
        vqgan_clip.generate("a red star", (clip, clip), vqgan, steps=3).image))
    vit, _ = pretrained_layout  # 48 px input; the course CLIP takes 32 px
    with pytest.raises(ValueError, match="different input sizes"):
        vqgan_clip.as_guides([clip, vit])
    with pytest.raises(ValueError, match="at least one CLIP"):
        vqgan_clip.as_guides([])


@pytest.mark.slow
def test_generated_pictures_have_the_prompted_color_and_often_the_shape(course):
    """Six prompts, one per colour and shape, guided by lesson 04's augmented-view CLIP and
    judged without CLIP (the other settings are the GenerationConfig defaults).

    scripts/eval_generation.py measured all 36 prompts x seeds 0-2 with this guide: colour
    106/108, shape 50/108 (0.463), so about 2.8 of these six shapes are expected; they gave
    colour 6/6, shape 3/6 (at 1 and at 2 threads). With the course CLIP as the guide the
    expected count is 1.2 (shape 0.194), too few to tell steering from chance in six pictures.
    A loop that does not steer (lr=0 or steps=0) gave colour 1/6 and shape 0/6.
    """
    _, vqgan = course
    guide = load_clip("course-augmented", verbose=False)
    targets = [(color, shapes.SHAPES[i]) for i, color in enumerate(shapes.COLORS)]
    pictures = [vqgan_clip.generate(f"a {color} {shape}", guide, vqgan).image
                for color, shape in targets]
    rates = judge.hit_rates(judge.judge_images(pictures), targets)
    assert rates["color"] >= 5 / 6, rates
    assert rates["shape"] >= 2 / 6, rates


def test_png_and_gif_are_written_atomically(course, tmp_path):
    clip, vqgan = course
    result = vqgan_clip.generate("a green cross", clip, vqgan, steps=4, frame_every=1)
    png = vqgan_clip.save_png(result.image, tmp_path / "out.png", scale=4)
    gif = vqgan_clip.save_gif(result.frames, tmp_path / "run.gif", scale=2)
    assert Image.open(png).size == (128, 128)
    with Image.open(gif) as animation:
        assert animation.n_frames == 5 and animation.size == (64, 64)
    assert sorted(os.listdir(tmp_path)) == ["out.png", "run.gif"]  # no temporary files left
    with pytest.raises(ValueError, match="PIL images"):
        vqgan_clip.save_gif([], tmp_path / "empty.gif")
