"""The README's lesson times are the committed runs' (scripts/lesson_times.py reads them)."""

import importlib.util
import json
import re

import pytest
from notebook_skeleton import ROOT, notebook_paths

spec = importlib.util.spec_from_file_location("lesson_times",
                                              ROOT / "scripts" / "lesson_times.py")
lesson_times = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lesson_times)

ROW = re.compile(r"^\| \[[^\]]+\]\(notebooks/(?P<name>[\w.]+\.ipynb)\) \|[^|]*\| "
                 r"(?P<time>[^|]+) \|", re.MULTILINE)


def readme_times() -> dict[str, str]:
    return {m["name"]: m["time"].strip() for m in ROW.finditer((ROOT / "README.md").read_text())}


def test_the_readme_lists_every_lesson():
    assert sorted(readme_times()) == [p.name for p in notebook_paths()]


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_the_readme_time_is_the_committed_runs(path):
    seconds = lesson_times.run_seconds(json.loads(path.read_text()))
    assert seconds is not None, f"{path.name} has no stored run: re-run it (make execute)"
    written = readme_times()[path.name]
    stated = re.fullmatch(r"(\d+) s", written)
    assert stated, f"README: write {path.name}'s time as 'N s', not {written!r}"
    assert abs(int(stated[1]) - seconds) <= max(2, 0.1 * seconds), (
        f"README says {written} for {path.name}, its committed run took {seconds:.0f} s "
        f"(python scripts/lesson_times.py)")


def test_a_run_without_timestamps_has_no_time():
    assert lesson_times.run_seconds({"cells": [{"cell_type": "code", "metadata": {}}]}) is None
