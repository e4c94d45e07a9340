"""Small interactive demos for the lessons, built from ipywidgets.

Each demo takes plain functions (``classify(image, labels)``, ``search(query)``), so
it works with any model. A demo has one output area, below its controls, that holds
the current result from the start. Widgets only render in a live Jupyter front end; on
GitHub, in a notebook opened before it was run, or in a script they show nothing, so
the cell's output also carries a PNG of the first result and a line of text for them.

They work with ipywidgets 8 and with ipywidgets 7, which Google Colab ships (7.7.1) and
whose front end does not support 8: the two differ here only in how an upload is kept
(``_uploaded_file``) and how a widget's display data is got (``_widget_bundle``).
"""

import base64
import io
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython import get_ipython
from IPython.display import Image as IPythonImage
from IPython.display import display
from PIL import Image, ImageOps

from mmlearn import checks, viz
from mmlearn.images import BadImageError, to_rgb


def parse_labels(text: str) -> list[str]:
    """Comma-separated labels typed by a learner -> a clean list (ValueError if unusable)."""
    labels = [label.strip() for label in text.split(",") if label.strip()]
    if not labels:
        raise ValueError("Type at least one label, separated by commas: 'cat, dog, human'.")
    duplicates = {label for label in labels if labels.count(label) > 1}
    if duplicates:
        raise ValueError(f"Each label once, please: {', '.join(sorted(duplicates))} repeats.")
    return labels


def _uploaded_file(upload: widgets.FileUpload) -> tuple[str, bytes] | None:
    """The last file a learner uploaded, as (name, content), or None before any upload.

    ipywidgets 8 keeps a tuple of dicts (name, type, size, content as a memoryview,
    last_modified); ipywidgets 7, which Google Colab ships (7.7.1), keeps a dict
    ``{name: {"metadata": {...}, "content": bytes}}``. This reads either.
    """
    if not upload.value:
        return None
    if isinstance(upload.value, dict):  # ipywidgets 7
        name, file = list(upload.value.items())[-1]
    else:  # ipywidgets 8
        name, file = upload.value[-1].get("name", ""), upload.value[-1]
    return name, bytes(file["content"])


def _uploaded_image(upload: widgets.FileUpload) -> tuple[str, Image.Image] | None:
    """The last uploaded file's name and picture, as RGB, or None before any upload."""
    file = _uploaded_file(upload)
    if file is None:
        return None
    name, content = file
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.load()
            return name, to_rgb(ImageOps.exif_transpose(image))
    except Exception:  # anything PIL cannot read is the learner's file, not a bug
        raise BadImageError(f"Could not read the uploaded file {name} as a picture: choose a "
                            f"PNG or JPEG file.") from None


