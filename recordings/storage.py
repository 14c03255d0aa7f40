"""Recordings encrypted at rest (AES-256-GCM, streamed in chunks), on disk by default.

A recording is stored as ``IVR_DATA_DIR/recordings/<CallSid>-<RecordingSid>.wav.enc``
(the CallSid in the file name lets ``ivr customers erase`` find it), or, with
``IVR_RECORDINGS_URL=s3://bucket/prefix``, as the object ``prefix/recordings/...`` of
an S3-compatible store (:mod:`recordings.s3_storage`; :func:`open_storage` picks).
Either way we encrypt before anything leaves this process: the store holds only
ciphertext. The file is a
header (magic, random 7-byte nonce prefix) followed by chunks, each sealed with
AES-GCM under a key derived (HKDF) from the installation secret; a chunk's nonce is
the prefix, its counter and a "last chunk" flag, and the associated data names the
call and recording. So a file cannot be read without the secret, altered, cut
short, reordered or passed off as another call's recording without the read
failing. Chunking keeps memory flat for huge recordings.

Writes go to a temporary file, are fsynced and renamed into place: a job killed
mid-write leaves no half file under the final name, and writing the same
recording again replaces it whole (idempotent).
"""

from __future__ import annotations

import abc
import os
import secrets
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from recordings.errors import RecordingsError

MAGIC = b"CREC\x01"
CHUNK = 1 << 20
_PREFIX = 7
_LEN = struct.Struct(">I")
_TAG = 16
SUFFIX = ".wav.enc"


class StorageError(RecordingsError):
    """A stored recording is missing, unreadable with this secret, or damaged."""


def recording_key(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"centralita-recordings",
                info=b"v1").derive(secret.encode())


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to IVR_DATA_DIR
    size: int  # plaintext bytes


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")


