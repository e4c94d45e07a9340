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
    if _STATE["on"]:
        _write(event, **details)


def _write(event: str, **details: Any) -> None:
    if _STATE["log"] is None:
        return
    line = json.dumps({"event": event, "time": round(time.time(), 3), **details})
    with open(_STATE["log"], "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _machinery() -> dict[tuple[str, str | None], Any]:
    """The objects a learner could replace to switch grading off, by (what, question)."""
    from mmlearn.exercises import core

    watched: dict[tuple[str, str | None], Any] = {
        (f"Question.{name}", None): core.Question.__dict__.get(name)
        for name in ("check", "_feedback", "solution", "reveal")}
    watched.update({("core.grading", None): core.grading, ("core.Question", None): core.Question,
                    ("grading.record", None): record, ("grading._STATE", None): _STATE})
    for question in core.registered_questions():
        watched[(f"{question.name}'s checker", question.name)] = question.checker
        watched[(f"{question.name}.check", question.name)] = question.__dict__.get("check")
    return watched


def _after_cell(namespace: dict) -> None:
    """The watchdog: write one line per cell, with any change to the machinery."""
    if _STATE["baseline"] is None:
        return  # grading never started in this kernel
    switched_off = not _STATE["on"]
    _STATE["on"] = True  # a cell switched grading off: it is logged and switched back on
    baseline = _STATE["baseline"]
    changed = [{"what": "grading was switched off", "question": None}] if switched_off else []
    changed += [{"what": what, "question": question}
               for (what, question), value in _machinery().items()
               if (what, question) in baseline and baseline[(what, question)] is not value]
    from mmlearn.exercises import core
    seen = _STATE.setdefault("questions", {})
    for name, value in namespace.items():
        if isinstance(value, core.Question) and not name.startswith("_"):
            seen.setdefault(name, value)
    for name, question in seen.items():
        if namespace.get(name) is not question:
            changed.append({"what": f"the notebook variable {name} no longer holds the question",
                            "question": question.name})
    _write("cell", tampered=changed)


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
    """What a grading log says: cells watched, solutions shown, tampering.

    Returns ``{"cells": n, "solutions": [question...], "tampered": [what...],
    "tampered_questions": {question...}, "machinery": bool}``; ``machinery`` is True when
    something that serves every question was changed (or the log is missing or forged).
    """
    summary: dict[str, Any] = {"cells": 0, "solutions": [], "tampered": [],
                               "tampered_questions": set(), "machinery": False}

    def tampered(what: str, question: Any = None) -> None:
        if what not in summary["tampered"]:
            summary["tampered"].append(what)
        if isinstance(question, str):
            summary["tampered_questions"].add(question)
        else:
            summary["machinery"] = True

    path = Path(log)
    if not path.exists():
        tampered("no grading log (the grading start-up did not run)")
        return summary
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            tampered("a line of the grading log is not the grader's")
            continue
        if event.get("event") == "cell":
            summary["cells"] += 1
            for finding in event.get("tampered", []):
                if isinstance(finding, dict):
                    tampered(str(finding.get("what")), finding.get("question"))
        elif event.get("event") == "solution":
            question = str(event.get("question", "?"))
            if question not in summary["solutions"]:
                summary["solutions"].append(question)
    return summary
