"""The course's commands, in plain Python so that they run the same on Linux, macOS and Windows.

    python scripts/course.py lab     build .venv from the lock file (first time), start JupyterLab
    python scripts/course.py test    lint, unit tests, every notebook under nbval, platform check
    python scripts/course.py test-browser   the widget lessons in JupyterLab, headless Chromium
    python scripts/course.py places  Colab, a GPU and Binder simulated (CI; Binder needs root)

Two environments. ``.venv`` is the learners': mmlearn's dependencies and JupyterLab, from
requirements-lock.txt, and nothing else (Binder and conda install the same). ``.venv-dev``
adds the developers' and teachers' tools (pytest, nbval, ruff, nbgrader, ...) from
requirements/dev-lock.txt, on top of ``.venv``'s packages rather than a second copy of
torch: its site-packages has a ``.pth`` line that adds ``.venv``'s. Tests, grading and
student copies run there; JupyterLab for learners runs from ``.venv``, with no teacher menus.

On Windows, where there is no ``make``: ``py -3.11 scripts\\course.py lab``. The Makefile
calls this script, so there is one recipe. It uses only the standard library: it must
run before the venv exists.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements-lock.txt"
STAMP = VENV / ".installed"
DEV_VENV = ROOT / ".venv-dev"
DEV_LOCK = ROOT / "requirements" / "dev-lock.txt"
DEV_STAMP = DEV_VENV / ".installed"
# The lock was resolved for Python 3.11; soupsieve 4.1.2 in it needs 3.11.5 or later.
OLDEST_PYTHON = (3, 11, 5)
# Tests and notebook runs never touch the network (the course models are shipped);
# a fixed hash seed makes set and dict orders, and so the outputs, repeat.
OFFLINE = {"MMLEARN_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONHASHSEED": "0"}
NBVAL_FLAGS = ["--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=1800",
               "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]
# Two notebooks at a time (pytest-xdist), each one's cells in order in its own kernel
# (--dist loadscope, as nbval asks), each kernel on one thread so that two kernels share two
# cores without queueing: nbval takes about half as long, and each lesson a little longer.
NOTEBOOKS_AT_ONCE = ["-n", "2", "--dist", "loadscope"]
ONE_THREAD_PER_KERNEL = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


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


def lock_fingerprint(*locks: Path) -> str:
    """Changes whenever a lock file or pyproject.toml does: the venv is then reinstalled."""
    digest = hashlib.sha256()
    for path in (*(locks or (LOCK,)), ROOT / "pyproject.toml"):
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


def start(command: list) -> subprocess.Popen:
    """Start a command from the repository's folder in the background, its output kept."""
    print(f"$ {' '.join(str(part) for part in command)}  (in the background)", flush=True)
    return subprocess.Popen([str(part) for part in command], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> None:
    """Wait for a ``start``-ed command, print its output; stop with its exit code if it failed."""
    output, _ = process.communicate()
    print(output, end="", flush=True)
    if process.returncode != 0:
        raise SystemExit(process.returncode)


def _fresh_venv(venv: Path, stamp: Path) -> Path:
    """The venv's python, in a new venv when it was built from an older lock.

    pip adds and upgrades but never removes, so a venv from an older lock would keep
    packages the new lock dropped: it is rebuilt instead (a few minutes, once).
    """
    if venv.exists() and stamp.exists():
        print(f"The lock file changed since {venv.name} was built: rebuilding it.", flush=True)
        shutil.rmtree(venv)
    python = venv_python(venv)
    if not python.exists():
        run([sys.executable, "-m", "venv", venv])
    return python


def _pip_install(python: Path, lock: Path) -> None:
    """Install the lock's pip, then the lock, then byte-compile it on every core.

    pip byte-compiles what it installs one file at a time, a third of the install's time;
    compileall with a worker per core writes the same ``__pycache__`` files. They must be
    written at install time: where PYTHONDONTWRITEBYTECODE is set, every kernel would
    otherwise compile torch's modules again at each start.
    """
    pip_pin = next(line.split(";")[0].strip() for line in lock.read_text().splitlines()
                   if line.startswith("pip=="))
    run([python, "-m", "pip", "install", "--quiet", pip_pin])
    run([python, "-m", "pip", "install", "--quiet", "--no-compile", "-r", lock])
    run([python, "-W", "ignore", "-c", COMPILE_SITE_PACKAGES])


# Quietly, and whatever it finds: a few packages ship files that are not Python 3 (pip skips
# them too), and their warnings about old syntax are the packages' own.
COMPILE_SITE_PACKAGES = ("import compileall, sysconfig; "
                         "compileall.compile_dir(sysconfig.get_paths()['purelib'], quiet=2, "
                         "workers=0)")


def setup() -> Path:
    """Create the learners' .venv from the lock file unless it is up to date; return its python."""
    python = venv_python()
    if STAMP.exists() and STAMP.read_text().strip() == lock_fingerprint():
        return python
    check_python()
    python = _fresh_venv(VENV, STAMP)
    _pip_install(python, LOCK)
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "-e", ROOT])
    STAMP.write_text(lock_fingerprint() + "\n")
    return python


def site_packages(python: Path) -> Path:
    """Where ``python`` installs packages (``lib/python3.11/site-packages``, ``Lib\\...``)."""
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                               check=True).stdout.strip())


