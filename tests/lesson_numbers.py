"""Every number a lesson's prose states must come from somewhere a reader can check.

A number written in a lesson's Markdown is accepted when it appears, to the precision the
prose gives it, in one of these places:

- an output of the same lesson (printed text, a table), so it is current;
- the lesson's own code (``steps=300``: a size the code sets);
- a file under ``benchmarks/results/`` that the lesson names (a recorded measurement it
  cites or loads);
- ``tests/numbers_allowed.txt``: constants of the text (a paper's batch size with its
  citation, a published figure), each listed with its lesson and a reason;
- a year (1950 to 2039), and any number inside code spans, formulas, links, model names
  (ViT-L/14) or references to a paper's sections and equations (§3.1.4, eq. 14).

"To its precision": prose "0.99" matches an output 0.986 (rounded to two decimals);
prose "6.2 %" matches an output 0.062 or 6.2. A whole number in prose must appear as a
whole number, since rounding would let "1" match almost anything. Numbers below 10
written without a decimal point are not checked: they are counts in the text ("two
guides", "Step 3") far more often than measurements.
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_FILE = ROOT / "tests" / "numbers_allowed.txt"
RESULTS_DIR = ROOT / "benchmarks" / "results"

# A number: digits with optional thousands commas and an optional decimal part.
NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])(\s?%)?")
HIDDEN = [
    re.compile(r"\$\$.*?\$\$", re.DOTALL),      # display formulas
    re.compile(r"\$[^$\n]+\$"),                  # inline formulas
    re.compile(r"```.*?```", re.DOTALL),         # code blocks
    re.compile(r"`[^`\n]+`"),                    # code spans
    re.compile(r"\]\([^)]*\)"),                  # link targets
    re.compile(r"https?://\S+"),                 # bare addresses
    re.compile(r"<[^>]+>"),                      # HTML tags and their attributes
    re.compile(r"arXiv:\s*\S+", re.IGNORECASE),  # paper identifiers
    re.compile(r"§\s?[\d.]*\d"),                # a paper's section, eq. 14: places in a text
    re.compile(r"\beq\.\s?\d+", re.IGNORECASE),
    re.compile(r"\bViT-[\w/]+"),                  # model names: ViT-L/14
]


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else (source or "")


def prose_numbers(markdown: str) -> list[tuple[str, bool]]:
    """The numbers a Markdown text states, as (digits without commas, is a percentage)."""
    for pattern in HIDDEN:
        markdown = pattern.sub(" ", markdown)
    found = []
    for match in NUMBER.finditer(markdown):
        whole, fraction, percent = match.group(1), match.group(2) or "", match.group(3)
        found.append((whole.replace(",", "") + fraction, bool(percent)))
    return found


def source_values(text: str) -> set[str]:
    """Every number in a checkable text, written as it is printed (commas dropped)."""
    text = text.replace("\u2212", "-")
    return {m.group(0).replace(",", "")
            for m in re.finditer(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?",
                                 text)}


def _decimals(number: str) -> int:
    return len(number.split(".")[1]) if "." in number else 0


def is_supported(number: str, percent: bool, values: set[str]) -> bool:
    """Whether ``number`` (from prose) is one of ``values`` at the precision it is written."""
    if not percent and "." not in number and int(number) < 10:
        return True
    if not percent and "." not in number and 1950 <= int(number) < 2040:
        return True
    if number in values:
        return True
    digits = _decimals(number)
    if digits == 0 and not percent:
        return False  # a whole number matches only itself: rounding would let 1 match 0.6
    for value in values:
        try:
            x = abs(float(value))
        except ValueError:
            continue
        candidates = [x, x * 100] if percent else [x]
        for candidate in candidates:
            if f"{candidate:.{digits}f}" == number:
                return True
    return False


def allowed_numbers(path: Path = ALLOWED_FILE) -> dict[str, set[str]]:
    """The allow-list: lines 'LESSON NUMBER reason', LESSON a two-digit prefix or '*'."""
    allowed: dict[str, set[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        lesson, number, *reason = line.split(maxsplit=2)
        if not reason:
            raise ValueError(f"{path.name}: '{line}' gives no reason; write why it is allowed")
        allowed.setdefault(lesson, set()).add(number.replace(",", "").rstrip("%"))
    return allowed


def results_values(folder: Path = RESULTS_DIR) -> dict[str, set[str]]:
    """The numbers of each recorded result file, by file name."""
    results = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in {".json", ".md", ".csv"}:
            text = path.read_text()
            values = source_values(text)
            if path.suffix == ".json":  # JSON floats are long: keep every rounding available
                values |= {repr(v) for v in _json_numbers(json.loads(text))}
            results[path.name] = values
    return results


def _json_numbers(data):
    if isinstance(data, dict):
        for value in data.values():
            yield from _json_numbers(value)
    elif isinstance(data, list):
        for value in data:
            yield from _json_numbers(value)
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield data


def lesson_values(notebook: dict) -> set[str]:
    """The numbers the lesson's outputs print and its code sets."""
    values: set[str] = set()
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        values |= source_values(_text(cell.get("source")))
        for output in cell.get("outputs", []):
            values |= source_values(_text(output.get("text")))
            for kind in ("text/plain", "text/html", "text/markdown"):
                values |= source_values(_text(output.get("data", {}).get(kind)))
    return values


def unsupported_numbers(notebook: dict, lesson: str, results: dict[str, set[str]],
                        allowed: dict[str, set[str]]) -> list[str]:
    """Each number in the lesson's Markdown that no output, code, result or allow-list backs.

    Only the result files whose names the lesson mentions count: a number must be backed by
    a measurement the lesson points its reader to, not by any figure that happens to match.
    """
    whole_text = json.dumps(notebook)
    values = lesson_values(notebook) | allowed.get("*", set()) | allowed.get(lesson, set())
    for name, numbers in results.items():
        if name in whole_text:
            values |= numbers
    problems = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        for number, percent in prose_numbers(_text(cell.get("source"))):
            if not is_supported(number, percent, values):
                problems.append(f"cell {index}: {number}{' %' if percent else ''}")
    return problems
