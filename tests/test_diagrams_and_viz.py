"""The two drawing modules: ``diagrams`` (how a model works) and ``viz`` (data a lesson
computed). Each figure draws, shows what it was given, and ``viz`` stands alone."""

import ast
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mmlearn import diagrams, search, viz  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("draw", [diagrams.clip_architecture, diagrams.dalle1_token_stream,
                                  diagrams.unclip_pipeline, diagrams.two_ways_to_generate])
def test_every_diagram_draws(draw):
    figure = draw()
    assert figure.axes and figure.axes[0].patches  # boxes and arrows


def test_the_vqgan_diagram_names_its_parts_and_marks_the_straight_through_path():
    from matplotlib.colors import to_hex
    from matplotlib.patches import FancyArrowPatch

    ax = diagrams.vqgan_tokenizer().axes[0]
    text = " ".join(t.get_text() for t in ax.texts)
    for part in ("encoder E", "z_e = E(x): 8×8", "nearest\ncodebook entry", "codebook: 256",
                 "token grid: 8×8 ids", "decoder D", "forward", "backward (straight-through)",
                 "z_e + (z_q − z_e).detach()"):
        assert part in text, part
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 8                                  # 6 forward, codebook, backward
    assert [to_hex(p.get_edgecolor()) for p in arrows].count("#c0392b") == 1
    with pytest.raises(ValueError, match="grid"):
        diagrams.vqgan_tokenizer(grid=64)                    # more tokens than pixels


def test_the_picture_grid_shows_each_picture_with_its_title():
    pictures = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    figure = viz.image_grid(pictures, ["a", "b", "c", "d", "e"], columns=3)
    shown = [ax for ax in figure.axes if ax.images]
    assert len(figure.axes) == 6 and len(shown) == 5  # 2 rows of 3, one cell left empty
    assert np.array_equal(shown[4].images[0].get_array(), pictures[4].permute(1, 2, 0).numpy())
    assert [ax.get_title() for ax in shown] == ["a", "b", "c", "d", "e"]


def test_shapeworld_shows_through_the_one_grid():
    from mmlearn.shapes import ShapeWorld

    data = ShapeWorld(4, seed=0)
    figure = data.show(4, columns=2)
    assert [ax.get_title() for ax in figure.axes] == data.captions[:4]


def test_token_grid_and_causal_mask_draw():
    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    figure = viz.token_grid(images[0], torch.arange(64).reshape(8, 8), images[1])
    assert len(figure.axes) == 3
    figure = viz.causal_mask(torch.tril(torch.ones(5, 5)))
    assert figure.axes[0].get_xlabel() == "attends to position j"


def test_token_fill_in_shows_the_first_tokens_in_reading_order_and_the_rest_grey():
    image = torch.randint(0, 100, (3, 32, 32), dtype=torch.uint8)  # never the grey 128
    figure = viz.token_fill_in(image, side=8, steps=(0, 10, 64))
    assert [ax.get_title() for ax in figure.axes] == ["0 of 64 tokens", "10 of 64 tokens",
                                                      "64 of 64 tokens"]
    shown = [np.asarray(ax.images[0].get_array()) for ax in figure.axes]
    picture = image.permute(1, 2, 0).numpy()
    assert (shown[0] == 128).all() and np.array_equal(shown[2], picture)
    drawn = (shown[1] != 128).all(axis=2)                       # 4x4 px patch per token
    assert drawn[:4].all() and drawn[4:8, :8].all()             # row 0, then token 8 and 9
    assert not drawn[4:8, 8:].any() and not drawn[8:].any()
    assert len(figure.axes[1].patches) == 1 and not figure.axes[2].patches  # next token: red
    with pytest.raises(ValueError, match="steps run from 0 to 64"):
        viz.token_fill_in(image, steps=(0, 65))
    with pytest.raises(ValueError, match="side"):
        viz.token_fill_in(image, side=5)


def test_noise_schedules_plot_the_signal_left_against_the_share_of_the_way():
    figure = viz.noise_schedules({"four steps": torch.tensor([1.0, 0.81, 0.25, 0.0])})
    line = figure.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [0.25, 0.5, 0.75, 1.0]
    assert np.allclose(line.get_ydata(), [1.0, 0.9, 0.5, 0.0])
    with pytest.raises(TypeError, match="alpha_bar"):
        viz.noise_schedules([0.5, 0.4])


def test_the_guidance_tradeoff_plots_each_measure_of_each_model_at_its_scales():
    def row(x):
        group = {"shape": x, "centre_ratio": 1 - x, "size_ratio": 1 - x / 2, "precision": x,
                 "recall": 1 - x}
        return {"all": group, "seen": group, "unseen": {**group, "shape": x / 2}}
    sweep = {"diffusion prior": {"0": row(0.1), "3": row(0.9), "1": row(0.5)},
             "regression prior": {"0": row(0.1), "3": row(0.95)}}
    figure = viz.guidance_tradeoff(sweep, default=3.0)
    shape_panel = figure.axes[0]
    lines = {line.get_label(): line for line in shape_panel.get_lines()}
    held_out = lines["diffusion prior: held-out pairs"]
    assert list(held_out.get_xdata()) == [0.0, 1.0, 3.0]       # scales in order, not as written
    assert list(held_out.get_ydata()) == [0.05, 0.25, 0.45]
    assert len(figure.axes) == 3 and all(len(ax.get_lines()) == 5 for ax in figure.axes)
    with pytest.raises(TypeError, match="eval_variety"):
        viz.guidance_tradeoff({"diffusion prior": []})


def test_search_results_take_one_list_or_one_list_per_query():
    hits = [search.Hit(0, 0.9, caption="a red circle"), search.Hit(1, 0.5, caption="a star")]

    class Index:
        def image(self, i):
            return np.zeros((8, 8, 3), dtype=np.uint8)

    assert len(viz.search_results(Index(), hits).axes) == 2
    assert len(viz.search_results(Index(), [hits, hits]).axes) == 4


def _mmlearn_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mmlearn"):
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.startswith("mmlearn")}
    return names


def test_viz_and_diagrams_import_only_the_argument_checks_from_mmlearn():
    """Plotting sits on the ground floor: any module may draw, and drawing needs no model."""
    for module in ("viz", "diagrams"):
        assert _mmlearn_imports(ROOT / "mmlearn" / f"{module}.py") <= {"mmlearn.checks"}, module


def test_box_and_arrow_are_drawn_in_one_place():
    assert not {"_box", "_arrow"} & set(vars(viz))


@pytest.mark.parametrize("draw, bad, error", [
    (diagrams.clip_architecture, {"n": 0}, ValueError),
    (diagrams.clip_architecture, {"n": 40}, ValueError),
    (diagrams.clip_architecture, {"n": 2.5}, TypeError),
    (diagrams.dalle1_token_stream, {"words": "a cat"}, ValueError),
    (diagrams.dalle1_token_stream, {"text_length": 2}, ValueError),
    (diagrams.dalle1_token_stream, {"image_shown": 100}, ValueError)])
def test_a_diagram_refuses_sizes_that_do_not_fit_and_names_them(draw, bad, error):
    with pytest.raises(error, match=next(iter(bad))):
        draw(**bad)
