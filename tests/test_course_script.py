"""scripts/course.py (the setup every learner runs) and the universal lock it installs.

Windows cannot be run here, so its paths and choices are tested by passing the
platform in; the Linux path runs for real in `make test` and CI.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements-lock.txt"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return module


course = _load("course")
platforms = _load("check_platforms")


def test_venv_python_on_windows_and_elsewhere(tmp_path):
    assert course.venv_python(tmp_path, windows=True) == tmp_path / "Scripts" / "python.exe"
    assert course.venv_python(tmp_path, windows=False) == tmp_path / "bin" / "python"


@pytest.mark.parametrize("version", [(3, 11, 0), (3, 11, 4), (3, 12, 1), (3, 10, 14)])
def test_a_python_the_lock_cannot_install_on_stops_with_what_to_do(version):
    with pytest.raises(SystemExit, match="Install Python 3.11"):
        course.check_python(version)


@pytest.mark.parametrize("version", [(3, 11, 5), (3, 11, 9)])
def test_python_3_11_5_and_later_3_11_are_accepted(version):
    course.check_python(version)


def test_no_browser_without_a_screen_and_allow_root_only_for_root():
    assert course.lab_flags(has_screen=True, is_root=False) == []
    assert course.lab_flags(has_screen=False, is_root=True) == ["--no-browser", "--allow-root"]


def test_setup_does_nothing_when_the_venv_matches_the_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "STAMP", tmp_path / ".installed")
    (tmp_path / ".installed").write_text(course.lock_fingerprint() + "\n")
    monkeypatch.setattr(course, "run", lambda *a, **k: pytest.fail(f"ran {a}"))
    course.setup()


def test_setup_reinstalls_when_the_lock_changed(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "STAMP", tmp_path / ".installed")
    monkeypatch.setattr(course, "VENV", tmp_path / "venv")
    (tmp_path / ".installed").write_text("an older lock\n")
    commands = []
    monkeypatch.setattr(course, "run", lambda command, env=None: commands.append(command))
    course.setup()
    installs = [c for c in commands if "-r" in c]
    assert installs and installs[0][-1] == course.LOCK
    assert (tmp_path / ".installed").read_text().strip() == course.lock_fingerprint()


def test_every_cuda_only_package_of_the_lock_carries_a_marker():
    for line in LOCK.read_text().splitlines():
        if line.startswith(("nvidia-", "cuda-", "triton")):
            assert Requirement(line).marker is not None, line


def test_the_lock_pins_the_course_torch():
    pins = platforms.requirements_for(LOCK.read_text().splitlines(), "linux-x86_64")
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins


def test_markers_are_evaluated_for_the_target_platform_not_this_machine():
    lines = ["numpy==2.4.6", "nvidia-cufile==1.15.1.6 ; sys_platform == 'linux'",
             "pywinpty==3.1.2 ; os_name == 'nt'", "appnope==1.0.0 ; sys_platform == 'darwin'"]
    assert platforms.requirements_for(lines, "linux-aarch64") == [
        "numpy==2.4.6", "nvidia-cufile==1.15.1.6"]
    assert platforms.requirements_for(lines, "windows-amd64") == [
        "numpy==2.4.6", "pywinpty==3.1.2"]
    assert platforms.requirements_for(lines, "macos-arm64") == [
        "numpy==2.4.6", "appnope==1.0.0"]


def test_a_missing_wheel_is_named():
    message = ("ERROR: Could not find a version that satisfies the requirement "
               "cuda-bindings==13.5.0 (from versions: none)\n"
               "ERROR: No matching distribution found for cuda-bindings==13.5.0\n")
    assert platforms.missing_wheel(message) == "cuda-bindings==13.5.0"


def test_binder_and_colab_requirements_follow_the_lock_file():
    result = subprocess.run([sys.executable, str(ROOT / "scripts/make_requirements.py"),
                             "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_background_step_prints_its_output_and_fails_the_run_when_it_fails(capsys):
    import sys

    ok = course.start([sys.executable, "-c", "print('platforms ok')"])
    course.finish(ok)
    assert "platforms ok" in capsys.readouterr().out
    failing = course.start([sys.executable, "-c", "print('no wheel for x'); raise SystemExit(3)"])
    with pytest.raises(SystemExit) as stopped:
        course.finish(failing)
    assert stopped.value.code == 3 and "no wheel for x" in capsys.readouterr().out
