"""The demos: labels are parsed with clear errors, and each demo draws a plain result first."""

import datetime
import io

import matplotlib
import pytest
from PIL import Image

from mmlearn import widgets
from mmlearn.images import BadImageError

matplotlib.use("Agg")


def test_labels_are_split_and_trimmed():
    assert widgets.parse_labels(" cat, dog ,human,") == ["cat", "dog", "human"]


@pytest.mark.parametrize("text, complaint", [("", "at least one"), (" , ", "at least one"),
                                             ("cat, dog, cat", "cat repeats")])
def test_unusable_labels_say_what_to_do(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        widgets.parse_labels(text)


def test_zero_shot_demo_prints_the_prediction_without_a_widget_front_end(capsys):
    red = Image.new("RGB", (32, 32), (220, 30, 30))

    def classify(image, labels):  # a fake model: "red" wins on a red picture
        return [0.9 if label == "red" else 0.1 / (len(labels) - 1) for label in labels]

    widgets.zero_shot_demo(classify, {"red square": red}, labels="blue, red, green")
    assert "prediction: red (0.90)" in capsys.readouterr().out


class _FakeUpload:
    def __init__(self, name, content):
        self.value = ({"name": name, "content": memoryview(content)},)


def test_an_uploaded_image_is_read_and_a_bad_upload_is_named():
    buffer = io.BytesIO()
    Image.new("RGBA", (4, 4), (0, 0, 255, 255)).save(buffer, format="PNG")
    image = widgets._uploaded_image(_FakeUpload("blue.png", buffer.getvalue()))
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (0, 0, 255)
    with pytest.raises(BadImageError, match="notes.txt"):
        widgets._uploaded_image(_FakeUpload("notes.txt", b"not an image"))


def test_search_box_keeps_one_result_area_below_the_box_and_a_picture_for_static_viewers(
        monkeypatch):
    import matplotlib.pyplot as plt

    asked = []

    def search(query):  # a fake search engine: one small figure per query
        asked.append(query)
        fig, ax = plt.subplots(figsize=(2, 1))
        ax.set_title(query)
        return fig

    shown, open_before = [], set(plt.get_fignums())
    monkeypatch.setattr(widgets, "display", lambda *args, **kwargs: shown.append((args, kwargs)))
    box = widgets.search_box(search, "a red circle")
    controls, output = box.children
    text = controls.children[0]
    assert isinstance(output, widgets.widgets.Output) and asked == ["a red circle"]
    bundle = next(args[0] for args, kwargs in shown if kwargs.get("raw"))
    assert bundle["image/png"] and "application/vnd.jupyter.widget-view+json" in bundle
    assert "VBox" not in bundle["text/plain"] and "run this cell" in bundle["text/plain"]
    text.value = "a blue star"          # what pressing Enter does
    text.value = "   "                  # an empty query asks for one, without searching
    assert asked == ["a red circle", "a blue star"]
    assert widgets.search_result(search, " ").startswith("Type a query")
    assert set(plt.get_fignums()) == open_before   # every figure shown once, then closed


def _file(name, content):  # one file as ipywidgets 8's FileUpload holds it
    return {"name": name, "type": "", "size": len(content), "content": memoryview(content),
            "last_modified": datetime.datetime(2026, 1, 1)}


def test_zero_shot_demo_classifies_the_picture_chosen_last_and_names_a_bad_upload():
    red, green = Image.new("RGB", (8, 8), (220, 30, 30)), Image.new("RGB", (8, 8), (30, 200, 30))
    seen = []

    def classify(image, labels):  # a fake model that remembers what it was shown
        seen.append((image.getpixel((0, 0)), list(labels)))
        return [1 / len(labels)] * len(labels)

    demo = widgets.ZeroShotDemo(classify, {"red": red, "green": green}, labels="a, b")
    demo.render()  # the first result, before any change
    assert seen[-1] == ((220, 30, 30), ["a", "b"]) and demo.message == "prediction: a (0.50)"
    assert demo.png.startswith(b"\x89PNG") and demo.view.children[-1] is demo.output

    demo.text.value = "x, y, z"  # Enter in the label box
    assert seen[-1] == ((220, 30, 30), ["x", "y", "z"])
    demo.picker.value = "green"
    assert seen[-1][0] == (30, 200, 30)

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(buffer, format="PNG")
    demo.upload.value = (_file("blue.png", buffer.getvalue()),)
    assert seen[-1][0] == (0, 0, 255) and demo.picker.value == "uploaded: blue.png"
    calls = len(seen)
    demo.picker.value = "red"  # a picture chosen after the upload is the one classified
    assert seen[-1][0] == (220, 30, 30) and len(seen) == calls + 1

    demo.upload.value = (_file("notes.txt", b"not an image"),)
    assert demo.message.startswith("Could not read the uploaded file notes.txt as a picture")
    assert "BytesIO" not in demo.message and "0x" not in demo.message
    assert demo.picker.value == "red"

    demo.text.value = " , "
    assert "at least one" in demo.message
