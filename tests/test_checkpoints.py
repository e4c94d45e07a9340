"""Shipped weights: atomic, reproducible saves and sha256 checks that catch corruption."""

from pathlib import Path

import pytest
import torch

from mmlearn import checkpoints


def test_saving_identical_weights_twice_gives_identical_bytes(tmp_path):
    weights = {"w": torch.arange(6.0).view(2, 3), "b": torch.ones(2, dtype=torch.float16)}
    checkpoints.save_checkpoint(weights, tmp_path / "a.safetensors")
    checkpoints.save_checkpoint(dict(reversed(weights.items())), tmp_path / "b.safetensors")
    assert (checkpoints.sha256_of(tmp_path / "a.safetensors")
            == checkpoints.sha256_of(tmp_path / "b.safetensors"))
    loaded = checkpoints.load_checkpoint(tmp_path / "a.safetensors")
    assert loaded.keys() == weights.keys()
    assert all(torch.equal(loaded[k], weights[k]) and loaded[k].dtype == weights[k].dtype
               for k in weights)


def test_a_checkpoint_with_sizes_and_words_round_trips(tmp_path):
    checkpoint = {"config": {"width": 8, "widths": [16, 32]}, "words": ["red", "circle"],
                  "state_dict": {"w": torch.randn(3, 3).half()}}
    checkpoints.save_checkpoint(checkpoint, tmp_path / "m.safetensors")
    loaded = checkpoints.load_checkpoint(tmp_path / "m.safetensors")
    assert loaded["config"] == checkpoint["config"] and loaded["words"] == checkpoint["words"]
    assert torch.equal(loaded["state_dict"]["w"], checkpoint["state_dict"]["w"])


def test_shipped_weights_hold_no_pickles():
    """safetensors files hold tensors and JSON only: reading one cannot run code."""
    for path in checkpoints.WEIGHTS_DIR.iterdir():
        if path.name != "SHA256SUMS":
            assert path.suffix == ".safetensors", path.name
            assert checkpoints.load_checkpoint(path)


def test_the_shipped_weights_stay_small_enough_to_clone_anywhere():
    """The README promises under 25 MB for all of them: Binder and Colab clone the repo."""
    total = sum(p.stat().st_size for p in checkpoints.WEIGHTS_DIR.glob("*.safetensors"))
    assert total < 25e6, f"{total / 1e6:.1f} MB"


def test_a_pickle_in_place_of_a_shipped_file_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(checkpoints, "SUMS_FILE", tmp_path / "SHA256SUMS")
    torch.save({"w": torch.ones(2), "code": print}, tmp_path / "model.safetensors")
    checkpoints.record_sha256("model.safetensors")  # even with a matching recorded sha256
    with pytest.raises(ValueError, match="could not be read as safetensors") as error:
        checkpoints.load_checkpoint(checkpoints.shipped_path("model.safetensors"))
    assert "weights_only=False" not in str(error.value)


def test_a_failed_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "weights.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(TypeError, match="must be tensors"):
        checkpoints.save_checkpoint({"x": torch.zeros(4), "y": "not a tensor"}, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.safetensors"]  # no temporary left


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_gets_an_error_naming_it(tmp_path, damage):
    good = tmp_path / "good.safetensors"
    checkpoints.save_checkpoint({"w": torch.randn(64, 64)}, good)
    bad = tmp_path / f"{damage}.safetensors"
    bad.write_bytes({"truncated": good.read_bytes()[:-100], "garbage": b"\x00junk" * 50,
                     "empty": b""}[damage])
    with pytest.raises(ValueError, match=f"{damage}.safetensors could not be read"):
        checkpoints.load_checkpoint(bad)


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
    """Pickled weights files go through checkpoints.load_tensors (weights_only, clear errors)."""
    import re
    package = Path(__file__).resolve().parents[1] / "mmlearn"
    callers = [p.name for p in package.rglob("*.py")
               if re.search(r"torch\.load\(", re.sub(r"``.*?``", "", p.read_text()))
               and p.name != "checkpoints.py"]
    assert callers == []


def test_ship_records_the_sha256_however_the_path_is_written(tmp_path, monkeypatch):
    """A relative or roundabout path to a shipped file is still the shipped file."""
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(checkpoints, "SUMS_FILE", weights / "SHA256SUMS")
    monkeypatch.chdir(tmp_path)
    assert checkpoints.ship({"w": torch.ones(2)}, "weights/model.safetensors")
    digest = checkpoints.ship({"w": torch.zeros(2)}, "weights/../weights/model.safetensors")
    assert digest == checkpoints.recorded_sha256("model.safetensors")
    loaded = checkpoints.load_checkpoint(checkpoints.shipped_path("model.safetensors"))
    assert torch.equal(loaded["w"], torch.zeros(2))
    assert checkpoints.ship({"w": torch.ones(2)}, tmp_path / "elsewhere.safetensors") is None
    assert checkpoints.recorded_sha256("elsewhere.safetensors") is None


def test_every_training_script_saves_through_ship():
    """A script that saves with save_checkpoint and compares path strings (as they once
    did) overwrote shipped weights without recording their sha256 when given a relative path."""
    scripts = sorted((Path(checkpoints.__file__).parents[1] / "scripts").glob("train_*.py"))
    assert len(scripts) >= 5
    for script in scripts:
        text = script.read_text()
        assert "save_checkpoint(" not in text and "record_sha256(" not in text, script.name
        assert "ship(" in text, script.name
