"""SpoolWriter on a disk that fills up: our errors, and never a file left behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from storage.errors import StorageFullError, StorageUnavailableError
from storage.ingest import SpoolWriter


class _RefusingFile:
    """A file whose disk refuses everything with `code` (close too, after closing)."""

    def __init__(self, file: Any, code: int) -> None:
        self._file = file
        self._code = code

    def _refuse(self, *args: Any) -> Any:
        raise OSError(self._code, os.strerror(self._code))

    write = flush = _refuse

    def close(self) -> None:
        self._file.close()
        self._refuse()

    @property
    def closed(self) -> bool:
        return bool(self._file.closed)


def _refusing(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    real_open = SpoolWriter._open

    def refusing_open(self: SpoolWriter) -> Any:
        self._file = _RefusingFile(real_open(self), code)  # type: ignore[assignment]
        return self._file

    monkeypatch.setattr(SpoolWriter, "_open", refusing_open)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (errno.ENOSPC, StorageFullError),
        (errno.EDQUOT, StorageFullError),
        (errno.EIO, StorageUnavailableError),
    ],
)
def test_a_refused_write_is_our_error_and_the_file_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, error: type[Exception]
) -> None:
    _refusing(monkeypatch, code)
    with pytest.raises(error), SpoolWriter(tmp_path, 1 << 20) as spool:
        spool.write(b"bytes the disk refuses")
    assert list(tmp_path.iterdir()) == []


def test_a_refused_flush_at_finish_is_storage_full_and_the_file_goes(tmp_path: Path) -> None:
    spool = SpoolWriter(tmp_path, 1 << 20)
    spool.write(b"buffered, not yet on disk")
    assert spool._file is not None
    spool._file = _RefusingFile(spool._file, errno.ENOSPC)  # type: ignore[assignment]
    with pytest.raises(StorageFullError):
        spool.finish()
    spool.discard()  # close raises again inside: never out of discard
    assert list(tmp_path.iterdir()) == []


def test_no_file_until_the_first_byte_and_an_empty_upload_still_has_one(tmp_path: Path) -> None:
    with SpoolWriter(tmp_path, 10) as spool:
        assert list(tmp_path.iterdir()) == []
        staged = spool.finish()
        assert staged.size == 0 and staged.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_spool_directory_that_cannot_be_made_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    with pytest.raises(StorageUnavailableError), SpoolWriter(blocker / "spool", 10) as spool:
        spool.write(b"x")