class ZeroShotDemo:
    """The zero-shot demo's controls and logic, apart from any front end (tests drive it).

    ``images`` maps names to pictures for the drop-down; an upload joins the drop-down as
    ``"uploaded: NAME"`` and is selected, so the picture classified is always the one the
    drop-down shows, whichever was chosen last. ``render()`` fills the one output area
    (below the controls) with the current result, or with a sentence saying what to fix.
    """

    def __init__(self, classify: Callable[[Image.Image, list[str]], Sequence[float]],
                 images: dict[str, Image.Image], labels: str = "cat, dog, human"):
        if not callable(classify):
            raise TypeError(f"classify must be a function (image, labels) -> one probability "
                            f"per label; got {checks.describe(classify)}.")
        if not isinstance(images, Mapping):
            raise TypeError(f"images must be a dict of name -> PIL image for the drop-down, "
                            f"e.g. {{'cat': open_image('cat.jpg')}}; got "
                            f"{checks.describe(images)}.")
        if not images:
            raise ValueError("zero_shot_demo needs at least one picture for its drop-down.")
        for name, image in images.items():
            if not isinstance(image, Image.Image):
                raise TypeError(f"images[{name!r}] must be a PIL image; got "
                                f"{checks.describe(image)}.")
        if not isinstance(labels, str):
            raise TypeError(f"labels must be one string of labels separated by commas, such as "
                            f"'cat, dog, human'; got {checks.describe(labels)}.")
        self.classify = classify
        self.images = dict(images)
        self.picker = widgets.Dropdown(options=list(self.images), description="image")
        self.upload = widgets.FileUpload(accept="image/*", multiple=False,
                                         description="or upload")
        self.text = widgets.Text(value=labels, description="labels", continuous_update=False,
                                 layout=widgets.Layout(width="60%"))
        self.tip = widgets.Label("type labels separated by commas, then press Enter")
        self.output = widgets.Output()
        self.view = widgets.VBox([widgets.HBox([self.picker, self.upload]),
                                  widgets.HBox([self.text, self.tip]), self.output])
        self.message = ""  # the line under the figure: the prediction, or what to fix
        self.png: bytes | None = None  # the figure now shown, as PNG
        self._adding_upload = False
        self.picker.observe(self._changed, names="value")
        self.text.observe(self._changed, names="value")
        self.upload.observe(self._uploaded, names="value")

    def _changed(self, _change=None) -> None:
        if not self._adding_upload:
            self.render()

    def _uploaded(self, _change=None) -> None:
        try:
            uploaded = _uploaded_image(self.upload)
        except BadImageError as error:
            self.render(problem=str(error))
            return
        if uploaded is None:
            return
        name = f"uploaded: {uploaded[0] or 'picture'}"
        self.images[name] = uploaded[1]
        self._adding_upload = True  # new options reset the selection: don't draw that
        try:
            if name not in self.picker.options:
                self.picker.options = [*self.picker.options, name]
        finally:
            self._adding_upload = False
        if self.picker.value == name:
            self.render()
        else:
            self.picker.value = name  # draws, through _changed

    def result(self) -> tuple[plt.Figure | None, str]:
        """The figure and the line for the current picture and labels (no figure: a problem)."""
        try:
            labels = parse_labels(self.text.value)
        except ValueError as error:
            return None, str(error)
        image = self.images[self.picker.value]
        probabilities = [float(p) for p in self.classify(image, labels)]
        fig, (left, right) = plt.subplots(1, 2, figsize=(8, 0.3 * len(labels) + 1.9),
                                          gridspec_kw={"width_ratios": [1, 2]})
        left.imshow(image)
        left.axis("off")
        left.set_title(self.picker.value, fontsize=9)
        viz.probability_bars(labels, probabilities, ax=right)
        best = max(range(len(labels)), key=lambda i: probabilities[i])
        return fig, f"prediction: {labels[best]} ({probabilities[best]:.2f})"

    def render(self, problem: str | None = None) -> None:
        """Show the current result (or ``problem``) in the output area, replacing the last."""
        fig, self.message = (None, problem) if problem else self.result()
        if fig is not None:
            self.png = figure_png(fig)
            plt.close(fig)  # shown once, in the output area, not again below the cell
        self.output.clear_output(wait=True)
        with self.output:  # outside Jupyter only the line is printed, to the terminal
            if fig is not None and _in_kernel():
                display(IPythonImage(data=self.png, format="png"))
            print(self.message)


def _in_kernel() -> bool:
    """True in a Jupyter kernel (where widgets and images can be shown)."""
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def zero_shot_demo(classify: Callable[[Image.Image, list[str]], Sequence[float]],
                   images: dict[str, Image.Image], labels: str = "cat, dog, human"
                   ) -> ZeroShotDemo:
    """Pick (or upload) a picture, type labels and press Enter: see zero-shot probabilities.

    ``classify(image, labels)`` returns one probability per label; ``images`` maps a
    name to a picture for the drop-down. One output area, below the controls, holds
    the current result from the start. Where widgets cannot be drawn (GitHub, or a
    notebook opened before it was run) the cell shows a PNG of the first result and
    its prediction instead.
    """
    demo = ZeroShotDemo(classify, images, labels)
    demo.render()
    if _in_kernel():
        _display_with_fallback(demo.view, f"[zero-shot demo: run this cell to use it] "
                                          f"{demo.message}", demo.png)
    return demo


