"""The course's commands, in plain Python so that they run the same on Linux, macOS and Windows.

    python scripts/course.py lab     build .venv from the lock file (first time), start JupyterLab
    python scripts/course.py test    lint, unit tests, every notebook under nbval, platform check
    python scripts/course.py test-browser   the widget lessons in JupyterLab, headless Chromium

On Windows, where there is no ``make``: ``py -3.11 scripts\\course.py lab``. The Makefile
calls this script, so there is one recipe. It uses only the standard library: it must
run before the venv exists.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements-lock.txt"
STAMP = VENV / ".installed"
# The lock was resolved for Python 3.11; soupsieve 4.1.2 in it needs 3.11.5 or later.
OLDEST_PYTHON = (3, 11, 5)
# Tests and notebook runs never touch the network (the course models are shipped);
# a fixed hash seed makes set and dict orders, and so the outputs, repeat.
OFFLINE = {"MMLEARN_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
NBVAL_FLAGS = ["--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=1800",
               "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]


def venv_python(venv: Path = VENV, windows: bool = os.name == "nt") -> Path:
    """The venv's interpreter: ``Scripts\\python.exe`` on Windows, ``bin/python`` elsewhere."""
    return venv / "Scripts" / "python.exe" if windows else venv / "bin" / "python"


def check_python(version: tuple = tuple(sys.version_info[:3])) -> None:
    """Stop early, with what to do, on a Python the lock file cannot install on."""
    wanted = ".".join(map(str, OLDEST_PYTHON))
    if not (OLDEST_PYTHON <= tuple(version) < (3, 12)):
        raise SystemExit(f"This course's lock file is made for Python {wanted} to 3.11.x; this "
                         f"is Python {'.'.join(map(str, version))}. Install Python 3.11 "
                         f"(python.org, or 'brew install python@3.11'), then run this "
                         f"script with it (Windows: 'py -3.11 scripts\\course.py lab').")


def lock_fingerprint() -> str:
    """Changes whenever the lock file or pyproject.toml does: the venv is then reinstalled."""
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run(command: list, env: dict | None = None) -> None:
    """Run a command from the repository's folder; stop with its exit code if it fails."""
    printable = " ".join(str(part) for part in command)
    print(f"$ {printable}", flush=True)
    result = subprocess.run([str(part) for part in command], cwd=ROOT,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def setup() -> Path:
    """Create .venv from the lock file unless it is already up to date; return its python."""
    python = venv_python()
    if STAMP.exists() and STAMP.read_text().strip() == lock_fingerprint():
        return python
    check_python()
    if not python.exists():
        run([sys.executable, "-m", "venv", VENV])
    pip_pin = next(line.split(";")[0].strip() for line in LOCK.read_text().splitlines()
                   if line.startswith("pip=="))
    run([python, "-m", "pip", "install", "--quiet", pip_pin])
    run([python, "-m", "pip", "install", "--quiet", "-r", LOCK])
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "-e", ROOT])
    STAMP.write_text(lock_fingerprint() + "\n")
    return python


def lab_flags(has_screen: bool, is_root: bool) -> list[str]:
    """No screen (a server, CI): don't open a browser. Root (containers): Jupyter must be told."""
    flags = [] if has_screen else ["--no-browser"]
    return flags + (["--allow-root"] if is_root else [])


def lab_command(python: Path, *extra: str) -> list:
    """The command that starts JupyterLab on notebooks/ (also used by the browser test)."""
    has_screen = os.name == "nt" or sys.platform == "darwin" or bool(os.environ.get("DISPLAY"))
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return [python, "-m", "jupyter", "lab", "--notebook-dir=notebooks", "--ip=127.0.0.1",
            *lab_flags(has_screen, is_root), *extra]


def lab() -> None:
    python = setup()
    print("Starting JupyterLab; open the http://127.0.0.1:... address it prints below.")
    run(lab_command(python))


def lint() -> None:
    run([setup(), "-m", "ruff", "check", "mmlearn", "scripts", "tests", "benchmarks"])


def unit(*pytest_args: str) -> None:
    run([setup(), "-m", "pytest", "tests", "--ignore=tests/browser", *pytest_args],
        env={**OFFLINE, "MPLBACKEND": "Agg"})


def test_browser() -> None:
    """Lessons 02 and 03 in JupyterLab in headless Chromium (Debian's chromium and its driver)."""
    run([setup(), "-m", "pytest", "tests/browser", "-v"], env=OFFLINE)


def notebooks() -> None:
    run([setup(), "-m", "pytest", *NBVAL_FLAGS, "notebooks"],
        env={**OFFLINE, "MPLBACKEND": "Agg"})


def platforms() -> None:
    """Every platform a learner brings can install the lock (pip dry runs; needs the index)."""
    run([setup(), "scripts/check_platforms.py", LOCK])


def test() -> None:
    lint()
    unit()
    notebooks()
    platforms()


def lock() -> None:
    """Re-resolve the universal lock; uv keeps every version already locked if it can."""
    python = setup()
    run([python, "-m", "uv", "pip", "compile", "--universal", "--python-version",
         ".".join(map(str, OLDEST_PYTHON)), "pyproject.toml", "--extra", "dev",
         "--extra", "teacher", "requirements/pins.txt", "--output-file", LOCK,
         "--custom-compile-command", "make lock"])
    requirements()


def requirements() -> None:
    """binder/requirements.txt and requirements/colab.txt, derived from the lock."""
    run([setup(), "scripts/make_requirements.py"])


COMMANDS = {"setup": setup, "lab": lab, "test": test, "test-browser": test_browser,
            "lint": lint, "unit": unit,
            "notebooks": notebooks, "platforms": platforms, "lock": lock,
            "requirements": requirements}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(__doc__ + f"\ncommands: {', '.join(COMMANDS)}")
    if argv[0] == "unit":
        unit(*argv[1:])  # extra arguments go to pytest, e.g. -m "not slow"
    else:
        COMMANDS[argv[0]]()


if __name__ == "__main__":
    main(sys.argv[1:])
