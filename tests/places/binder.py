"""mybinder.org, simulated: JupyterLab's server and each lesson's kernel in one control group
with Binder's limits (2 GiB of memory, one CPU), every lesson run to its end.

mybinder.org gives a user's pod 2 GiB (server and kernel together) and one CPU, as a CFS
quota, and sets ``MEM_LIMIT`` and ``CPU_LIMIT``. Here, as root: a cgroup (v1 or v2) with
the same limits; caches dropped; JupyterLab started from the learners' .venv inside it;
then each lesson executed by nbconvert (a kernel, as "Run all" starts one), also inside it.
A sampler reads the group's anonymous memory (page cache is reclaimable, so it is not what
gets a kernel killed) every 0.2 s. A planted lesson that allocates 2.5 GB must fail first:
that shows the limit bites.

    sudo python tests/places/binder.py [LESSON ...]     (scripts/course.py sim-binder)

What it leaves out: Binder's image (repo2docker's Python 3.11.14 and conda-installed Jupyter;
here the course's .venv with PyPI's CUDA torch, whose larger libraries fill more page cache),
the network, the browser (tests/browser drives JupyterLab), and other users on the node.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT_BYTES = 2 * 2**30      # mybinder.org's pod limit, "2G" in JupyterHub's binary units
CPU_PERIOD_US = 100_000      # one CPU: a quota equal to the period
ENV = {"MEM_LIMIT": str(LIMIT_BYTES), "CPU_LIMIT": "1.0", "MMLEARN_OFFLINE": "1",
       "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
CELL_TIMEOUT = 600
# Room each lesson must leave in the group: the server grows with open notebooks, and a
# learner's own experiments need some too.
HEADROOM_BYTES = 512 * 2**20
PLANTED = "import numpy\nballast = numpy.ones(2_500_000_000 // 8)  # 2.5 GB, written\n"


class Group:
    """A cgroup with Binder's limits; v2 where the machine has it, else v1."""

    def __init__(self, name: str = "mmlearn-binder"):
        self.v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
        if self.v2:
            self.dirs = [Path("/sys/fs/cgroup") / name]
        else:
            self.dirs = [Path("/sys/fs/cgroup/memory") / name, Path("/sys/fs/cgroup/cpu") / name]
        for folder in self.dirs:
            folder.mkdir(exist_ok=True)
        if self.v2:
            Path("/sys/fs/cgroup/cgroup.subtree_control").write_text("+memory +cpu")
            self._write("memory.max", LIMIT_BYTES)
            self._write("memory.swap.max", 0)
            self._write("cpu.max", f"{CPU_PERIOD_US} {CPU_PERIOD_US}")
        else:
            self._write("memory.limit_in_bytes", LIMIT_BYTES)
            self._write("cpu.cfs_period_us", CPU_PERIOD_US)
            self._write("cpu.cfs_quota_us", CPU_PERIOD_US)

    def _write(self, name: str, value) -> None:
        for folder in self.dirs:
            if (folder / name).exists():
                (folder / name).write_text(f"{value}\n")

    def join(self) -> None:
        """Put the calling process (and so its children) in the group."""
        for folder in self.dirs:
            (folder / "cgroup.procs").write_text(f"{os.getpid()}\n")

    def anonymous_bytes(self) -> int:
        stat = dict(line.split() for line in (self.dirs[0] / "memory.stat").read_text()
                     .splitlines())
        return int(stat["anon"] if self.v2 else stat["total_rss"])

    def remove(self) -> None:
        for folder in self.dirs:
            for pid in (folder / "cgroup.procs").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.5)
            folder.rmdir()


class PeakSampler(threading.Thread):
    """Keeps the largest anonymous memory seen in the group since the last reset."""

    def __init__(self, group: Group):
        super().__init__(daemon=True)
        self.group, self.peak, self.running = group, 0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.group.anonymous_bytes())
            time.sleep(0.2)

    def reset(self) -> int:
        peak, self.peak = self.peak, self.group.anonymous_bytes()
        return peak


def start_lab(group: Group, log) -> subprocess.Popen:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/python"), "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--notebook-dir=notebooks", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}"],
        cwd=ROOT, stdout=log, stderr=log, preexec_fn=group.join, env={**os.environ, **ENV})
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10)
            return server
        except OSError:
            time.sleep(0.5)
    raise SystemExit("JupyterLab did not start in the Binder group within 2 minutes.")


