"""Shipped weights: atomic, reproducible saves and sha256 checks that catch corruption."""

from pathlib import Path

import pytest
import torch

from mmlearn import checkpoints


def test_saving_identical_weights_twice_gives_identical_bytes(tmp_path):
    weights = {"w": torch.arange(6.0).view(2, 3)}
    checkpoints.save_atomic(weights, tmp_path / "a.pt")
    checkpoints.save_atomic(weights, tmp_path / "b.pt")
    assert checkpoints.sha256_of(tmp_path / "a.pt") == checkpoints.sha256_of(tmp_path / "b.pt")
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    assert torch.equal(loaded["w"], weights["w"])


def test_a_failed_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "weights.pt"
    target.write_bytes(b"old")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        checkpoints.save_atomic({"x": Unpicklable()}, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pt"]  # no temporary left behind


def test_shipped_files_match_their_recorded_sha256():
    for line in checkpoints.SUMS_FILE.read_text().splitlines():
        digest, filename = line.split()
        assert checkpoints.sha256_of(checkpoints.shipped_path(filename)) == digest


def test_a_changed_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(checkpoints, "SUMS_FILE", tmp_path / "SHA256SUMS")
    (tmp_path / "model.pt").write_bytes(b"good")
    checkpoints.record_sha256("model.pt")
    assert checkpoints.shipped_path("model.pt") == tmp_path / "model.pt"
    (tmp_path / "model.pt").write_bytes(b"evil")
    with pytest.raises(ValueError, match="does not match its recorded sha256"):
        checkpoints.shipped_path("model.pt")
    with pytest.raises(FileNotFoundError, match="missing"):
        checkpoints.shipped_path("other.pt")


def test_weights_are_read_in_one_place():
    """Every weights file goes through checkpoints.load_tensors (weights_only, clear errors)."""
    import re
    package = Path(__file__).resolve().parents[1] / "mmlearn"
    callers = [p.name for p in package.rglob("*.py")
               if re.search(r"torch\.load\(", re.sub(r"``.*?``", "", p.read_text()))
               and p.name != "checkpoints.py"]
    assert callers == []
