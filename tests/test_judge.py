"""Tests of mmlearn.judge, the check of generated pictures that does not use CLIP."""

import pytest
import torch
from PIL import Image

from mmlearn import judge
from mmlearn.images import float_to_uint8
from mmlearn.shapes import COLORS, SHAPES, ShapeWorld, draw
from mmlearn.vqgan import load_course_vqgan, to_unit_range, to_vqgan_range


def pixels_of(image: Image.Image) -> torch.Tensor:
    return judge.to_judge_size(judge.as_uint8_batch(image))[0]


@pytest.mark.parametrize("color", list(COLORS))
def test_every_shapeworld_color_is_named(color):
    index, share = judge.dominant_color(pixels_of(draw(color, "star", "small")))
    assert judge.COLOR_NAMES[index] == color and 0.01 < share < 0.2


def test_grey_pictures_have_no_color_and_no_shape():
    grey = Image.new("RGB", (32, 32), (40, 40, 40))
    assert judge.dominant_color(pixels_of(grey)) == (None, 0.0)
    verdict = judge.judge_images(grey)[0]
    assert verdict.color is None and verdict.shape is None


def test_largest_component_keeps_one_patch():
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, :2, :2] = True      # 4 pixels
    masks[0, 4:7, 4:7] = True    # 9 pixels: the largest
    masks[1, 1, 1] = masks[1, 2, 2] = True  # diagonal neighbours: one 8-connected patch
    kept = judge.largest_components(masks)
    assert kept[0].sum() == 9 and kept[0, 5, 5] and not kept[0, 0, 0]
    assert kept[1].sum() == 2


def test_silhouettes_ignore_position_and_size():
    small = pixels_of(draw("red", "triangle", "small", "left"))
    big = pixels_of(draw("green", "triangle", "big", "bottom"))
    masks, found = judge.silhouettes(torch.stack([small, big]), torch.tensor([0, 1]))
    assert found.all() and masks.shape == (2, 1, 32, 32)
    assert (masks[0] - masks[1]).abs().mean() < 0.05


@pytest.fixture(scope="module")
def held_out():
    return ShapeWorld(300, "all", seed=7)


@pytest.mark.slow
def test_judge_knows_held_out_shapeworld_and_vqgan_reconstructions(held_out):
    targets = [(o[0]["color"], o[0]["shape"]) for o in held_out.objects]
    clean = judge.hit_rates(judge.judge_images(held_out.images), targets)
    assert clean["color"] == 1.0 and clean["shape"] >= 0.98
    vqgan = load_course_vqgan("cpu")
    with torch.no_grad():
        rebuilt = to_unit_range(vqgan.reconstruct(to_vqgan_range(held_out.images.float() / 255)))
    rebuilt = judge.hit_rates(judge.judge_images(float_to_uint8(rebuilt)), targets)
    assert rebuilt["color"] >= 0.98 and rebuilt["shape"] >= 0.95


def test_larger_pictures_are_judged_too():
    picture = draw("purple", "cross", "big", "center", resolution=96)
    verdict = judge.judge_images(picture)[0]
    assert (verdict.color, verdict.shape) == ("purple", "cross")
    assert verdict.shape_probability > 0.9


def test_a_shapeless_smear_is_a_blob_unless_the_judge_must_pick_a_shape():
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    worm = ((yy - 16 - 6 * torch.sin(xx / 3)).abs() < 2.5) & (xx > 3) & (xx < 29)
    picture = torch.where(worm, torch.tensor([225, 40, 40]).view(3, 1, 1), torch.tensor(30))
    strict = judge.judge_images(picture.byte())[0]
    assert (strict.color, strict.shape) == ("red", "blob")
    lenient = judge.judge_images(picture.byte(), strict=False)[0]
    assert lenient.shape in SHAPES


def test_hit_rates_and_bad_input():
    verdicts = [judge.Verdict("red", "star"), judge.Verdict("red", "blob"),
                judge.Verdict(None, None), judge.Verdict("blue", "circle")]
    targets = [("red", "star"), ("red", "star"), ("red", "star"), ("red", "circle")]
    assert judge.hit_rates(verdicts, targets) == {"color": 0.5, "shape": 0.5, "both": 0.25,
                                                  "n": 4}
    with pytest.raises(ValueError, match="one"):
        judge.hit_rates(verdicts, targets[:2])
    with pytest.raises(ValueError, match="uint8"):
        judge.judge_images(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="N, 3, H, W"):
        judge.judge_images(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
