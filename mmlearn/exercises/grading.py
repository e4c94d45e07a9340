"""Grading mode: switched on by the grader before the notebook's first cell, never by a cell.

``scripts/grade_class.py`` starts every learner's kernel with an IPython startup file
that calls ``start_grading(log)``. From then on:

- a check that is not correct raises ``NotCorrect``, so nbgrader gives its cell no
  points (nothing a cell can set in ``os.environ`` changes this);
- ``qN.solution()`` calls are written to the log;
- after every cell a watchdog compares the exercise machinery with what it was at the
  start (the ``Question`` class, the grading switch, the questions the notebook
  imported) and writes any change to the log as tampering; it also writes one line per
  cell, so a log that stops early shows that the watchdog itself was removed.

The grader reads the log and puts what it found in the grades table.

What this cannot stop: code in the learner's kernel runs with the same rights as this
module, so a determined learner who reads this file can reach its state and forge
the log. It catches the one-line switches; a course that needs more must run the
learners' functions in a separate process.
"""

import json
import time
from pathlib import Path
from typing import Any

_STATE: dict[str, Any] = {"on": False, "log": None, "baseline": None}


def grading() -> bool:
    """True when a grader started this kernel in grading mode."""
    return bool(_STATE["on"])


def record(event: str, **details: Any) -> None:
    """Append one event to the grading log (nothing happens outside grading)."""
    log = _STATE["log"]
    if not _STATE["on"] or log is None:
        return
    line = json.dumps({"event": event, "time": round(time.time(), 3), **details})
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _machinery() -> dict[str, Any]:
    """The objects a learner could replace to switch grading off, by name."""
    from mmlearn.exercises import core

    watched = {f"Question.{name}": core.Question.__dict__.get(name)
               for name in ("check", "_feedback", "solution", "reveal")}
    watched.update({"core.grading": core.grading, "core.Question": core.Question,
                    "grading.record": record, "grading._STATE": _STATE})
    for question in core.registered_questions():
        label = f"{question.name} ({question.variable})"
        watched[f"{label}: its checker"] = question.checker
        watched[f"{label}: its check"] = question.__dict__.get("check")
    return watched


def _imported_questions(namespace: dict) -> dict[str, Any]:
    """The notebook's variables that hold one of the course's questions."""
    from mmlearn.exercises import core

    return {name: value for name, value in namespace.items()
            if isinstance(value, core.Question) and not name.startswith("_")}


def _after_cell(namespace: dict) -> None:
    """The watchdog: write one line per cell and any change to the machinery."""
    if not _STATE["on"]:
        return
    baseline = _STATE["baseline"]
    changed = [name for name, value in _machinery().items()
               if name in baseline and baseline[name] is not value]
    seen = _STATE.setdefault("questions", {})
    for name, question in _imported_questions(namespace).items():
        seen.setdefault(name, question)
    for name, question in seen.items():
        if namespace.get(name) is not question:
            changed.append(f"the notebook variable {name} (it no longer holds the question)")
    record("cell", tampered=sorted(set(changed)))


def start_grading(log: str | Path, shell: Any = None) -> None:
    """Switch grading on for this kernel and start the watchdog (the grader calls this)."""
    _STATE["log"] = str(log)
    _STATE["on"] = True
    _STATE["baseline"] = _machinery()
    record("start")
    if shell is not None:
        namespace = shell.user_ns

        def after_cell(*_: Any) -> None:
            _STATE["baseline"].update({k: v for k, v in _machinery().items()
                                       if k not in _STATE["baseline"]})
            _after_cell(namespace)
        shell.events.register("post_run_cell", after_cell)


def read_log(log: str | Path) -> dict[str, Any]:
    """What a grading log says: solutions shown, tampering, whether the watchdog ran to the end.

    Returns ``{"cells": n, "solutions": [question...], "tampered": [what...]}``.
    """
    summary: dict[str, Any] = {"cells": 0, "solutions": [], "tampered": []}
    path = Path(log)
    if not path.exists():
        summary["tampered"].append("no grading log (the grading start-up did not run)")
        return summary
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            summary["tampered"].append("a line of the grading log is not the grader's")
            continue
        if not isinstance(event, dict):
            continue
        if event.get("event") == "cell":
            summary["cells"] += 1
            for what in event.get("tampered", []):
                if what not in summary["tampered"]:
                    summary["tampered"].append(what)
        elif event.get("event") == "solution":
            question = str(event.get("question", "?"))
            if question not in summary["solutions"]:
                summary["solutions"].append(question)
    return summary
