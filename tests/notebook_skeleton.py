"""The notebook skeleton every lesson follows (COURSE.md §6), as a checkable list of rules.

``skeleton_problems`` returns what a notebook is missing, as sentences a contributor
can act on; the test runs it over every notebook in notebooks/.
"""

import json
import re
from pathlib import Path
from urllib.parse import quote

import tomllib

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 2_000_000


def repository_url() -> str:
    """The repository's public address: written once, in pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")


def badge_urls(relpath: str, repo_url: str) -> tuple[str, str]:
    """The Colab and Binder links that open the notebook at ``relpath`` (from the repo root)."""
    owner_repo = repo_url.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{owner_repo}/blob/main/{relpath}"
    binder = f"https://mybinder.org/v2/gh/{owner_repo}/main?labpath={quote(relpath, safe='')}"
    return colab, binder


def _text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _outputs_text(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(_text({"source": output.get("text", "")}))
        parts.append(_text({"source": output.get("data", {}).get("text/plain", "")}))
    return "".join(parts)


def _has_heading(cells: list[dict], pattern: str) -> bool:
    regex = re.compile(rf"^#{{2,3}}\s+.*{pattern}", re.IGNORECASE | re.MULTILINE)
    return any(c["cell_type"] == "markdown" and regex.search(_text(c)) for c in cells)


def buried_headings(cells: list[dict]) -> list[int]:
    """Markdown cells with a heading below other text: a heading must start its own cell,
    so that JupyterLab's table of contents and collapsible sections cut at the right place."""
    found = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text_before, in_block = False, False
        for line in _text(cell).splitlines():
            if line.strip().startswith("```") or line.strip() == "$$":
                in_block = not in_block
            elif not in_block and re.match(r"#{1,6} ", line) and text_before:
                found.append(index)
                break
            text_before = text_before or bool(line.strip())
    return found


def skeleton_problems(notebook: dict, relpath: str, repo_url: str, size: int = 0) -> list[str]:
    """Everything the notebook at ``relpath`` lacks to follow the course skeleton."""
    cells = notebook.get("cells", [])
    problems = []
    first = cells[0] if cells else {"cell_type": "code", "source": ""}
    if first["cell_type"] != "markdown" or not _text(first).lstrip().startswith("# "):
        problems.append("the first cell must be Markdown starting with a '# ' title")
    colab, binder = badge_urls(relpath, repo_url)
    head = _text(first)
    if colab not in head:
        problems.append(f"the title cell needs a Colab badge linking to {colab}")
    if binder not in head:
        problems.append(f"the title cell needs a Binder badge linking to {binder}")
    code = [c for c in cells if c["cell_type"] == "code"]
    install = [c for c in code if '"google.colab" in sys.modules' in _text(c)]
    if not install or repo_url not in _text(install[0]) or "pip install" not in _text(install[0]):
        problems.append("a code cell must install mmlearn from the repository only on Colab "
                        "(guarded by `if \"google.colab\" in sys.modules:`)")
    if not _has_heading(cells, "learning goals"):
        problems.append("a '## Learning goals' section is missing")
    setup = [c for c in code if "seed_everything(" in _text(c)]
    if not setup:
        problems.append("a setup cell must call seed_everything(...)")
    elif "model" not in _outputs_text(setup[0]).lower():
        problems.append("the setup cell's output must say which model is active")
    elif "Device:" not in _outputs_text(setup[0]):
        problems.append("the setup cell must print the device (print(describe_device()))")
    if not _has_heading(cells, "exercises"):
        problems.append("an '## Exercises' section is missing")
    if not _has_heading(cells, "summary"):
        problems.append("a '## Summary' section is missing")
    if not _has_heading(cells, "references"):
        problems.append("a '## References' section is missing")
    buried = buried_headings(cells)
    if buried:
        problems.append(f"markdown cells {buried[:5]} hold a heading below other text: start "
                        f"a new cell at the heading")
    marked = [i for i, c in enumerate(code) if "# NBVAL" in _text(c)]
    if marked:
        problems.append(f"code cells {marked[:5]} carry '# NBVAL' comments: nbval's markers "
                        "live in cell tags (nbval-check-output), not in code a learner reads")
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        problems.append(f"{len(errors)} stored error output(s): re-run the notebook cleanly")
    if not any(c.get("outputs") for c in code):
        problems.append("no stored outputs: run the notebook "
                        "(make execute NB=...) before committing")
    problems += output_problems(code, notebook.get("metadata", {}))
    if size > MAX_BYTES:
        problems.append(f"the file is {size / 1e6:.1f} MB, over the 2 MB budget")
    return problems


# A path of the machine that ran the notebook: meaningless, and private, anywhere else.
MACHINE_PATH = re.compile(r"(/work/|/root/|/home/[^/\s]+/|/tmp/|/Users/[^/\s]+/|"
                          r"[A-Z]:\\\\?Users)")
# A progress bar stored before it finished: GitHub and an unrun notebook show "0%".
UNFINISHED_BAR = re.compile(r"(?<![\d.])0%\|")


def output_problems(code: list[dict], metadata: dict) -> list[str]:
    """Stored outputs a reader should not see: stderr, machine paths, unfinished bars."""
    problems = []
    for number, cell in enumerate(code, start=1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                first = _text({"source": output.get("text", "")}).strip().splitlines()[:1]
                problems.append(f"code cell {number} stored stderr output ({first}): "
                                f"catch the warning or silence the log")
        text = _outputs_text(cell)
        if MACHINE_PATH.search(text):
            problems.append(f"code cell {number}'s output shows a machine path "
                            f"({MACHINE_PATH.search(text).group(0)}...)")
        if UNFINISHED_BAR.search(text):
            problems.append(f"code cell {number} stored an unfinished progress bar (0%|)")
    widget_state = json.dumps(metadata.get("widgets", {}))
    if MACHINE_PATH.search(widget_state):
        problems.append("the saved widget state shows a machine path")
    return problems


def notebook_paths() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def check_file(path: Path) -> list[str]:
    relpath = path.relative_to(ROOT).as_posix()
    return skeleton_problems(json.loads(path.read_text()), relpath, repository_url(),
                             path.stat().st_size)
