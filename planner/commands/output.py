"""Safe output files for every command: checked before any work, written atomically.

`output_problem(path)` says what is wrong with an output path before a command starts (empty, a directory,
a missing or non-directory parent, a directory that cannot be written), or None. `write_text(path, text)`
and `atomic_path(path)` write through a temporary file in the same directory that is renamed over the
target only once complete, so a failed, full or interrupted write leaves the previous file untouched.
Special files (/dev/null, /dev/stdout, pipes) are written in place: a rename would replace them. Every
OS error becomes a SpecError (exit 2) that names the path.
"""

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from costmodels.errors import SpecError


def _special(path: str) -> bool:
    """True for an existing non-regular file (device, pipe, socket): written in place, never replaced."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def _target(path: str) -> str:
    """The file a write lands in: a symlink's target (the link itself is kept)."""
    return os.path.realpath(path) if os.path.islink(path) else path


def output_problem(path: str) -> str | None:
    """What prevents writing `path`, in words naming it, or None when it can be written."""
    if path == "":
        return "the output path is empty; give a file name, or '-' for stdout"
    if _special(path):
        return None
    target = _target(path)
    if os.path.isdir(target):
        return f"{path} is a directory; give a file name inside it"
    parent = os.path.dirname(os.path.abspath(target)) or "."
    if not os.path.isdir(parent):
        probe = Path(parent)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if probe.exists() and not probe.is_dir():
            return f"cannot write {path}: {probe} is a file, not a directory"
        return f"cannot write {path}: directory {parent} does not exist"
    if os.path.exists(target) and not os.access(target, os.W_OK):
        return f"cannot write {path}: permission denied"
    try:  # the only reliable test of a directory (read-only mounts, root ignoring modes): make a file there
        fd, probe_name = tempfile.mkstemp(dir=parent, prefix=".parplan-probe-")
        os.close(fd)
        os.unlink(probe_name)
    except OSError as exc:
        return f"cannot write {path}: directory {parent}: {exc.strerror}"
    return None


def require_writable(path: str) -> None:
    """Raise SpecError (exit 2) when `path` cannot be written."""
    problem = output_problem(path)
    if problem is not None:
        raise SpecError(problem, field="--output")


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """A temporary path (same directory, same suffix) to write; renamed over `path` when the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and `path` is untouched;
    OS errors become a SpecError naming `path`. Special files are yielded as they are (written in place).
    """
    if _special(path):
        try:
            yield path
        except OSError as exc:
            raise SpecError(f"cannot write {path}: {exc.strerror or exc}", field="--output") from None
        return
    target = _target(path)
    directory = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=f".tmp{Path(name).suffix}")
        os.close(fd)
    except OSError as exc:
        raise SpecError(f"cannot write {path}: {exc.strerror}", field="--output") from None
    try:
        yield tmp
        _keep_mode(tmp, target)
        os.replace(tmp, target)
    except OSError as exc:
        raise SpecError(f"cannot write {path}: {exc.strerror or exc}; the previous file (if any) is unchanged",
                        field="--output") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _keep_mode(tmp: str, target: str) -> None:
    """Give the new file the old file's permissions, or the umask's default for a new one (mkstemp uses 0600)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


def write_text(path: str, text: str) -> None:
    """Write `text` to `path` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        if not _special(tmp):
            os.fsync(fh.fileno())
