"""Pytest hooks for the whole repository: a per-notebook cost table after nbval runs.

`make test` runs two notebooks at a time, so a notebook's seconds include what the other
kernel costs it (shared caches and memory bandwidth): 15-20 % more than alone for the
lessons that train or optimise.

Every change to a lesson shows what it costs: seconds and the kernel's peak memory
(VmHWM, read from /proc on Linux) for each notebook, printed at the end of the run, with the
largest share of it that was files mapped into memory (RssFile: the libraries' code, shared
with every other process and dropped first under pressure). Right after the libraries are
installed that share is larger (their freshly written pages are mapped in bigger pieces), so
a fresh clone's first run shows a higher peak than later runs for the same kernel work.
"""

import os
from collections import defaultdict
from pathlib import Path

import pytest

# nbval starts each kernel in its notebook's folder: a relative IPYTHONDIR (such as
# tests/accelerator/ipython, the emulated GPU) would point nowhere there, silently.
if os.environ.get("IPYTHONDIR"):
    os.environ["IPYTHONDIR"] = os.path.abspath(os.environ["IPYTHONDIR"])

_seconds: dict[str, float] = defaultdict(float)
_peak_mb: dict[str, float] = defaultdict(float)
_files_mb: dict[str, float] = defaultdict(float)


def _children_memory_mb(field: str) -> float:
    """Largest value of a /proc status field (VmHWM: peak resident memory; RssFile: files
    mapped now) among this process's children (the notebook kernel)."""
    largest = 0.0
    try:
        import psutil
        for child in psutil.Process(os.getpid()).children(recursive=True):
            status = Path(f"/proc/{child.pid}/status")
            for line in status.read_text().splitlines():
                if line.startswith(f"{field}:"):
                    largest = max(largest, int(line.split()[1]) / 1024)
    except Exception:  # not Linux, or the kernel already gone: the table shows 0
        pass
    return largest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Read the kernel's memory where the kernel runs: with two notebooks at a time
    (pytest-xdist) that is the worker, whose only child is its notebook's kernel."""
    outcome = yield
    if call.when == "call" and item.nodeid.split("::")[0].endswith(".ipynb"):
        outcome.get_result().user_properties.append(
            ("kernel_mb", (_children_memory_mb("VmHWM"), _children_memory_mb("RssFile"))))


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if not path.endswith(".ipynb"):
        return
    _seconds[path] += report.duration
    for name, (peak, files) in report.user_properties:
        if name == "kernel_mb":
            _peak_mb[path] = max(_peak_mb[path], peak)
            _files_mb[path] = max(_files_mb[path], files)


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    write = terminalreporter.write_line
    terminalreporter.section("notebook cost (wall seconds, kernel peak RSS, files mapped)")
    for path in sorted(_seconds):
        write(f"{path:<50} {_seconds[path]:7.1f} s {_peak_mb[path]:8.0f} MB "
              f"(files {_files_mb[path]:4.0f} MB)")
    write(f"{'total (kernel seconds)':<50} {sum(_seconds.values()):7.1f} s")