class EncryptedStore(abc.ABC):
    """Naming and sealing shared by every recording store; subclasses move the bytes."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise StorageError("no secret to encrypt recordings with: set IVR_SECRET_KEY "
                               "or let the server create IVR_DATA_DIR/secret.key")
        self._aead = AESGCM(recording_key(secret))

    def relative_path(self, call_sid: str, recording_sid: str) -> str:
        for name, value in (("call", call_sid), ("recording", recording_sid)):
            if not value or not value.isalnum():
                raise StorageError(f"{name} id {value!r} is not a Twilio SID (letters and digits)")
        return f"recordings/{call_sid}-{recording_sid}{SUFFIX}"

    @staticmethod
    def _aad(call_sid: str, recording_sid: str) -> bytes:
        return f"{call_sid}/{recording_sid}".encode()

    def sealed(self, call_sid: str, recording_sid: str, chunks: Iterable[bytes],
               counted: list[int]) -> Iterator[bytes]:
        """The encrypted file, piece by piece; ``counted[0]`` ends as the plaintext size."""
        aad, prefix = self._aad(call_sid, recording_sid), secrets.token_bytes(_PREFIX)
        counter = 0
        yield MAGIC + prefix
        pending = b""
        for piece in _rechunk(chunks):
            if pending:
                yield self._seal(prefix, counter, False, pending, aad)
                counter += 1
            pending = piece
            counted[0] += len(piece)
        yield self._seal(prefix, counter, True, pending, aad)

    def _seal(self, prefix: bytes, counter: int, last: bool, data: bytes, aad: bytes) -> bytes:
        sealed = self._aead.encrypt(_nonce(prefix, counter, last), data, aad)
        return _LEN.pack(len(sealed)) + sealed

    def opened(self, handle: BinaryIO, call_sid: str, recording_sid: str, where: str
               ) -> Iterator[bytes]:
        """The plaintext of an encrypted file read from ``handle``, chunk by chunk."""
        aad = self._aad(call_sid, recording_sid)
        head = handle.read(len(MAGIC) + _PREFIX)
        if len(head) < len(MAGIC) + _PREFIX or head[:len(MAGIC)] != MAGIC:
            raise StorageError(f"{where}: not an encrypted recording")
        prefix, counter = head[len(MAGIC):], 0
        while True:
            raw_len = handle.read(_LEN.size)
            if len(raw_len) < _LEN.size:
                raise StorageError(f"{where}: file is cut short (no final chunk)")
            (length,) = _LEN.unpack(raw_len)
            if length < _TAG or length > CHUNK + _TAG:
                raise StorageError(f"{where}: damaged chunk header")
            sealed = handle.read(length)
            for last in (False, True):
                try:
                    plain = self._aead.decrypt(_nonce(prefix, counter, last), sealed, aad)
                except InvalidTag:
                    continue
                yield plain
                break
            else:
                raise StorageError(f"{where}: cannot decrypt (damaged, moved from another "
                                   "call, or IVR_SECRET_KEY/secret.key changed)")
            if last:
                if handle.read(1):
                    raise StorageError(f"{where}: data after the final chunk")
                return
            counter += 1

    # What each store provides.
    @abc.abstractmethod
    def write(self, call_sid: str, recording_sid: str, chunks: Iterable[bytes]) -> StoredFile:
        """Provided by each store."""

    @abc.abstractmethod
    def chunks(self, call_sid: str, recording_sid: str) -> Iterator[bytes]:
        """Provided by each store."""

    @abc.abstractmethod
    def exists(self, call_sid: str, recording_sid: str) -> bool:
        """Provided by each store."""

    @abc.abstractmethod
    def delete_relative(self, relative: str) -> bool:
        """Provided by each store."""

    def read(self, call_sid: str, recording_sid: str) -> bytes:
        return b"".join(self.chunks(call_sid, recording_sid))

    def verify(self, call_sid: str, recording_sid: str) -> int | None:
        """Plaintext size when the recording is present and whole, else None."""
        try:
            return sum(len(c) for c in self.chunks(call_sid, recording_sid))
        except StorageError:
            return None

    def delete(self, call_sid: str, recording_sid: str) -> bool:
        return self.delete_relative(self.relative_path(call_sid, recording_sid))


class RecordingStorage(EncryptedStore):
    """Encrypted recording files under ``data_dir/recordings``."""

    def __init__(self, data_dir: Path, secret: str) -> None:
        super().__init__(secret)
        self.data_dir = Path(data_dir)

    def path(self, call_sid: str, recording_sid: str) -> Path:
        return self.data_dir / self.relative_path(call_sid, recording_sid)

    def exists(self, call_sid: str, recording_sid: str) -> bool:
        return self.path(call_sid, recording_sid).is_file()

    def write(self, call_sid: str, recording_sid: str, chunks: Iterable[bytes]) -> StoredFile:
        """Encrypt ``chunks`` into the recording's file, atomically."""
        final = self.path(call_sid, recording_sid)
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
        size = [0]
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                for piece in self.sealed(call_sid, recording_sid, chunks, size):
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)
        return StoredFile(self.relative_path(call_sid, recording_sid), size[0])

    def chunks(self, call_sid: str, recording_sid: str) -> Iterator[bytes]:
        """The plaintext, chunk by chunk (for streaming to an authorised user)."""
        path = self.path(call_sid, recording_sid)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise StorageError(f"{path}: recording file is missing") from None
        with handle:
            yield from self.opened(handle, call_sid, recording_sid, str(path))

    def delete_relative(self, relative: str) -> bool:
        """Delete a file named by a recording row's ``path`` (inside recordings/ only)."""
        root = (self.data_dir / "recordings").resolve()
        path = (self.data_dir / relative).resolve()
        if root not in path.parents:
            raise StorageError(f"{relative}: not inside {root}; refusing to delete it")
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def open_storage(data_dir: Path, secret: str, recordings_url: str | None = None,
                 endpoint_url: str | None = None) -> EncryptedStore:
    """The configured store: ``s3://bucket/prefix`` (``IVR_RECORDINGS_URL``, with
    ``IVR_S3_ENDPOINT_URL`` for a non-AWS service) or, by default, files under
    ``data_dir``."""
    if recordings_url and recordings_url.startswith("s3://"):
        from recordings.s3_storage import S3RecordingStorage

        return S3RecordingStorage.from_url(recordings_url, secret, endpoint_url)
    if recordings_url and recordings_url not in ("file", "file:", "local"):
        raise StorageError(f"IVR_RECORDINGS_URL={recordings_url!r}: use s3://bucket/prefix, "
                           "or leave it unset for files under IVR_DATA_DIR/recordings")
    return RecordingStorage(data_dir, secret)


def _rechunk(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pieces of exactly CHUNK bytes (the last may be shorter; at least one, maybe empty)."""
    buffer = bytearray()
    for piece in chunks:
        buffer += piece
        while len(buffer) >= CHUNK:
            yield bytes(buffer[:CHUNK])
            del buffer[:CHUNK]
    if buffer:
        yield bytes(buffer)
