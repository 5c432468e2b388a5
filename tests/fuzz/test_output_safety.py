"""Outputs survive a full disk and an interrupted write: the previous file stays, no temporary is left."""

import errno
import os
import subprocess

import pytest
from fuzz_cli import invoke

from costmodels.errors import SpecError
from planner.commands import output


def _scatter(files: dict[str, str], out) -> list[str]:
    return ["plan", "scatter", "--model", "llama3-8b", "--gpu", "h100-sxm", "--num-gpus", "8", "--lengths",
            files["lengths_txt"], "-o", str(out)]


def test_enospc_during_the_write_keeps_the_old_output(files, sentinel, monkeypatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output.os, "fsync", full)  # the data is written, then the disk reports full
    result = invoke(_scatter(files, sentinel))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"cannot write {sentinel}: No space left on device" in result.output
    assert sentinel.read_text() == "previous good output\n"
    assert [p.name for p in sentinel.parent.iterdir()] == ["out.json"]


def test_an_interrupted_write_keeps_the_old_output(sentinel, monkeypatch) -> None:
    def interrupted(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(output.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        output.write_text(str(sentinel), "new plan\n")
    assert sentinel.read_text() == "previous good output\n"
    assert [p.name for p in sentinel.parent.iterdir()] == ["out.json"]


def test_a_successful_write_replaces_and_keeps_the_mode(sentinel) -> None:
    os.chmod(sentinel, 0o640)
    output.write_text(str(sentinel), "new plan\n")
    assert sentinel.read_text() == "new plan\n" and (os.stat(sentinel).st_mode & 0o777) == 0o640


def test_a_symlinked_output_keeps_the_link(tmp_path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    output.write_text(str(link), "new\n")
    assert link.is_symlink() and target.read_text() == "new\n"


def test_dev_full_is_an_error_naming_it() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with pytest.raises(SpecError, match="cannot write /dev/full"):
        output.write_text("/dev/full", "x" * 100_000)


def test_a_tiny_filesystem_that_fills_keeps_the_old_output(tmp_path, files) -> None:
    """A 64 KiB tmpfs holding a previous 40 KiB output: the new plan cannot fit next to it (needs root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip() or made.returncode})")
    try:
        old = mount / "plan.json"
        old.write_text("x" * 40_000)
        lengths = tmp_path / "many.txt"
        lengths.write_text("".join(f"{100 + i}\n" for i in range(3000)))  # a plan of well over 24 KiB
        args = _scatter({"lengths_txt": str(lengths)}, old)
        result = invoke(args)
        assert result.exit_code == 2 and "No space left on device" in result.output, result.output
        assert old.read_text() == "x" * 40_000
        assert [p.name for p in mount.iterdir()] == ["plan.json"]
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
