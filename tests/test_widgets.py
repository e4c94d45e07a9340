"""The demos: labels are parsed with clear errors, and each demo draws a plain result first.

They run on ipywidgets 8 (the venv's) and on 7.7.1 (Google Colab's), each with its own
upload format. To run them on 7.7.1, put it first on the path; MMLEARN_IPYWIDGETS_MAJOR
makes the run check which one it got, so a wrong PYTHONPATH cannot test 8 twice:

    .venv/bin/python -m pip install --no-deps --upgrade --target build/ipywidgets7 \
        ipywidgets==7.7.1 ipython_genutils==0.2.0
    MMLEARN_IPYWIDGETS_MAJOR=7 PYTHONPATH=build/ipywidgets7 MMLEARN_OFFLINE=1 \
        HF_HUB_OFFLINE=1 MPLBACKEND=Agg .venv/bin/python -m pytest tests/test_widgets.py
"""

import io
import os

import ipywidgets
import matplotlib
import pytest
from PIL import Image

from mmlearn import widgets
from mmlearn.images import BadImageError

matplotlib.use("Agg")
IPYWIDGETS_MAJOR = int(ipywidgets.__version__.split(".")[0])
# ipywidgets 7 makes its comms with ipykernel's old Comm class, which ipykernel 7 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:The `ipykernel.comm.Comm` class:DeprecationWarning")


def test_the_ipywidgets_version_asked_for_is_the_one_tested():
    assert IPYWIDGETS_MAJOR in (7, 8), ipywidgets.__version__
    asked = os.environ.get("MMLEARN_IPYWIDGETS_MAJOR")
    assert asked in (None, "", str(IPYWIDGETS_MAJOR)), (
        f"MMLEARN_IPYWIDGETS_MAJOR={asked}, but ipywidgets {ipywidgets.__version__} was "
        f"imported from {ipywidgets.__file__}: check PYTHONPATH")


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


class _FakeUpload:  # a FileUpload's value, in either version's format
    def __init__(self, name, content, major):
        self.value = ({name: {"metadata": {"name": name}, "content": content}} if major == 7
                      else ({"name": name, "content": memoryview(content)},))


@pytest.mark.parametrize("major", [7, 8])
def test_an_uploaded_image_is_read_and_a_bad_upload_is_named(major):
    buffer = io.BytesIO()
    Image.new("RGBA", (4, 4), (0, 0, 255, 255)).save(buffer, format="PNG")
    name, image = widgets._uploaded_image(_FakeUpload("blue.png", buffer.getvalue(), major))
    assert name == "blue.png" and image.mode == "RGB" and image.getpixel((0, 0)) == (0, 0, 255)
    with pytest.raises(BadImageError, match="notes.txt"):
        widgets._uploaded_image(_FakeUpload("notes.txt", b"not an image", major))


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


def _upload(upload, name, content):
    """Pick a file in ``upload`` as its front end does: by the state it sends to the kernel."""
    if IPYWIDGETS_MAJOR == 7:  # a list of metadata, a list of contents and a counter
        upload.set_state({"metadata": [{"name": name, "type": "image/png", "size": len(content),
                                        "lastModified": 1767225600000}],
                          "data": [memoryview(content)], "_counter": upload._counter + 1})
        assert isinstance(upload.value, dict) and upload.value[name]["content"] == content
    else:  # a list of files, each with its name, metadata and content
        upload.set_state({"value": [{"name": name, "type": "image/png", "size": len(content),
                                     "content": memoryview(content),
                                     "last_modified": 1767225600000}]})
        assert isinstance(upload.value, tuple) and upload.value[-1]["content"] == content


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
    _upload(demo.upload, "blue.png", buffer.getvalue())
    assert seen[-1][0] == (0, 0, 255) and demo.picker.value == "uploaded: blue.png"
    calls = len(seen)
    demo.picker.value = "red"  # a picture chosen after the upload is the one classified
    assert seen[-1][0] == (220, 30, 30) and len(seen) == calls + 1

    _upload(demo.upload, "notes.txt", b"not an image")
    assert demo.message.startswith("Could not read the uploaded file notes.txt as a picture")
    assert "BytesIO" not in demo.message and "0x" not in demo.message
    assert demo.picker.value == "red"

    demo.text.value = " , "
    assert "at least one" in demo.message
