"""How long each committed lesson took to run: from its stored outputs, not a new run.

nbconvert stores, for every code cell, when it started and when the kernel answered; a
lesson's time is from its first cell's start to its last cell's answer. The README's
lesson table quotes these times, and a test keeps them in step with the committed runs.

    python scripts/lesson_times.py [notebooks/]
"""

import json
import sys
from datetime import datetime
from pathlib import Path


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def run_seconds(notebook: dict) -> float | None:
    """Seconds from the first code cell's start to the last one's reply (None: not stored)."""
    stamps = [cell["metadata"]["execution"] for cell in notebook.get("cells", [])
              if cell.get("cell_type") == "code" and cell.get("metadata", {}).get("execution")]
    if not stamps:
        return None
    return (_moment(stamps[-1]["shell.execute_reply"])
            - _moment(stamps[0]["iopub.execute_input"])).total_seconds()


def main(folder: str = "notebooks") -> None:
    for path in sorted(Path(folder).glob("*.ipynb")):
        seconds = run_seconds(json.loads(path.read_text(encoding="utf-8")))
        print(f"{path.name:45} {'not stored' if seconds is None else f'{seconds:6.1f} s'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
