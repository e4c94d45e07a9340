"""mmlearn.files: a file is written whole or not at all, with normal permissions, no litter."""

import os
import signal
import subprocess
import sys

import pytest

from mmlearn.files import atomic_file, atomic_write_bytes


def test_a_crash_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "index.npz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("the kernel died")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.npz"]


def test_new_files_get_the_usual_permissions(tmp_path):
    before = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "weights.pt", b"tensors")
    finally:
        os.umask(before)
    assert (tmp_path / "weights.pt").stat().st_mode & 0o777 == 0o644


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
def test_a_killed_writers_temporary_is_removed_by_the_next_save(tmp_path):
    target = tmp_path / "big.npz"
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom mmlearn.files import atomic_file\n"
         f"with atomic_file({str(target)!r}) as f:\n"
         "    f.write(b'x' * 1000); f.flush(); print('writing', flush=True); time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    left = list(tmp_path.glob(".mmlearn-*.tmp"))
    assert len(left) == 1
    atomic_write_bytes(target, b"meanwhile")  # a live writer's temporary is not touched
    assert left[0].exists()
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert list(tmp_path.glob("*.tmp")) == [] and not left[0].exists()


def test_a_folder_is_not_a_file_name(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        atomic_write_bytes(tmp_path, b"data")


def test_a_trailing_slash_names_a_folder_not_a_file(tmp_path):
    with pytest.raises(ValueError, match="slash"):
        atomic_write_bytes(str(tmp_path / "newdir") + "/", b"data")
    assert list(tmp_path.iterdir()) == []


def test_the_longest_legal_name_can_be_written(tmp_path):
    target = tmp_path / ("n" * 250)
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data"


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root writes anywhere")
def test_an_error_names_the_file_asked_for_not_the_temporary(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    with pytest.raises(PermissionError) as error:
        atomic_write_bytes(folder / "index.npz", b"data")
    assert "index.npz" in str(error.value) and ".tmp" not in str(error.value)


def test_a_write_that_fails_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    def full_disk(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError) as error:
        atomic_write_bytes(tmp_path / "index.npz", b"data")
    assert "index.npz" in str(error.value) and ".tmp" not in str(error.value)
    assert list(tmp_path.iterdir()) == []
