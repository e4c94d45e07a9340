"""Can the lock file be installed on every platform a learner brings?

For each platform below, keep the lock's lines whose environment markers hold there
(a Mac gets no nvidia-* package), then ask pip, with ``--dry-run --platform``, whether
a wheel exists for every pinned version. pip decides from the package index alone,
so this runs on Linux for macOS and Windows too. A missing wheel fails the check and
names the package.

    python scripts/check_platforms.py [requirements-lock.txt] [--only macos-arm64 ...]

It needs the package index (as installing does) and ``packaging`` (in the course venv).
"""

import argparse
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.requirements import Requirement

# The lowest Python the lock supports (soupsieve 4.1.2 needs 3.11.5).
PYTHON = "3.11.5"
MANYLINUX = [f"manylinux_2_{minor}" for minor in range(17, 40)] + ["manylinux2014"]

PLATFORMS = {
    "linux-x86_64": {
        "tags": [f"{tag}_x86_64" for tag in MANYLINUX],
        "markers": {"sys_platform": "linux", "platform_system": "Linux",
                    "platform_machine": "x86_64", "os_name": "posix"},
    },
    "linux-aarch64": {
        "tags": [f"{tag}_aarch64" for tag in MANYLINUX],
        "markers": {"sys_platform": "linux", "platform_system": "Linux",
                    "platform_machine": "aarch64", "os_name": "posix"},
    },
    "macos-arm64": {  # torch 2.14.1's wheels need macOS 14
        "tags": ["macosx_14_0_arm64"],
        "markers": {"sys_platform": "darwin", "platform_system": "Darwin",
                    "platform_machine": "arm64", "os_name": "posix"},
    },
    "windows-amd64": {
        "tags": ["win_amd64"],
        "markers": {"sys_platform": "win32", "platform_system": "Windows",
                    "platform_machine": "AMD64", "os_name": "nt"},
    },
}


def marker_environment(platform: str) -> dict[str, str]:
    """What environment markers see on ``platform`` with the lock's lowest Python."""
    return {"python_version": PYTHON.rsplit(".", 1)[0], "python_full_version": PYTHON,
            "implementation_name": "cpython", "platform_python_implementation": "CPython",
            "platform_release": "", "platform_version": "", "implementation_version": PYTHON,
            "extra": "", **PLATFORMS[platform]["markers"]}


def requirements_for(lock_lines: list[str], platform: str) -> list[str]:
    """The lock's ``name==version`` pins that apply on ``platform`` (markers evaluated)."""
    environment = marker_environment(platform)
    pins = []
    for line in lock_lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            pins.append(f"{requirement.name}{requirement.specifier}")
    return pins


def missing_wheel(pip_output: str) -> str:
    """The package pip could not find a wheel for, read from its error message."""
    found = re.search(r"No matching distribution found for (\S+)", pip_output)
    if found:
        return found.group(1)
    found = re.search(r"Could not find a version that satisfies the requirement (\S+)",
                      pip_output)
    return found.group(1) if found else "(see pip's message above)"


def check(platform: str, pins: list[str]) -> tuple[bool, str]:
    """Ask pip whether every pin has a wheel for ``platform``; (ok, one-line verdict)."""
    with tempfile.TemporaryDirectory() as folder:
        requirements = Path(folder) / "requirements.txt"
        requirements.write_text("\n".join(pins) + "\n")
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                   "--no-deps", "--only-binary=:all:", "--python-version", PYTHON,
                   "--target", str(Path(folder) / "target"), "--quiet",
                   "--disable-pip-version-check", "-r", str(requirements)]
        for tag in PLATFORMS[platform]["tags"]:
            command += ["--platform", tag]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode == 0:
        return True, f"{platform:<14} ok ({len(pins)} wheels, Python {PYTHON})"
    detail = (result.stdout + result.stderr).strip().splitlines()[-3:]
    return False, (f"{platform:<14} FAILED: no wheel for {missing_wheel(result.stderr)}\n"
                   + "\n".join("    " + line for line in detail))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", nargs="?", default="requirements-lock.txt")
    parser.add_argument("--only", nargs="*", choices=sorted(PLATFORMS), default=None)
    args = parser.parse_args()
    lines = Path(args.lock).read_text().splitlines()
    platforms = args.only or list(PLATFORMS)
    with ThreadPoolExecutor(max_workers=len(platforms)) as pool:
        verdicts = list(pool.map(lambda p: check(p, requirements_for(lines, p)), platforms))
    for _, message in verdicts:
        print(message)
    return 0 if all(ok for ok, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
