"""Write the two requirement files that follow from requirements-lock.txt.

- ``binder/requirements.txt``: mybinder.org gives 2 GB of RAM and no GPU, so the CUDA
  build of torch (and the nvidia-* / triton wheels it pulls in) would only make the
  image huge. Every Linux pin of the learners' lock, with torch and torchvision as CPU
  builds.
- ``requirements/colab.txt``: Colab has already imported numpy and PIL when the first
  cell runs, and a package replaced after its import breaks the running kernel (Pillow's
  "_imaging extension was built for another version"). So Colab gets only what it lacks:
  mmlearn's run-time dependencies, at the lock's versions, minus every package in Colab's
  published list (``requirements/colab-preinstalled.txt``), minus pytorch-lightning
  (taming-transformers asks for it; mmlearn uses only ``taming.modules``). The Colab cell
  installs it with ``pip install --no-deps``; tests/test_colab_requirements.py checks that
  Colab's own versions satisfy every range mmlearn and these packages declare.

The lock file stays the one place to change a version. Run in the course venv
(``make requirements``); ``--check`` only says whether the files are up to date.
"""

import sys
from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_platforms import marker_environment, requirements_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-lock.txt"
BINDER = ROOT / "binder" / "requirements.txt"
COLAB = ROOT / "requirements" / "colab.txt"
COLAB_PREINSTALLED = ROOT / "requirements" / "colab-preinstalled.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_ONLY_PREFIXES = ("nvidia-", "cuda-", "triton")
CPU_BUILDS = ("torch", "torchvision")
# taming-transformers asks for Lightning, which mmlearn never imports (taming.modules only).
NOT_NEEDED = {"pytorch-lightning"}


def header(target: str) -> list[str]:
    return [f"# {target}: generated from requirements-lock.txt by scripts/make_requirements.py;",
            "# do not edit by hand (run 'make lock', or 'python scripts/course.py requirements')."]


def linux_pins(lock_text: str) -> list[str]:
    return requirements_for(lock_text.splitlines(), "linux-x86_64")


def binder_requirements(lock_text: str) -> str:
    lines = header("mybinder.org, CPU only") + [f"--extra-index-url {CPU_INDEX}"]
    for pin in linux_pins(lock_text):
        name, _, version = pin.partition("==")
        if name.lower().startswith(CUDA_ONLY_PREFIXES):
            continue
        lines.append(f"{name}=={version}+cpu" if name.lower() in CPU_BUILDS else pin)
    return "\n".join(lines) + "\n"


def colab_preinstalled(text: str | None = None) -> dict[str, str]:
    """Colab's packages, name -> version ("" where Colab installed it from a URL)."""
    text = COLAB_PREINSTALLED.read_text() if text is None else text
    packages = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            packages[canonicalize_name(name)] = version
    return packages


def runtime_closure(root: str = "mmlearn", present: frozenset = frozenset()) -> set[str]:
    """Names of the packages ``root`` needs at run time (no extras), read from the venv.

    A package in ``present`` is taken as there already, with what it needs.
    """
    environment = marker_environment("linux-x86_64")
    needed, todo = set(), [root]
    while todo:
        name = canonicalize_name(todo.pop())
        if (name in needed or name in present or name in NOT_NEEDED
                or name.startswith(CUDA_ONLY_PREFIXES)):
            continue
        needed.add(name)
        try:
            dependencies = requires(name) or []
        except PackageNotFoundError:
            raise SystemExit(f"{name} is not installed: run this in the course venv.") from None
        for line in dependencies:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append(requirement.name)
    return needed - {canonicalize_name(root)}


def colab_requirements(lock_text: str) -> str:
    needed = runtime_closure(present=frozenset(colab_preinstalled()))
    lines = header("Colab: only what Colab lacks")
    lines += [pin for pin in linux_pins(lock_text)
              if canonicalize_name(pin.partition("==")[0]) in needed]
    return "\n".join(lines) + "\n"


def main() -> int:
    lock_text = LOCK.read_text()
    wanted = {BINDER: binder_requirements(lock_text), COLAB: colab_requirements(lock_text)}
    stale = [path for path, text in wanted.items()
             if not path.exists() or path.read_text() != text]
    if "--check" in sys.argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run 'make requirements'.")
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
