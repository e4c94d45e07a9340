"""``mmlearn.evaluation``: one way to turn judged pictures into hit rates, for every generator."""

import pytest

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
