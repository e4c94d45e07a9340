"""ShapeWorld: seeded, captioned, with held-out colour x shape combinations."""

import numpy as np
import pytest
import torch
from PIL import Image

from mmlearn import shapes


def test_vocabulary_and_classes():
    assert len(shapes.COLORS) >= 6 and len(shapes.SHAPES) >= 5 and len(shapes.SIZES) == 2
    assert len(shapes.CLASSES) == len(shapes.COLORS) * len(shapes.SHAPES)
    assert sorted(shapes.SEEN_CLASSES + shapes.UNSEEN_CLASSES) == sorted(shapes.CLASSES)
    assert shapes.CLASSES[0] == f"{next(iter(shapes.COLORS))} {shapes.SHAPES[0]}"


def test_held_out_combinations_cover_every_color_and_shape():
    held_colors = {c for c, _ in shapes.HELD_OUT}
    held_shapes = {s for _, s in shapes.HELD_OUT}
    assert held_colors == set(shapes.COLORS) and held_shapes == set(shapes.SHAPES)
    assert 0.15 <= len(shapes.HELD_OUT) / len(shapes.CLASSES) <= 0.25


def test_same_seed_same_bytes_and_items_do_not_depend_on_each_other():
    a = shapes.ShapeWorld(40, seed=3, max_objects=2)
    b = shapes.ShapeWorld(40, seed=3, max_objects=2)
    assert torch.equal(a.images, b.images) and a.captions == b.captions
    first = shapes.ShapeWorld(10, seed=3, max_objects=2)  # a shorter set is a prefix
    assert torch.equal(first.images, a.images[:10]) and first.captions == a.captions[:10]
    image, caption, _ = shapes.make_item(25, "train", seed=3, max_objects=2)
    assert np.array_equal(image, a.images[25].permute(1, 2, 0).numpy())
    assert caption == a.captions[25]
    other = shapes.ShapeWorld(40, seed=4, max_objects=2)
    assert not torch.equal(other.images, a.images)


def _combos(data):
    return {(o["color"], o["shape"]) for objects in data.objects for o in objects}


def test_splits_hold_out_the_right_combinations():
    train = shapes.ShapeWorld(1500, "train", max_objects=3)
    assert not _combos(train) & shapes.HELD_OUT
    assert len(_combos(train)) == len(shapes.SEEN_CLASSES)  # and every seen combo appears
    unseen = shapes.ShapeWorld(200, "test_unseen")
    assert _combos(unseen) == set(shapes.HELD_OUT)
    seen = shapes.ShapeWorld(300, "test_seen")
    assert not _combos(seen) & shapes.HELD_OUT
    # the test images come from another random stream than the training images
    assert not torch.equal(seen.images[:50], train.images[:50])
    assert _combos(shapes.ShapeWorld(600, "all")) == {tuple(c.split()) for c in shapes.CLASSES}


def test_labels_and_captions_describe_the_main_object():
    data = shapes.ShapeWorld(300, max_objects=2)
    for objects, caption, label in zip(data.objects, data.captions, data.labels, strict=True):
        main = objects[0]
        assert shapes.CLASSES[label] == f"{main['color']} {main['shape']}"
        assert f"{main['color']} {main['shape']}" in caption
        assert shapes.caption_fits(caption, objects)
    assert len(set(data.captions)) > 100  # real variety on the text side


def test_pictures_show_the_color_and_the_shape():
    for color, rgb in shapes.COLORS.items():
        for shape in shapes.SHAPES:
            pixels = np.asarray(shapes.draw(color, shape), dtype=int)
            assert np.abs(pixels[16, 16] - rgb).max() <= 1, (color, shape)  # centre: colour
            assert np.abs(pixels[0, 0] - 30).max() <= 1                     # corner: background
    # the shapes differ from each other in their pixels (area covered)
    areas = {s: (np.asarray(shapes.draw("red", s))[..., 0] > 128).sum() for s in shapes.SHAPES}
    assert len(set(areas.values())) == len(shapes.SHAPES)
    assert areas["circle"] > areas["star"] and areas["circle"] > areas["cross"]
    small = (np.asarray(shapes.draw("red", "circle", size="small"))[..., 0] > 128).sum()
    assert small < 0.5 * areas["circle"]


def test_positions_are_where_the_caption_says():
    for position in shapes.POSITIONS:
        pixels = np.asarray(shapes.draw("yellow", "square", "small", position))[..., 0] > 128
        ys, xs = np.nonzero(pixels)
        fx, fy = shapes.POSITIONS[position]
        assert abs(xs.mean() + 0.5 - 32 * fx) < 1 and abs(ys.mean() + 0.5 - 32 * fy) < 1


def test_fit_matrix_agrees_with_caption_fits():
    data = shapes.ShapeWorld(60, max_objects=2)
    matrix = data.fit_matrix(torch.arange(60))
    assert matrix.diagonal().all()
    for a in range(60):
        for b in range(60):
            assert bool(matrix[a, b]) == shapes.caption_fits(data.captions[b], data.objects[a])
    big_red_circle = [{"color": "red", "shape": "circle", "size": "big", "position": "left"}]
    assert shapes.caption_fits("a red circle", big_red_circle)
    assert shapes.caption_fits("there is a red circle on the left", big_red_circle)
    assert not shapes.caption_fits("a small red circle", big_red_circle)
    assert not shapes.caption_fits("a red circle and a blue star", big_red_circle)


def test_dataset_items_grid_and_figure():
    data = shapes.ShapeWorld(12, resolution=48)
    image, caption, label = data[3]
    assert isinstance(image, Image.Image) and image.size == (48, 48)
    assert isinstance(caption, str) and label == int(data.labels[3])
    assert data.images.shape == (12, 3, 48, 48) and data.images.dtype == torch.uint8
    tensor_data = shapes.ShapeWorld(4, transform=lambda im: torch.from_numpy(np.array(im)))
    assert tensor_data[0][0].shape == (32, 32, 3)
    grid = data.grid(8, columns=4, scale=2)
    assert isinstance(grid, Image.Image) and grid.size == (4 * 98 + 2, 2 * 98 + 2)
    import matplotlib
    matplotlib.use("Agg")
    figure = data.show(4)
    assert len(figure.axes) == 4 and figure.axes[0].get_title() == data.captions[0]
    assert isinstance(shapes.palette(), Image.Image)


def test_articles_are_english():
    fixed = shapes.with_articles("a orange star and a red circle")
    assert fixed == "an orange star and a red circle"
    data = shapes.ShapeWorld(200, max_objects=2)
    assert not any(" a orange" in f" {c}" for c in data.captions)


@pytest.mark.parametrize("call, message", [
    (lambda: shapes.ShapeWorld(0), "positive"),
    (lambda: shapes.ShapeWorld(-3), "positive"),
    (lambda: shapes.ShapeWorld(5, split="validation"), "train, test_seen"),
    (lambda: shapes.ShapeWorld(5, resolution=8), "resolution"),
    (lambda: shapes.ShapeWorld(5, max_objects=0), "max_objects"),
    (lambda: shapes.draw("pink", "circle"), "red, green"),
    (lambda: shapes.draw("red", "hexagon"), "circle, square"),
    (lambda: shapes.draw("red", "circle", size="huge"), "small, big"),
    (lambda: shapes.parse_caption("a shiny thing"), "colour"),
])
def test_bad_arguments_say_what_is_allowed(call, message):
    with pytest.raises(ValueError, match=message):
        call()
