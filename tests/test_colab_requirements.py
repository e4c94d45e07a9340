"""requirements/colab.txt: what the Colab cell installs, next to what Colab already has.

Colab imports numpy and PIL before the first cell runs; replacing either on disk breaks
the running kernel. So colab.txt may hold only packages Colab lacks, and Colab's own
versions must satisfy every range that mmlearn and those packages declare. Colab's list
is the copy in requirements/colab-preinstalled.txt; the ranges are read from pyproject.toml
and from the installed packages' metadata (the lock's versions, as colab.txt pins them).
"""

import importlib.util
import sys
from importlib.metadata import requires, version
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
COLAB_TXT = ROOT / "requirements" / "colab.txt"
# Colab's Python, on Linux: the markers of a package's requirements are read for it.
COLAB_MARKERS = {"python_version": "3.13", "python_full_version": "3.13.15",
                 "sys_platform": "linux", "platform_system": "Linux",
                 "platform_machine": "x86_64", "os_name": "posix", "extra": "",
                 "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def _load_make_requirements():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location(
            "make_requirements", ROOT / "scripts" / "make_requirements.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return module


make_requirements = _load_make_requirements()
COLAB = make_requirements.colab_preinstalled()


def _pins(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line[0] == "#"]
    return {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in lines}


def _declared_ranges() -> list[tuple[str, Requirement]]:
    """(who asks, requirement) for mmlearn and every package colab.txt installs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    asks = [("mmlearn", Requirement(line)) for line in project["dependencies"]]
    for name in _pins(COLAB_TXT):
        asks += [(name, Requirement(line)) for line in requires(name) or []]
    return [(who, r) for who, r in asks
            if r.marker is None or r.marker.evaluate(COLAB_MARKERS)]


def test_colab_txt_touches_nothing_colab_has():
    installs = set(_pins(COLAB_TXT))
    assert installs, "colab.txt is empty"
    assert not installs & set(COLAB), f"colab.txt would replace Colab's {installs & set(COLAB)}"
    assert {"open-clip-torch", "taming-transformers"} <= installs


def test_colab_txt_pins_what_the_tests_ran_with():
    for name, pinned in _pins(COLAB_TXT).items():
        assert version(name) == pinned, f"{name}: colab.txt pins {pinned}, venv has {version(name)}"


def test_colabs_versions_satisfy_every_declared_range():
    problems = []
    for who, requirement in _declared_ranges():
        name = canonicalize_name(requirement.name)
        if name in make_requirements.NOT_NEEDED or name in _pins(COLAB_TXT):
            continue
        if name not in COLAB:
            problems.append(f"{who} needs {requirement}, which neither Colab nor colab.txt has")
        elif COLAB[name] and not requirement.specifier.contains(Version(COLAB[name]),
                                                                prereleases=True):
            problems.append(f"{who} needs {requirement}; Colab has {name} {COLAB[name]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("line, ok", [("ipywidgets>=8.0", False), ("ipywidgets>=7.6", True),
                                      ("numpy>=2.4", False), ("torch>=2.1", True)])
def test_the_range_check_can_fail(line, ok):
    requirement = Requirement(line)
    colab_version = Version(COLAB[canonicalize_name(requirement.name)])
    assert requirement.specifier.contains(colab_version, prereleases=True) is ok


def test_colabs_list_is_read_with_versions_and_url_installs():
    packages = make_requirements.colab_preinstalled("numpy==2.1.3\n# comment\ngoogle-colab\n")
    assert packages == {"numpy": "2.1.3", "google-colab": ""}
    assert COLAB["numpy"] and COLAB["pillow"] and COLAB["ipywidgets"].startswith("7.")
