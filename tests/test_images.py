"""Tests for mmlearn.images: every odd mode becomes the RGB a viewer would show."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from mmlearn.images import (
    BadImageError,
    float_to_uint8,
    list_image_files,
    load_images,
    open_image,
    to_rgb,
)

RED, BLUE, WHITE, BLACK = (255, 0, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def close_to(pixel, expected, tolerance=0):
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, expected, strict=True))


def saved(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


def test_rgb_round_trip(tmp_path):
    image = Image.new("RGB", (4, 3), RED)
    opened = open_image(saved(image, tmp_path / "red.png"))
    assert opened.mode == "RGB" and opened.size == (4, 3)
    assert opened.getpixel((2, 1)) == RED


def test_greyscale_and_one_bit(tmp_path):
    assert open_image(saved(Image.new("L", (2, 2), 128), tmp_path / "g.png")).getpixel(
        (0, 0)) == (128, 128, 128)
    assert open_image(saved(Image.new("1", (2, 2), 1), tmp_path / "b.png")).getpixel(
        (0, 0)) == WHITE


def test_rgba_keeps_color_and_paints_transparency_white(tmp_path):
    image = Image.new("RGBA", (3, 1))
    image.putpixel((0, 0), (255, 0, 0, 255))  # opaque red
    image.putpixel((1, 0), (0, 0, 0, 0))  # fully transparent black
    image.putpixel((2, 0), (0, 0, 0, 128))  # half-transparent black
    opened = open_image(saved(image, tmp_path / "rgba.png"))
    assert opened.mode == "RGB"
    assert opened.getpixel((0, 0)) == RED
    assert opened.getpixel((1, 0)) == WHITE  # Pillow's convert("RGB") would give black
    assert close_to(opened.getpixel((2, 0)), (127, 127, 127), tolerance=1)


def test_la_greyscale_with_alpha(tmp_path):
    image = Image.new("LA", (2, 1))
    image.putpixel((0, 0), (0, 255))  # opaque black
    image.putpixel((1, 0), (0, 0))  # transparent
    opened = open_image(saved(image, tmp_path / "la.png"))
    assert opened.getpixel((0, 0)) == BLACK
    assert opened.getpixel((1, 0)) == WHITE


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0] + list(BLUE) + [0, 0, 0] * 254)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    path = saved(image, tmp_path / "p.png", transparency=0)
    assert Image.open(path).mode == "P"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow "convert to RGBA first" warning
        opened = open_image(path)
    assert opened.getpixel((0, 0)) == WHITE
    assert opened.getpixel((1, 0)) == BLUE
    gif = open_image(saved(image, tmp_path / "p.gif", transparency=0))
    assert gif.getpixel((0, 0)) == WHITE and gif.getpixel((1, 0)) == BLUE


def test_cmyk_tiff_and_jpeg(tmp_path):
    cyan = Image.new("CMYK", (16, 16), (255, 0, 0, 0))
    assert open_image(saved(cyan, tmp_path / "c.tif")).getpixel((0, 0)) == (0, 255, 255)
    from_jpeg = open_image(saved(cyan, tmp_path / "c.jpg", quality=95))
    assert close_to(from_jpeg.getpixel((8, 8)), (0, 255, 255), tolerance=8)


def test_sixteen_bit_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)  # black, middle grey, white
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    for name in ("i16.png", "i16.tif"):
        opened = open_image(saved(image, tmp_path / name))
        assert opened.getpixel((0, 0)) == BLACK
        assert opened.getpixel((1, 0)) == (128, 128, 128)  # convert("RGB") gives white
        assert opened.getpixel((2, 0)) == WHITE
    big_endian = to_rgb(Image.frombytes("I;16B", (3, 1), values.astype(">u2").tobytes()))
    assert big_endian.getpixel((1, 0)) == (128, 128, 128)


def test_32_bit_integer_and_float(tmp_path):
    sixteen_bit_range = Image.fromarray(np.array([[0, 65535]], dtype=np.int32), mode="I")
    assert to_rgb(sixteen_bit_range).getpixel((1, 0)) == WHITE
    eight_bit_range = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32), mode="I")
    assert to_rgb(eight_bit_range).getpixel((1, 0)) == (100, 100, 100)
    odd_range = Image.fromarray(np.array([[-10, 90]], dtype=np.int32), mode="I")
    assert [to_rgb(odd_range).getpixel((x, 0)) for x in (0, 1)] == [BLACK, WHITE]

    unit_floats = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    opened = open_image(saved(unit_floats, tmp_path / "f.tif"))
    assert [opened.getpixel((x, 0)) for x in range(3)] == [BLACK, (128, 128, 128), WHITE]
    with_nan = Image.fromarray(np.array([[np.nan, 1.0]], dtype=np.float32), mode="F")
    assert to_rgb(with_nan).getpixel((0, 0)) == BLACK


def test_other_modes_all_become_rgb():
    for mode in ("YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La", "PA", "I;16L"):
        assert to_rgb(Image.new(mode, (2, 2))).mode == "RGB", mode


def test_exif_orientation_is_applied(tmp_path):
    # Stored wide: red left half, blue right half. Orientation 6 means "turn me 90 degrees
    # clockwise to view", so the viewer shows a tall image with red on top.
    stored = Image.new("RGB", (64, 32), BLUE)
    stored.paste(RED, (0, 0, 32, 32))
    exif = Image.Exif()
    exif[0x0112] = 6
    opened = open_image(saved(stored, tmp_path / "phone.jpg", exif=exif, quality=95))
    assert opened.size == (32, 64)
    assert close_to(opened.getpixel((16, 8)), RED, tolerance=10)
    assert close_to(opened.getpixel((16, 56)), BLUE, tolerance=10)


@pytest.mark.parametrize("kind", ["not_an_image", "empty", "truncated_png", "truncated_jpeg"])
def test_bad_files_raise_a_value_error_naming_the_file(tmp_path, kind):
    if kind == "not_an_image":
        path = tmp_path / "notes.png"
        path.write_text("this is a shopping list, not a picture\n" * 20)
    elif kind == "empty":
        path = tmp_path / "empty.jpg"
        path.write_bytes(b"")
    else:
        suffix = "png" if kind == "truncated_png" else "jpg"
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        whole = saved(Image.fromarray(noise), tmp_path / f"whole.{suffix}")
        path = tmp_path / f"cut.{suffix}"
        path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(BadImageError, match=path.name) as caught:
        open_image(path)
    assert isinstance(caught.value, ValueError)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.png"):
        open_image(tmp_path / "nothing.png")


def test_load_images_skips_bad_files_with_a_warning_each(tmp_path):
    good = [saved(Image.new("RGB", (2, 2), RED), tmp_path / f"good{i}.png") for i in range(3)]
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    paths = [good[0], empty, good[1], text, good[2]]
    with pytest.warns(UserWarning) as record:
        images, names, skipped = load_images(paths)
    assert len(images) == 3 and names == [str(p) for p in good]
    assert set(skipped) == {str(empty), str(text)}
    messages = " ".join(str(w.message) for w in record)
    assert "empty.png" in messages and "text.jpg" in messages


def test_list_image_files_is_sorted_recursive_and_skips_hidden(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.webp", ".hidden.png", "notes.txt", "._a.jpg"):
        (tmp_path / name).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_image_files(tmp_path)]
    assert found == ["a.JPG", "b.png", "sub/c.webp"]
    assert [p.name for p in list_image_files(tmp_path, recursive=False)] == ["a.JPG", "b.png"]
    with pytest.raises(ValueError, match="not a folder"):
        list_image_files(tmp_path / "b.png")


def test_float_pictures_round_to_the_nearest_level_and_clamp():
    pictures = torch.tensor([-0.2, 0.0, 0.6 / 255, 0.4 / 255, 1.0, 1.3], requires_grad=True)
    assert float_to_uint8(pictures).tolist() == [0, 0, 1, 0, 255, 255]
