"""Encrypted recording files: round trip, and every way a file can be wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from recordings.storage import CHUNK, RecordingStorage, StorageError

CALL, REC = "CA" + "1" * 32, "RE" + "2" * 32


@pytest.fixture()
def storage(data_dir: Path) -> RecordingStorage:
    return RecordingStorage(data_dir, "secret-one")


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 17])
def test_round_trip_at_chunk_boundaries(storage: RecordingStorage, size: int) -> None:
    data = os.urandom(size)
    stored = storage.write(CALL, REC, [data[:1000], data[1000:]])
    assert stored.size == size and stored.path == f"recordings/{CALL}-{REC}.wav.enc"
    assert storage.read(CALL, REC) == data
    assert storage.verify(CALL, REC) == size


def test_file_is_not_plaintext_and_private(storage: RecordingStorage, data_dir: Path) -> None:
    data = b"RIFF....WAVEfmt " + b"hello caller +34600111222 " * 100
    storage.write(CALL, REC, [data])
    raw = (data_dir / storage.relative_path(CALL, REC)).read_bytes()
    assert b"+34600111222" not in raw and b"WAVE" not in raw
    assert (data_dir / storage.relative_path(CALL, REC)).stat().st_mode & 0o077 == 0


def test_wrong_secret_tampering_truncation_and_swaps_are_refused(
        storage: RecordingStorage, data_dir: Path) -> None:
    data = os.urandom(CHUNK + 500)
    storage.write(CALL, REC, [data])
    path = data_dir / storage.relative_path(CALL, REC)
    with pytest.raises(StorageError, match="secret"):
        RecordingStorage(data_dir, "secret-two").read(CALL, REC)
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(StorageError):
        storage.read(CALL, REC)
    path.write_bytes(original[: len(original) - 520])  # the last chunk cut off
    assert storage.verify(CALL, REC) is None
    other = "CA" + "3" * 32
    path.write_bytes(original)
    os.replace(path, data_dir / storage.relative_path(other, REC))  # passed off as another call's
    with pytest.raises(StorageError):
        storage.read(other, REC)


def test_rewrite_is_whole_and_delete(storage: RecordingStorage, data_dir: Path) -> None:
    storage.write(CALL, REC, [b"first"])
    storage.write(CALL, REC, [b"second version"])
    assert storage.read(CALL, REC) == b"second version"
    assert [p.name for p in (data_dir / "recordings").iterdir()] == [f"{CALL}-{REC}.wav.enc"]
    assert storage.delete(CALL, REC) and not storage.delete(CALL, REC)
    with pytest.raises(StorageError, match="missing"):
        storage.read(CALL, REC)


def test_bad_ids_and_paths_are_refused(storage: RecordingStorage) -> None:
    with pytest.raises(StorageError, match="not a Twilio SID"):
        storage.write("../etc", REC, [b"x"])
    with pytest.raises(StorageError, match="refusing"):
        storage.delete_relative("../secret.key")
    with pytest.raises(StorageError, match="IVR_SECRET_KEY"):
        RecordingStorage(Path("."), "")
