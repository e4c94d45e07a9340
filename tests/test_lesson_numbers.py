"""Every number in a lesson's prose is backed by an output, the code, a recorded result or
the allow-list; and the check catches a planted wrong number."""

import copy
import json

import pytest
from lesson_numbers import (
    allowed_numbers,
    is_supported,
    lesson_values,
    prose_numbers,
    results_values,
    unsupported_numbers,
)
from notebook_skeleton import notebook_paths


@pytest.fixture(scope="module")
def results():
    return results_values()


@pytest.fixture(scope="module")
def allowed():
    return allowed_numbers()


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_every_number_in_the_prose_is_backed(path, results, allowed):
    notebook = json.loads(path.read_text())
    problems = unsupported_numbers(notebook, path.name[:2], results, allowed)
    assert problems == [], (
        f"{path.name}: these numbers in Markdown appear in no output, code or cited result "
        f"file: {problems}. Copy them from the output that prints them, or list a constant of "
        f"the text in tests/numbers_allowed.txt with its reason.")


def _a_checked_decimal(notebook):
    """The first decimal number in the prose that the check backs, and its cell."""
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "markdown":
            for number, percent in prose_numbers("".join(cell["source"])):
                if "." in number and not percent:
                    return index, number
    raise AssertionError("no decimal number in this lesson's prose")


@pytest.mark.parametrize("path", notebook_paths()[1:3], ids=lambda p: p.name)
def test_a_planted_wrong_number_is_caught(path, results, allowed):
    notebook = json.loads(path.read_text())
    index, number = _a_checked_decimal(notebook)
    values = lesson_values(notebook)
    digits = len(number.split(".")[1])
    wrong = next(f"{float(number) + step * 10 ** -digits:.{digits}f}" for step in range(3, 500)
                 if not is_supported(f"{float(number) + step * 10 ** -digits:.{digits}f}",
                                     False, values))
    planted = copy.deepcopy(notebook)
    source = "".join(planted["cells"][index]["source"])
    planted["cells"][index]["source"] = source.replace(number, wrong, 1)
    assert unsupported_numbers(notebook, path.name[:2], results, allowed) == []
    problems = unsupported_numbers(planted, path.name[:2], results, allowed)
    assert f"cell {index}: {wrong}" in problems


@pytest.mark.parametrize("prose, percent, values, backed", [
    ("0.99", False, {"0.986"}, True),      # rounded to the prose's precision
    ("0.98", False, {"0.986"}, False),     # not a rounding of it
    ("6.2", True, {"0.062"}, True),        # a share printed as a fraction
    ("55", True, {"55.0"}, True),
    ("1454", False, {"1454"}, True),
    ("1454", False, {"1454.4"}, False),    # a whole number must be printed whole
    ("89", False, {"37.1"}, False),
    ("7", False, set(), True),             # small counts are not checked
    ("2021", False, set(), True),          # a year
])
def test_matching_rules(prose, percent, values, backed):
    assert is_supported(prose, percent, values) is backed


def test_numbers_in_formulas_code_and_links_are_not_prose():
    text = ("Loss $\\log 128$ and `steps=300`, see [paper](https://arxiv.org/abs/2103.00020); "
            "it printed 0.986 and 1,454 MB ($$x_{17}$$).")
    assert prose_numbers(text) == [("0.986", False), ("1454", False)]


def test_an_allowed_number_needs_a_reason(tmp_path):
    listed = tmp_path / "allowed.txt"
    listed.write_text("05 8,192 DALL-E's codebook (Ramesh et al., 2021)\n")
    assert allowed_numbers(listed) == {"05": {"8192"}}
    listed.write_text("05 8,192\n")
    with pytest.raises(ValueError, match="no reason"):
        allowed_numbers(listed)


def test_every_allowed_number_is_still_stated(allowed):
    """An allow-list line whose number no lesson states any more is stale: remove it."""
    stated: dict[str, set[str]] = {}
    for path in notebook_paths():
        cells = json.loads(path.read_text())["cells"]
        stated[path.name[:2]] = {number for cell in cells if cell["cell_type"] == "markdown"
                                 for number, _ in prose_numbers("".join(cell["source"]))}
    everywhere = set().union(*stated.values())
    stale = [f"{lesson} {number}" for lesson, numbers in allowed.items() for number in numbers
             if number not in (everywhere if lesson == "*" else stated.get(lesson, set()))]
    assert stale == [], f"tests/numbers_allowed.txt lists numbers no lesson states: {stale}"
