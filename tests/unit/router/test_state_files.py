"""State files are replaced whole, private to their owner, and leave no temporary behind."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from router.errors import StateUnwritable
from router.state_files import write_private


def test_a_state_file_is_private_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "file.json"
    write_private(path, b"old")
    write_private(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "file.json"
    write_private(path, b"old")
    with pytest.raises(TypeError):
        write_private(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def _path_of(descriptor: int) -> str:
    return os.readlink(f"/proc/self/fd/{descriptor}")


Calls = list[tuple[str, str]]


@pytest.fixture
def disk_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Every fsync (with the path of what it syncs) and rename: the real calls run, recorded."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("naming a synced descriptor needs Linux /proc")
    calls: Calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        calls.append(("fsync", _path_of(descriptor)))
        real_fsync(descriptor)

    def replace(source: str, target: Path) -> None:
        calls.append(("replace", str(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_the_data_is_on_disk_before_the_rename_and_the_rename_after_it(
    tmp_path: Path, disk_calls: Calls
) -> None:
    """What a crash cannot undo: the temporary's bytes are synced before it replaces the old
    file (else the new name could point at an empty file), and the directory after (else the
    rename itself could be lost)."""
    path = tmp_path / "state" / "file.json"
    write_private(path, b"old")
    disk_calls.clear()
    write_private(path, b"new")
    [(first, temporary), *rest] = disk_calls
    assert first == "fsync"
    assert Path(temporary).parent == path.parent
    assert Path(temporary).name.startswith(".file.json-")
    assert rest == [("replace", str(path)), ("fsync", str(path.parent))]
    assert path.read_bytes() == b"new"


def test_a_new_state_directory_is_synced_into_its_parent(tmp_path: Path, disk_calls: Calls) -> None:
    path = tmp_path / "state" / "file.json"
    write_private(path, b"first")
    assert disk_calls[0] == ("fsync", str(tmp_path))
    assert disk_calls[-2:] == [("replace", str(path)), ("fsync", str(path.parent))]


def test_a_write_that_cannot_be_synced_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fails the sync (EIO, ENOSPC) fails the write: the old file stays whole."""
    path = tmp_path / "file.json"
    write_private(path, b"old")

    def failing_fsync(descriptor: int) -> None:
        raise OSError(errno.EIO, "input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="input/output error"):
        write_private(path, b"new")
    assert path.read_bytes() == b"old"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def test_a_full_disk_is_a_503_to_retry_and_an_os_error_still(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while writing: the request that waited on the write is answered 503
    `unavailable` with Retry-After (not a 500), naming the file and the cause; what handles a
    failed write as an OSError (start-up, the reqnum writer) still does."""
    path = tmp_path / "endpoints.json"
    write_private(path, b"old")

    def full_disk(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StateUnwritable) as raised:
        write_private(path, b"new")
    error = raised.value
    assert isinstance(error, OSError)
    assert (error.status, error.error_type, error.retry_after_s) == (503, "unavailable", 5.0)
    assert str(error) == "the router could not store endpoints.json: No space left on device"
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["endpoints.json"]