def run_lesson(notebook: Path, group: Group, out: Path) -> tuple[bool, float, str]:
    """Execute ``notebook`` with nbconvert inside the group: (ran to the end, seconds, log).

    A cell may take CELL_TIMEOUT seconds (the longest takes about a tenth of that here).
    A lesson whose kernel stops answering is run once more, and the hang is printed: once,
    an idle kernel left nbconvert waiting for a reply (ipykernel 7 has such reports); a
    lesson that hangs twice fails.
    """
    start = time.perf_counter()
    for attempt in (1, 2):
        result = subprocess.run(
            [str(ROOT / ".venv/bin/python"), "-m", "jupyter", "nbconvert", "--to", "notebook",
             "--execute", f"--ExecutePreprocessor.timeout={CELL_TIMEOUT}",
             f"--output-dir={out}", str(notebook)],
            cwd=notebook.parent, capture_output=True, text=True, preexec_fn=group.join,
            env={**os.environ, **ENV})
        hung = "CellTimeoutError" in result.stderr or "Timeout waiting" in result.stderr
        if not hung or attempt == 2:
            break
        print(f"HANG: {notebook.name}: a cell gave no reply within {CELL_TIMEOUT} s; running "
              "the lesson once more.", flush=True)
    return result.returncode == 0, time.perf_counter() - start, result.stderr[-1500:]


def threads_in_group(group: Group) -> str:
    code = "import torch, mmlearn; print(torch.get_num_threads())"
    return subprocess.run([str(ROOT / ".venv/bin/python"), "-c", code], capture_output=True,
                          text=True, preexec_fn=group.join,
                          env={**os.environ, **ENV}).stdout.strip()


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        raise SystemExit("The Binder simulation makes a cgroup: run it as root.")
    lessons = [ROOT / a for a in argv] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    out = Path(tempfile.mkdtemp(prefix="binder-sim-"))
    planted = out / "planted_over_the_limit.ipynb"
    planted.write_text(json.dumps({"cells": [{"cell_type": "code", "execution_count": None,
                                              "metadata": {}, "outputs": [],
                                              "source": PLANTED}],
                                   "metadata": {"kernelspec": {"name": "python3",
                                                               "display_name": "Python 3",
                                                               "language": "python"}},
                                   "nbformat": 4, "nbformat_minor": 5}))
    subprocess.run(["sync"])
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    group = Group()
    sampler = PeakSampler(group)
    rows, failed = [], []
    try:
        with open(out / "lab.log", "w") as log:
            start_lab(group, log)
            sampler.start()
            print(f"JupyterLab is up in the group; torch threads there: {threads_in_group(group)}"
                  f"; server alone: {group.anonymous_bytes() / 2**20:.0f} MiB", flush=True)
            ok, seconds, _ = run_lesson(planted, group, out)
            peak = sampler.reset()
            print(f"planted 2.5 GB lesson: {'ran (the limit did not bite!)' if ok else 'failed'}"
                  f", peak {peak / 2**20:.0f} MiB", flush=True)
            if ok:
                failed.append(planted.name)
            for notebook in lessons:
                ok, seconds, error = run_lesson(notebook, group, out)
                peak = sampler.reset()
                rows.append((notebook.name, ok, seconds, peak))
                print(f"{notebook.name:45s} {'ok' if ok else 'FAILED':6s} {seconds:6.1f} s  "
                      f"peak anonymous {peak / 2**20:5.0f} MiB", flush=True)
                if not ok:
                    failed.append(notebook.name)
                    print(error)
                elif LIMIT_BYTES - peak < HEADROOM_BYTES:
                    failed.append(notebook.name)
                    print(f"{notebook.name} leaves less than {HEADROOM_BYTES // 2**20} MiB "
                          "of the 2 GiB for the server to grow.")
    finally:
        sampler.running = False
        group.remove()
    print(f"\nBinder simulation: {LIMIT_BYTES / 2**30:.0f} GiB and 1 CPU for JupyterLab's server "
          f"and the kernel together (cgroup {'v2' if group.v2 else 'v1'}).")
    print("| lesson | seconds | peak anonymous memory | room left of 2 GiB |\n|---|---|---|---|")
    for name, ok, seconds, peak in rows:
        print(f"| {name} | {seconds:.1f} | {peak / 2**20:.0f} MiB | "
              f"{(LIMIT_BYTES - peak) / 2**20:.0f} MiB |" + ("" if ok else " FAILED"))
    print(f"Bar: every lesson runs to its end and leaves {HEADROOM_BYTES // 2**20} MiB; "
          f"{'failed: ' + ', '.join(failed) if failed else 'met'}.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
