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
    left = list(tmp_path.glob(".big.npz.*.tmp"))
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
