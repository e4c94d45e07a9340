"""``mmlearn.doctor()``: what it reports, and that it tells a missing or changed file apart."""

import importlib
import importlib.metadata
import shutil

from mmlearn import checkpoints

doctor = importlib.import_module("mmlearn.doctor")  # the module; mmlearn.doctor is the function


def test_the_version_comes_from_the_package_metadata():
    import mmlearn
    assert mmlearn.__version__ == importlib.metadata.version("mmlearn")
    assert doctor.report()["mmlearn"] == mmlearn.__version__


def test_every_shipped_model_is_reported_and_verified():
    facts = doctor.report()
    shipped = {line.split()[-1] for line in checkpoints.SUMS_FILE.read_text().splitlines()}
    assert set(doctor.COURSE_WEIGHTS) == shipped
    for what in doctor.COURSE_WEIGHTS.values():
        assert facts[what] == "ok (sha256 verified)"


def test_a_missing_and_a_changed_file_are_told_apart(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    shutil.copytree(checkpoints.WEIGHTS_DIR, weights)
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(checkpoints, "SUMS_FILE", weights / "SHA256SUMS")
    (weights / "shape_judge.safetensors").unlink()
    with open(weights / "unclip_prior.safetensors", "r+b") as file:
        file.seek(-1, 2)
        last = file.read(1)
        file.seek(-1, 2)
        file.write(bytes([last[0] ^ 1]))
    facts = doctor.report()
    assert facts["shape judge (lessons 04-06)"].startswith("missing")
    assert facts["tiny unCLIP regression prior (lesson 06)"].startswith("corrupt or changed")
    assert facts["course CLIP (lessons 01-06)"] == "ok (sha256 verified)"


def test_doctor_prints_one_line_per_fact(capsys):
    import mmlearn
    mmlearn.doctor()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(doctor.report())
    assert lines[0].split()[0] == "python"
