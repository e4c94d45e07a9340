"""The course's API as the lessons' prose names it must exist, with those arguments.

A sentence like "set `TrainConfig(duplicates='ignore')`" goes stale silently when the
code changes; a learner who types it gets a TypeError. This test reads every inline
code span of every Markdown cell and checks each reference to mmlearn: a dotted name
(`mmlearn.clip.load_clip`, `zeroshot.classify`) must exist, and a call's keyword
arguments must be ones the function accepts.
"""

import ast
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest

import mmlearn

ROOT = Path(__file__).resolve().parents[1]
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
MODULES = {info.name: importlib.import_module(f"mmlearn.{info.name}")
           for info in pkgutil.iter_modules(mmlearn.__path__)}
for _info in pkgutil.iter_modules(MODULES["exercises"].__path__):  # lessonNN: q1, helpers
    importlib.import_module(f"mmlearn.exercises.{_info.name}")


def _public_names() -> dict[str, object]:
    """Top-level names defined by mmlearn's modules (TrainConfig, load_clip, ...)."""
    names = {}
    for module in MODULES.values():
        for name, value in vars(module).items():
            if not name.startswith("_") and getattr(value, "__module__", "") == module.__name__:
                names.setdefault(name, value)
    return names


PUBLIC = _public_names()


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


# Lessons name a loaded model `clip` too: `clip.encode_texts(...)` is a LoadedClip method.
VARIABLES = {"clip": MODULES["clip"].LoadedClip}


def _walk(target, parts: list[str]):
    for part in parts:
        if not hasattr(target, part):
            return None
        target = getattr(target, part)
    return target


def _resolve(parts: list[str]):
    """(object, None) for an mmlearn reference, (None, problem) if stale, (None, None) if
    the span is not about mmlearn (torch, open_clip, plain Python)."""
    qualified = parts[0] == "mmlearn"
    if qualified:
        parts = parts[1:]
        if not parts:
            return mmlearn, None
    starts = [MODULES.get(parts[0]), PUBLIC.get(parts[0]), VARIABLES.get(parts[0])]
    starts = [start for start in starts if start is not None]
    if not starts:
        return None, (f"mmlearn has no module or name {parts[0]!r}" if qualified else None)
    for start in starts:
        target = _walk(start, parts[1:])
        if target is not None:
            return target, None
    return None, f"{'.'.join(parts)} does not exist in mmlearn"


def reference_problems(span: str) -> list[str]:
    """What is stale in one inline code span (empty when fine or not about mmlearn)."""
    try:
        tree = ast.parse(span.strip(), mode="eval").body
    except SyntaxError:
        return []
    call = tree if isinstance(tree, ast.Call) else None
    parts = _dotted(call.func if call else tree)
    if not parts:
        return []
    target, problem = _resolve(parts)
    if problem:
        return [f"`{span}`: {problem}"]
    if call is None or target is None or not callable(target):
        return []
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return []
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return []
    return [f"`{span}`: {'.'.join(parts)} takes no argument {k.arg!r}"
            for k in call.keywords if k.arg is not None and k.arg not in parameters]


def notebook_problems(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    problems = []
    for number, cell in enumerate(cells, start=1):
        if cell["cell_type"] != "markdown":
            continue
        for span in INLINE_CODE.findall("".join(cell["source"])):
            problems += [f"cell {number}: {p}" for p in reference_problems(span)]
    return problems


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_markdown_names_only_what_exists(path):
    assert notebook_problems(path) == []


@pytest.mark.parametrize("span", [
    'TrainConfig(steps=10, duplicates="ignore")',
    'TrainConfig(..., duplicates="ignore")',
    "zeroshot.no_such_function(clip, images)",
    "mmlearn.clip.load_clipp",
    "shapes.ShapeWorld(500, splitt='unseen')",
    "mmlearn.nosuchmodule",
])
def test_a_planted_stale_reference_is_caught(span):
    assert reference_problems(span), span


@pytest.mark.parametrize("span", [
    "zeroshot.classify", "mmlearn.clip.load_clip", 'load_clip("course")',
    "shapes.ShapeWorld(500, split='unseen')", "torch.softmax(x, dim=-1)", "a {}",
    "q1.check()", "pip install mmlearn", "clip.encode_texts([prompt])",
    "mmlearn.exercises.lesson02.q1",
])
def test_real_references_and_other_code_pass(span):
    assert reference_problems(span) == []
