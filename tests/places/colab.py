"""Colab, simulated: every lesson's first cells run as on a fresh Colab runtime, lesson 00 whole.

Colab runs Python 3.13 with its own torch, numpy, Pillow, matplotlib, ipywidgets 7.7 and
an old IPython kernel, imports numpy and PIL before the first cell, and lets ``%pip``
install into that running Python. This builds a Python 3.13 venv holding Colab's versions
of the packages the course meets (from requirements/colab-preinstalled.txt, Colab's
published list), removes whatever a previous run installed, then runs each lesson in a new
process (tests/places/colab_runtime.py): the Colab cell as written, with the clone replaced
by this checkout, then the lesson's setup cell; lesson 00 to its end. Colab's transformers
and diffusers must import afterwards.

    python tests/places/colab.py            (scripts/course.py sim-colab; CI runs it)

What it leaves out: Colab's GPU (torch here is PyPI's CUDA build, run on the CPU), its
network (the course runs offline, so the pretrained path is not taken), its browser front
end (widgets are checked by tests/browser with ipywidgets 7.7), the 700 Colab packages the
course never imports, and Colab's ``!git clone`` (the checkout stands in for it).
"""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PREINSTALLED = ROOT / "requirements" / "colab-preinstalled.txt"
WORK = ROOT / "build" / "places" / "colab"
VENV = WORK / "venv"
# Colab's packages that the lessons, mmlearn, open_clip and taming import, and the two
# that a course must not break (lesson 06's real-unCLIP cell uses diffusers).
COLAB_PACKAGES = ["pip", "torch", "torchvision", "numpy", "pillow", "matplotlib", "ipywidgets",
                  "ipykernel", "ipython", "huggingface-hub", "safetensors", "timm", "omegaconf",
                  "pyyaml", "regex", "tqdm", "wcwidth", "packaging", "transformers",
                  "diffusers"]
# What the Colab cell installs; removed before each run so that every run is a first install.
COURSE_PACKAGES = ["mmlearn", "ftfy", "open-clip-torch", "taming-transformers"]
OFFLINE = {"MMLEARN_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0",
           "MPLBACKEND": "Agg"}


def python313() -> str:
    # pyenv's own copy first: its shim answers only where pyenv selected 3.13.
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))
    found = pyenv[-1] if pyenv else shutil.which("python3.13")
    if not found:
        raise SystemExit("The Colab simulation needs Python 3.13 (Colab's): none was found.")
    return found


def constraints() -> str:
    """Colab's list as pip constraints: versions only, local tags (+cu128) dropped.

    Colab's torch is a CUDA 12.8 build; PyPI's torch of the same version asks for CUDA 13
    libraries, so Colab's nvidia-* and cuda-* pins are left to torch.
    """
    lines = []
    for line in PREINSTALLED.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith(("nvidia-", "cuda-")):
            lines.append(line.split("+", 1)[0])
    return "\n".join(lines) + "\n"


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    print("$ " + " ".join(map(str, command)), flush=True)
    return subprocess.run([str(c) for c in command], check=True, **kwargs)


def colab_venv() -> Path:
    """The Python 3.13 venv with Colab's versions (rebuilt when Colab's list changes)."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".colab-packages"
    wanted = hashlib.sha256((constraints() + " ".join(COLAB_PACKAGES)).encode()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(VENV, ignore_errors=True)
        WORK.mkdir(parents=True, exist_ok=True)
        run([python313(), "-m", "venv", VENV])
    (WORK / "constraints.txt").write_text(constraints())
    run([python, "-m", "pip", "uninstall", "--quiet", "--yes", *COURSE_PACKAGES],
        stderr=subprocess.DEVNULL)
    # Also puts back anything a previous run replaced (numpy, Pillow, ...).
    run([python, "-m", "pip", "install", "--quiet", "--constraint", WORK / "constraints.txt",
         *COLAB_PACKAGES])
    stamp.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    python = colab_venv()
    lessons = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    failed, times = [], {}
    for notebook in lessons:
        start = time.perf_counter()
        flags = ["--all-cells"] if notebook.name.startswith("00_") else []
        result = subprocess.run([str(python), str(HERE / "colab_runtime.py"), str(ROOT),
                                 str(notebook), *flags], cwd=notebook.parent,
                                env={**os.environ, **OFFLINE})
        times[notebook.name] = time.perf_counter() - start
        if result.returncode != 0:
            failed.append(notebook.name)
    print("\nColab simulation (Python 3.13, Colab's package versions):")
    for name, seconds in times.items():
        what = "all cells" if name.startswith("00_") else "Colab cell + setup cell"
        print(f"  {name:45s} {what:24s} {seconds:6.1f} s  "
              f"{'FAILED' if name in failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
