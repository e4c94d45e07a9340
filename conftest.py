"""Pytest hooks for the whole repository: a per-notebook cost table after nbval runs.

Every change to a lesson shows what it costs: seconds and the kernel's peak memory
(VmHWM, read from /proc on Linux) for each notebook, printed at the end of the run.
"""

import os
from collections import defaultdict
from pathlib import Path

# nbval starts each kernel in its notebook's folder: a relative IPYTHONDIR (such as
# tests/accelerator/ipython, the emulated GPU) would point nowhere there, silently.
if os.environ.get("IPYTHONDIR"):
    os.environ["IPYTHONDIR"] = os.path.abspath(os.environ["IPYTHONDIR"])

_seconds: dict[str, float] = defaultdict(float)
_peak_mb: dict[str, float] = defaultdict(float)


def _children_peak_rss_mb() -> float:
    """Largest peak resident memory among this process's children (the notebook kernel)."""
    peak = 0.0
    try:
        import psutil
        for child in psutil.Process(os.getpid()).children(recursive=True):
            status = Path(f"/proc/{child.pid}/status")
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
    except Exception:  # not Linux, or the kernel already gone: the table shows 0
        pass
    return peak


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if not path.endswith(".ipynb"):
        return
    _seconds[path] += report.duration
    if report.when == "call":
        _peak_mb[path] = max(_peak_mb[path], _children_peak_rss_mb())


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    write = terminalreporter.write_line
    terminalreporter.section("notebook cost (wall seconds, kernel peak RSS)")
    for path in sorted(_seconds):
        write(f"{path:<50} {_seconds[path]:7.1f} s {_peak_mb[path]:8.0f} MB")
    write(f"{'total':<50} {sum(_seconds.values()):7.1f} s")
