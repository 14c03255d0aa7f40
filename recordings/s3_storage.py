"""Recordings in an S3-compatible object store, encrypted by us before upload.

``IVR_RECORDINGS_URL=s3://bucket/prefix`` selects it (``IVR_S3_ENDPOINT_URL`` for a
service other than AWS: MinIO, Ceph, Garage...); credentials and region come from the
standard AWS environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, or an instance role). Objects are named like the files of
:class:`recordings.storage.RecordingStorage` under the prefix
(``prefix/recordings/<CallSid>-<RecordingSid>.wav.enc``) and hold the same
ciphertext, so the bucket never sees audio. An object appears whole or not at all
(S3 PUT semantics): a job killed mid-upload leaves nothing, and uploading again
replaces it (idempotent). Needs ``boto3`` (the ``s3`` extra).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from recordings.storage import EncryptedStore, StorageError, StoredFile

SPOOL_BYTES = 8 * 1024 * 1024  # larger recordings spill to a temporary file while uploading


class S3RecordingStorage(EncryptedStore):
    """Encrypted recordings as objects ``<prefix>/recordings/...`` in ``bucket``."""

    def __init__(self, client: Any, bucket: str, prefix: str, secret: str) -> None:
        super().__init__(secret)
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    @classmethod
    def from_url(cls, url: str, secret: str, endpoint_url: str | None = None
                 ) -> S3RecordingStorage:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise StorageError(f"IVR_RECORDINGS_URL={url!r}: use s3://bucket/prefix")
        try:
            import boto3
        except ImportError:
            raise StorageError("IVR_RECORDINGS_URL is an s3:// URL but boto3 is not "
                               "installed: pip install 'centralita[s3]'") from None
        # A session of our own: boto3's default session is not safe across threads.
        client = boto3.session.Session().client("s3", endpoint_url=endpoint_url or None)
        return cls(client, parts.netloc, parts.path, secret)

    def key(self, relative: str) -> str:
        if relative.startswith("/") or ".." in relative.split("/") or \
                not relative.startswith("recordings/"):
            raise StorageError(f"{relative}: not a recording path (recordings/...)")
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def where(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self.key(relative)}"

    def write(self, call_sid: str, recording_sid: str, chunks: Iterable[bytes]) -> StoredFile:
        """Encrypt ``chunks`` and upload the ciphertext as one object."""
        relative = self.relative_path(call_sid, recording_sid)
        size = [0]
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            for piece in self.sealed(call_sid, recording_sid, chunks, size):
                spool.write(piece)
            spool.seek(0)
            try:
                self.client.upload_fileobj(spool, self.bucket, self.key(relative),
                                           ExtraArgs={"ContentType": "application/octet-stream"})
            except Exception as exc:  # botocore's errors: the job retries later
                raise StorageError(f"{self.where(relative)}: upload failed: {exc}") from exc
        return StoredFile(relative, size[0])

    def chunks(self, call_sid: str, recording_sid: str) -> Iterator[bytes]:
        relative = self.relative_path(call_sid, recording_sid)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(relative))["Body"]
        except Exception as exc:
            raise StorageError(f"{self.where(relative)}: recording object is missing or "
                               f"unreadable ({_code(exc)})") from exc
        try:
            yield from self.opened(body, call_sid, recording_sid, self.where(relative))
        finally:
            body.close()

    def exists(self, call_sid: str, recording_sid: str) -> bool:
        return self._exists(self.key(self.relative_path(call_sid, recording_sid)))

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"s3://{self.bucket}/{key}: {exc}") from exc
        return True

    def delete_relative(self, relative: str) -> bool:
        key = self.key(relative)
        existed = self._exists(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # botocore's errors, as ours: erasure reports it
            raise StorageError(f"s3://{self.bucket}/{key}: delete failed: {exc}") from exc
        return existed

    def keys_for_call(self, call_sid: str) -> list[str]:
        """Every object of one call (erasure checks that none is left)."""
        prefix = self.key(f"recordings/{call_sid}-")
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]
        except Exception as exc:
            raise StorageError(f"s3://{self.bucket}/{prefix}*: listing failed: {exc}") from exc


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or type(exc).__name__)