def setup_dev() -> Path:
    """The developers' .venv-dev: the learners' packages (through a .pth) plus dev-lock.txt."""
    learners = setup()
    python = venv_python(DEV_VENV)
    fingerprint = lock_fingerprint(LOCK, DEV_LOCK)
    if DEV_STAMP.exists() and DEV_STAMP.read_text().strip() == fingerprint:
        return python
    python = _fresh_venv(DEV_VENV, DEV_STAMP)
    # An `import` line in a .pth runs at start-up: addsitedir also reads .venv's own .pth
    # files (mmlearn's editable install is one), which a plain path line would not.
    (site_packages(python) / "learners_venv.pth").write_text(
        f"import site; site.addsitedir({str(site_packages(learners))!r})\n")
    _pip_install(python, DEV_LOCK)  # what .venv already has counts as installed
    DEV_STAMP.write_text(fingerprint + "\n")
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
    run([setup_dev(), "-m", "ruff", "check", "mmlearn", "scripts", "tests", "benchmarks",
         "notebooks"])


def unit(*pytest_args: str) -> None:
    run([setup_dev(), "-m", "pytest", "tests", "--ignore=tests/browser", *pytest_args],
        env={**OFFLINE, "MPLBACKEND": "Agg"})


def test_browser() -> None:
    """Lessons 02 and 03 in JupyterLab in headless Chromium (Debian's chromium and its driver)."""
    setup()  # JupyterLab runs from the learners' .venv; pytest and Selenium from .venv-dev
    run([setup_dev(), "-m", "pytest", "tests/browser", "-v"], env=OFFLINE)


def notebooks() -> None:
    run([setup_dev(), "-m", "pytest", *NBVAL_FLAGS, *NOTEBOOKS_AT_ONCE, "notebooks"],
        env={**OFFLINE, **ONE_THREAD_PER_KERNEL, "MPLBACKEND": "Agg"})


def notebooks_on_accelerator() -> None:
    """nbval over the lessons with an emulated CUDA device (tests/accelerator): every tensor
    the lessons move to the "GPU" stays on the CPU but is tagged, and PyTorch's own
    device-mismatch error is raised where tagged and untagged ones meet."""
    run([setup_dev(), "-m", "pytest", *NBVAL_FLAGS, *NOTEBOOKS_AT_ONCE, "notebooks"],
        env={**OFFLINE, **ONE_THREAD_PER_KERNEL, "MPLBACKEND": "Agg",
             "IPYTHONDIR": str(ROOT / "tests" / "accelerator" / "ipython")})


def widgets_on_ipywidgets7(python: Path) -> None:
    """mmlearn.widgets' tests with Colab's ipywidgets 7.7.1 in front of the venv's 8."""
    target = ROOT / "build" / "ipywidgets7"
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade", "--target",
         target, "ipywidgets==7.7.1", "ipython_genutils==0.2.0"])
    run([python, "-m", "pytest", "-q", "tests/test_widgets.py"],
        env={**OFFLINE, "MPLBACKEND": "Agg", "PYTHONPATH": str(target),
             "MMLEARN_IPYWIDGETS_MAJOR": "7"})


def places() -> None:
    """The places learners run the course, simulated: Colab, a GPU, Binder (CI runs this).

    Colab's ipywidgets and the Colab simulation first (it downloads Colab's torch once);
    then the accelerator run; then Binder's group, alone, so that its seconds are the
    one CPU's and no other kernel starts beside its own.
    """
    python = setup_dev()
    widgets_on_ipywidgets7(python)
    run([python, "tests/places/colab.py"], env=OFFLINE)
    notebooks_on_accelerator()
    run([python, "tests/places/binder.py"])


def platforms() -> None:
    """Every platform a learner brings can install the lock (pip dry runs; needs the index)."""
    run([setup_dev(), "scripts/check_platforms.py", LOCK])


def test() -> None:
    """What a newcomer runs (a few minutes): everything but the slow unit tests, which CI
    runs as well (``make test-slow``: training runs, kernels, subprocesses, nbgrader).

    The platform check runs beside the notebooks: their kernels compute on one thread, so
    on a 2-core machine the second core would otherwise wait (it saves about half a minute).
    Its report is printed after theirs.
    """
    lint()
    unit("-m", "not slow")
    check = start([setup_dev(), "scripts/check_platforms.py", LOCK])
    try:
        notebooks()
    finally:
        finish(check)


def test_slow() -> None:
    """The unit tests marked slow (a minute or more each in all); CI runs them after `make test`."""
    unit("-m", "slow")


def lock() -> None:
    """Re-resolve both universal locks; uv keeps every version already locked if it can.

    The learners' lock holds mmlearn and its `lab` extra; the developers' lock adds the
    `dev` and `teacher` extras, constrained to the learners' versions.
    """
    python = setup_dev()
    compile_ = [python, "-m", "uv", "pip", "compile", "--universal", "--python-version",
                ".".join(map(str, OLDEST_PYTHON)), "pyproject.toml", "requirements/pins.txt",
                "--custom-compile-command", "make lock"]
    run([*compile_, "--extra", "lab", "--output-file", LOCK])
    run([*compile_, "--extra", "lab", "--extra", "dev", "--extra", "teacher",
         "--constraint", LOCK, "--output-file", DEV_LOCK])
    requirements()


def requirements() -> None:
    """binder/requirements.txt and requirements/colab.txt, derived from the lock."""
    run([setup_dev(), "scripts/make_requirements.py"])


COMMANDS = {"setup": setup, "setup-dev": setup_dev, "lab": lab, "test": test,
            "test-slow": test_slow,
            "test-browser": test_browser, "lint": lint, "unit": unit, "places": places,
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