def search_box(search: Callable[[str], plt.Figure], query: str = "a big blue star",
               show: bool = True) -> widgets.VBox:
    """Type a query and press Enter: the area below the box shows what ``search(query)`` draws.

    One output area, below the controls, always holds the current result; it holds the
    first query's result from the start. Where widgets cannot be drawn (GitHub, or a
    notebook opened before it was run) the cell shows a PNG of that first result and a
    sentence instead of the widget. Returns the widget: ``children`` are the controls
    (the text box and a tip) and the output area.
    """
    if not callable(search):
        raise TypeError(f"search must be a function of a query that draws a figure, e.g. "
                        f"lambda query: widgets.show_search(index, query); got "
                        f"{checks.describe(search)}.")
    if not isinstance(query, str):
        raise TypeError(f"query must be a string such as 'a big blue star'; got "
                        f"{checks.describe(query)}.")
    show = checks.flag(show, "show")
    text = widgets.Text(value=query, description="query", continuous_update=False,
                        placeholder="a small red circle on the left",
                        layout=widgets.Layout(width="60%"))
    tip = widgets.Label("type a query, then press Enter")
    output = widgets.Output()
    first_png: list[bytes] = []

    def update(_change=None) -> None:
        output.clear_output(wait=True)
        result = search_result(search, text.value)
        with output:
            if isinstance(result, str):
                print(result)
                return
            display(result)
        if not first_png:
            first_png.append(figure_png(result))
        plt.close(result)  # shown once, in the output area: not again below the cell

    text.observe(update, names="value")
    box = widgets.VBox([widgets.HBox([text, tip]), output])
    update()
    if show:
        _display_with_fallback(box, f"[search box for typing queries: run this cell in Jupyter "
                                    f"to use it. First query: {query!r}]",
                               first_png[0] if first_png else None)
    return box


def search_result(search: Callable[[str], plt.Figure], query: str) -> plt.Figure | str:
    """What the search box shows for ``query``: the figure, or a sentence saying what to fix."""
    if not query.strip():
        return "Type a query, e.g. 'a small red circle on the left', then press Enter."
    try:
        return search(query.strip())
    except ValueError as error:  # a query the model cannot take: say so, keep the box alive
        return f"That query did not work: {error}"


def _display_with_fallback(view: widgets.Widget, text: str, png: bytes | None) -> None:
    """Show ``view``; where widgets cannot be drawn (GitHub, a notebook opened unrun) the
    saved cell shows ``png`` and ``text`` instead of a raw ``VBox(children=...)``."""
    bundle = _widget_bundle(view)
    bundle["text/plain"] = text
    if png is not None:
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
    display(bundle, raw=True)


def _widget_bundle(view: widgets.Widget) -> dict:
    """The display data that draws ``view`` in a Jupyter front end.

    ipywidgets 8 gives it (``_repr_mimebundle_``); ipywidgets 7 (Colab's 7.7.1) has only
    ``_ipython_display_``, which displays at once, so the same bundle is built here.
    """
    if callable(getattr(view, "_repr_mimebundle_", None)):  # ipywidgets 8
        return view._repr_mimebundle_()
    return {"application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": view.model_id},
            "text/plain": repr(view)}


def figure_png(fig: plt.Figure) -> bytes:
    """A figure as PNG bytes, drawn as Jupyter's inline backend draws it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def show_search(index, queries, k: int = 6, width: int = 24) -> plt.Figure:
    """Search ``index`` and draw the results: one row of ``k`` per query (a text, a PIL
    image or a list of them), captions wrapped between words (``viz.search_results``)."""
    if not callable(getattr(index, "search", None)) or not callable(getattr(index, "image", None)):
        raise TypeError(f"index must be an ImageIndex (search.ImageIndex.build(clip, images)); "
                        f"got {checks.describe(index)}.")
    checks.integer(k, "k", minimum=1)
    checks.integer(width, "width", minimum=1)
    queries = queries if isinstance(queries, list) else [queries]
    return viz.search_results(index, index.search(queries, k=k), queries=queries, width=width)
