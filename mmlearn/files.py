"""Writing files so that nothing is lost: whole or not at all.

Every file mmlearn writes (course weights, a search index, a PNG or GIF) goes through
``atomic_file``: the bytes go to a temporary file beside the target, which replaces
the target in one step only when it is complete. A crash, a full disk or a kernel
restart midway leaves the old file as it was.
"""

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # no cheap, safe check there: keep the file
        return True
    try:
        os.kill(pid, 0)  # signal 0: "does it exist?", sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


TEMPORARY = re.compile(r"^\.mmlearn-(\d+)-\w+\.tmp$")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporaries in ``folder`` left by writers that died (killed mid-save).

    Each temporary carries its writer's process id, so one still being written by a
    live process is left alone.
    """
    removed = []
    for candidate in folder.glob(".mmlearn-*.tmp"):
        found = TEMPORARY.match(candidate.name)
        if found and not _process_alive(int(found.group(1))):
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _check_file_name(path: str | Path) -> Path:
    """A path that names a file: not an existing folder, not ending in a slash."""
    if isinstance(path, str) and path.endswith(("/", os.sep)):
        raise ValueError(f"{path!r} ends with a slash, so it names a folder; give a file name "
                         f"inside it, such as {os.path.join(path, 'index.npz')!r}.")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder; give a file name inside it.")
    return path


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator:
    """``with atomic_file(path) as f: f.write(...)``: ``path`` changes only if the block ends.

    The temporary has a short name of its own (``.mmlearn-PID-XXXX.tmp``), so any file name
    the system allows can be written, and errors name ``path``, never the temporary. The
    file gets the permissions a new file normally gets (0644 under the usual umask 022),
    not the private 0600 of a temporary file.
    """
    path = _check_file_name(path)
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".mmlearn-{os.getpid()}-",
                                         suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except OSError as error:  # said of the file asked for, not of the temporary
        reason = error.strerror or str(error)
        raise type(error)(error.errno, f"could not write {path}: {reason}") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (see ``atomic_file``)."""
    with atomic_file(path) as f:
        f.write(data)
