"""One lesson as a fresh Colab runtime runs it (run by tests/places/colab.py, in the
Python 3.13 venv that holds Colab's own package versions).

Colab imports ``google.colab`` (and through it numpy and PIL) before the first cell runs;
its ``%pip`` runs pip in the kernel's Python. This script does the same: a stand-in
``google.colab`` module, numpy and PIL imported, then the notebook's cells in an IPython
shell, the Colab cell first (its ``/content/mmlearn`` clone replaced by this checkout).

    python colab_runtime.py CHECKOUT NOTEBOOK [--all-cells]

Without ``--all-cells`` it runs the Colab cell and the lesson's setup cell (the first that
imports mmlearn). Then Colab's transformers and diffusers must still import. Exit 1 on the
first cell that fails, with its error.
"""

import json
import sys
import types
from pathlib import Path

import numpy  # noqa: F401  Colab imports numpy and PIL when the runtime starts
import PIL  # noqa: F401
from IPython.core.interactiveshell import InteractiveShell


def colab_cell_index(cells: list[dict]) -> int:
    return next(i for i, cell in enumerate(cells) if cell["cell_type"] == "code"
                and '"google.colab" in sys.modules' in "".join(cell["source"]))


def cells_to_run(notebook: Path, checkout: Path, all_cells: bool) -> list[tuple[int, str]]:
    cells = json.loads(notebook.read_text())["cells"]
    first = colab_cell_index(cells)
    code = [(i, "".join(cell["source"])) for i, cell in enumerate(cells)
            if cell["cell_type"] == "code" and i >= first]
    code[0] = (first, code[0][1].replace("/content/mmlearn", str(checkout)))
    if all_cells:
        return code
    setup = next(item for item in code[1:] if "mmlearn" in item[1])
    return [code[0], setup]


def main(checkout: str, notebook: str, *flags: str) -> int:
    sys.modules["google.colab"] = types.ModuleType("google.colab")  # what the cell tests for
    shell = InteractiveShell.instance()
    for index, source in cells_to_run(Path(notebook), Path(checkout), "--all-cells" in flags):
        result = shell.run_cell(source, store_history=True)
        if not result.success:
            error = result.error_in_exec or result.error_before_exec
            print(f"FAILED: {Path(notebook).name}, cell {index}: {type(error).__name__}: {error}")
            return 1
    for name in ("transformers", "diffusers"):
        result = shell.run_cell(f"import {name}; {name}.__version__")
        if not result.success:
            print(f"FAILED: after the lesson, Colab's own {name} no longer imports: "
                  f"{result.error_in_exec}")
            return 1
    result = shell.run_cell("from transformers import CLIPTextModel")
    if not result.success:
        print(f"FAILED: transformers' CLIP classes (diffusers' UnCLIPPipeline needs them): "
              f"{result.error_in_exec}")
        return 1
    print(f"ok: {Path(notebook).name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
