"""``mmlearn.evaluation``: one way to turn judged pictures into hit rates, for every generator."""

import math

import pytest
import torch

from mmlearn import evaluation, judge, shapes
from mmlearn.judge import Verdict


def test_a_row_is_the_judges_hit_rates_for_its_prompt():
    verdicts = [Verdict("red", "circle"), Verdict("red", "blob"), Verdict("blue", "circle")]
    row = evaluation.judged_row("a red circle", verdicts)
    assert row == {"prompt": "a red circle", "seen": ("red", "circle") not in shapes.HELD_OUT,
                   **judge.hit_rates(verdicts, [("red", "circle")] * 3)}
    assert (row["color"], row["shape"], row["both"], row["n"]) == (2 / 3, 2 / 3, 1 / 3, 3)


def test_averages_weigh_rows_by_their_pictures_like_the_judge_on_all_of_them():
    seen, unseen = ("red", "circle"), next(iter(shapes.HELD_OUT))
    prompt = {combo: f"a {combo[0]} {combo[1]}" for combo in (seen, unseen)}
    pictures = {seen: [Verdict("red", "circle")] * 3,
                unseen: [Verdict(unseen[0], "blob"), Verdict(unseen[0], unseen[1])]}
    rows = [evaluation.judged_row(prompt[c], v) for c, v in pictures.items()]
    report = evaluation.averages(rows)
    pooled = judge.hit_rates(pictures[seen] + pictures[unseen], [seen] * 3 + [unseen] * 2)
    assert report["all"] == pytest.approx(pooled)
    assert report["seen"]["shape"] == 1.0 and report["unseen"]["shape"] == 0.5
    assert evaluation.rates_table(report)["all"] == {"color": 1.0, "shape": 0.8}


# ------------------------------------------------------------------------------ variety

def _pictures(*specs):
    return judge.as_uint8_batch([shapes.draw(*spec) for spec in specs])


def test_the_layout_finds_where_the_object_is_how_big_and_its_shade():
    layout = evaluation.object_layout(_pictures(("red", "circle", "big", "left"),
                                                ("red", "circle", "small", "right"),
                                                ("blue", "square", "big", "top")))
    (left_x, left_y), (right_x, _), (_, top_y) = layout["centre"].tolist()
    assert left_x < 12 < 20 < right_x and abs(left_y - 16) < 2 and top_y < 12
    assert layout["size"][0] > 1.5 * layout["size"][1] > 0
    red, blue = layout["shade"][0], layout["shade"][2]
    assert red[0] > 0.7 > red[2] and blue[2] > blue[0]


def test_a_picture_without_colour_has_no_layout_and_no_spread():
    grey = torch.full((1, 3, 32, 32), 60, dtype=torch.uint8)
    layout = evaluation.object_layout(grey)
    assert torch.isnan(layout["size"]).all() and torch.isnan(layout["centre"]).all()
    assert all(math.isnan(v) for v in evaluation.spread(layout).values())


def test_the_same_picture_eight_times_has_no_spread_and_shapeworld_has_some():
    same = evaluation.spread(evaluation.object_layout(_pictures(*[("red", "star")] * 8)))
    assert same == {"centre": 0.0, "size": 0.0, "shade": 0.0}
    data = shapes.ShapeWorld(400, "train", seed=3)
    stars = [i for i, o in enumerate(data.objects) if o[0]["shape"] == "star"][:8]
    varied = evaluation.spread(evaluation.object_layout(data.images[stars]))
    assert varied["centre"] > 2 and varied["size"] > 0.01 and varied["shade"] > 0.05


def test_precision_and_recall_tell_a_copier_from_a_generator_that_covers_the_data():
    real = torch.nn.functional.normalize(torch.randn(200, 8, generator=torch.Generator()
                                                     .manual_seed(0)), dim=-1)
    assert evaluation.precision_recall(real, real.clone()) == {"precision": 1.0, "recall": 1.0}
    one_picture = real[:1].repeat(50, 1) + 1e-4  # always the same good picture
    copier = evaluation.precision_recall(real, one_picture)
    assert copier["precision"] == 1.0 and copier["recall"] < 0.05
    elsewhere = evaluation.precision_recall(real, -real[:1].repeat(50, 1) * 3)
    assert elsewhere == {"precision": 0.0, "recall": 0.0}


@pytest.mark.parametrize("real, generated, k, error", [
    (torch.randn(10, 4), torch.randn(10, 5), 3, ValueError),
    (torch.randn(10, 4), torch.randn(3, 4), 3, ValueError),
    (torch.randn(10, 4), torch.full((5, 4), math.nan), 2, ValueError),
    (torch.randint(0, 9, (10, 4)), torch.randn(5, 4), 2, TypeError),
])
def test_precision_recall_refuses_what_it_cannot_measure(real, generated, k, error):
    with pytest.raises(error, match="real|generated|k must"):
        evaluation.precision_recall(real, generated, k)


def test_wilson_interval_matches_its_formula_and_keeps_width_at_the_ends():
    low, high = evaluation.wilson_interval(49, 56)   # 0.875 of 56
    assert (round(low, 3), round(high, 3)) == (0.764, 0.938)
    none_low, none_high = evaluation.wilson_interval(0, 48)
    assert none_low == pytest.approx(0, abs=1e-12)
    assert 0.05 < none_high < 0.1   # no hits is still uncertain
    all_low, all_high = evaluation.wilson_interval(48, 48)
    assert all_high == pytest.approx(1) and 0.9 < all_low < 0.95
    wide, narrow = evaluation.wilson_interval(5, 10), evaluation.wilson_interval(500, 1000)
    assert wide[1] - wide[0] > 5 * (narrow[1] - narrow[0])


@pytest.mark.parametrize("hits, n, error", [(5, 4, ValueError), (-1, 4, ValueError),
                                            (1.5, 4, TypeError), (1, 0, ValueError)])
def test_wilson_interval_refuses_counts_that_are_not_counts(hits, n, error):
    with pytest.raises(error):
        evaluation.wilson_interval(hits, n)
