"""Privacy: redaction of payment and identity numbers, and erasing a person everywhere.

:func:`redact` is applied wherever text is stored (events, transcripts, summaries,
customer fields): card numbers that pass the Luhn check keep only their last four
digits, Spanish DNI/NIE numbers with a correct control letter and IBANs with a
correct mod-97 checksum are masked. Spoken card numbers ("cuatro cinco...") are
turned into digits by the speech layer before they reach this function.

:func:`erase` removes a customer (or an unknown caller, by number) from SQL, Redis
and the files under ``IVR_DATA_DIR``, then searches every store again for their
phone, name, email and call SIDs and puts what it found in the report.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from recordings.storage import StorageError

if TYPE_CHECKING:
    from recordings.store import Database

CARD_MASK = "**** **** **** {last4}"
# Digit runs of 13+ digits, single spaces or dashes allowed between them; runs longer
# than a card are searched group by group in _mask_card.
_CARD_RE = re.compile(r"(?<!\d)(?<!\d[ -])\d(?:[ -]?\d){12,40}(?![ -]?\d)")
_DNI_RE = re.compile(r"(?<![\w])(\d{8})[ -]?([A-Za-z])(?!\w)")
_NIE_RE = re.compile(r"(?<![\w])([XYZxyz])[ -]?(\d{7})[ -]?([A-Za-z])(?!\w)")
_IBAN_RE = re.compile(r"(?<![\w])([A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?)(?!\w)")
DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def dni_ok(number: str, letter: str) -> bool:
    return DNI_LETTERS[int(number) % 23] == letter.upper()


def iban_ok(iban: str) -> bool:
    text = iban.replace(" ", "").upper()
    if not 15 <= len(text) <= 34 or not text[2:4].isdigit():
        return False
    moved = text[4:] + text[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1
    except ValueError:
        return False


def _mask_card(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return CARD_MASK.format(last4=digits[-4:])
    # A card written in groups next to other digits ("4111 1111 1111 1111 123", a CVV
    # or an expiry): look for a run of whole groups that is a card on its own.
    groups = re.split(r"[ -]", text)
    for size in range(len(groups) - 1, 0, -1):
        for start in range(len(groups) - size + 1):
            part = "".join(groups[start:start + size])
            if 13 <= len(part) <= 19 and luhn_ok(part):
                before = " ".join(groups[:start])
                after = " ".join(groups[start + size:])
                masked = CARD_MASK.format(last4=part[-4:])
                return " ".join(p for p in (before, masked, after) if p)
    return text


def _mask_dni(match: re.Match[str]) -> str:
    return "[DNI]" if dni_ok(match.group(1), match.group(2)) else match.group(0)


def _mask_nie(match: re.Match[str]) -> str:
    number = "XYZ".index(match.group(1).upper()) * 10**7 + int(match.group(2))
    return "[NIE]" if dni_ok(str(number), match.group(3)) else match.group(0)


def _mask_iban(match: re.Match[str]) -> str:
    text = match.group(1)
    if iban_ok(text):
        compact = text.replace(" ", "")
        return f"[IBAN {compact[:2].upper()}… {compact[-4:]}]"
    return text


def redact(text: str) -> str:
    """Mask card numbers (to the last four), DNI/NIE numbers and IBANs in ``text``."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    text = _IBAN_RE.sub(_mask_iban, text)  # first: an IBAN's digits may pass Luhn
    text = _NIE_RE.sub(_mask_nie, text)
    text = _DNI_RE.sub(_mask_dni, text)
    return _CARD_RE.sub(_mask_card, text)


def redact_value(value: Any) -> Any:
    """:func:`redact` every string inside JSON-like data (dict keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


# --------------------------------------------------------------------------- erase


@dataclass
class StoreReport:
    """What erase did in one store (SQL, Redis, files)."""

    store: str
    removed: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class EraseReport:
    customer_id: int | None
    calls: int
    stores: list[StoreReport] = field(default_factory=list)
    # Where the person could still be found afterwards: "store: place (kind)".
    remaining: list[str] = field(default_factory=list)
    searched_for: list[str] = field(default_factory=list)  # the kinds searched

    @property
    def clean(self) -> bool:
        """No phone, email or CallSid of theirs is left anywhere.

        Their name alone does not make a report unclean: another customer may bear
        it. Name hits stay in ``remaining`` (and are printed) for a person to judge.
        """
        return all(place.endswith("(name)") for place in self.remaining)

    def to_dict(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "calls": self.calls,
                "stores": [{"store": s.store, "removed": s.removed, "notes": s.notes}
                           for s in self.stores],
                "verification": {"searched_for": self.searched_for, "clean": self.clean,
                                 "remaining": self.remaining}}


ERASED = b"[erased]"
LINE_FILE_SUFFIXES = (".csv", ".tsv", ".log", ".txt", ".jsonl", ".ndjson")
STORE_FILE_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal", ".aof", ".rdb",
                       ".manifest", ".sock", ".lock")


def erase(database: Database, redis_client: redis.Redis | None, data_dir: Path,
          customer_id: int | None = None, phone: str | None = None, *,
          region: str = "ES", skip_dirs: Iterable[Path] = ()) -> EraseReport:
    """Remove a person (by customer id or phone) from every store and verify it.

    Raises ``recordings.errors.NotFound`` when neither the customer nor any call
    from that number exists in SQL, and ``InvalidPhone`` for an unreadable number.
    """
    # Imported here: the store and customer modules import redact() from this module.
    from recordings.customers import normalise_phone
    from recordings.store.redis_sweep import erase_from_redis, search_redis, sids_for_phone

    if customer_id is None and not phone:
        raise ValueError("give a customer id or a phone number")
    e164 = normalise_phone(phone, region) if phone else None
    if e164 is None and customer_id is not None:
        customer = database.customers.get(customer_id)
        e164 = customer.phone if customer else None
    # Calls Redis knows by number but SQL may not have filed yet.
    known: list[str] = []
    redis_note = "not reachable: nothing erased there; erase again by --phone when it is"
    try:
        if redis_client is not None:
            redis_client.ping()
            known = sids_for_phone(redis_client, e164) if e164 else []
    except redis.RedisError as exc:
        redis_client = None
        redis_note = f"not reachable ({exc}): nothing erased there; erase again by --phone"
    found = database.erase_person(customer_id, e164, known)
    identity, sids = found["identity"], list(found["call_sids"])
    sql = StoreReport("sql", dict(found["removed"]))
    sql.notes.append(database.vacuum())
    report = EraseReport(customer_id=identity["customer_id"], calls=len(sids), stores=[sql])
    database.audit.write("system", "customer.erase", "customer", "erased",
                         {"calls": len(sids)})

    removal = _needles(identity, sids, for_search=False)
    if redis_client is not None:
        # Keys named by the person rather than by their number or calls.
        prefixes = [f"ivr:customer:{identity['customer_id']}"] \
            if identity.get("customer_id") is not None else []
        removed, notes = erase_from_redis(redis_client, removal, prefixes)
        report.stores.append(StoreReport("redis", removed, notes))
    else:
        report.stores.append(StoreReport("redis", notes=[redis_note]))
        report.remaining.append("redis: not searched (phone)")  # unverified is not clean
    data_dir = Path(data_dir)
    skip = [Path(p).resolve() for p in skip_dirs]
    names = [(k, n) for k, n in _needles(identity, [], for_search=True) if k == "name"]
    report.stores.append(_erase_files(data_dir, removal, found["recording_paths"], skip, names))
    remote = _remote_store(data_dir)
    if remote is not None:
        try:
            report.stores.append(_erase_objects(remote, found["recording_paths"], sids))
        except StorageError as exc:  # the bucket failed: say so, never claim it clean
            report.stores.append(StoreReport("recordings store", notes=[str(exc)]))
            report.remaining.append(f"recordings store: not erased ({exc}); run the erase again")

    search = _needles(identity, sids, for_search=True)
    report.searched_for = sorted({kind for kind, _ in search})
    report.remaining += [f"sql: {hit}" for hit in database.search_text(
        (kind, n.decode()) for kind, n in search)]
    if redis_client is not None:
        report.remaining += [f"redis: {hit}" for hit in search_redis(redis_client, search)]
    report.remaining += [f"file: {hit}" for hit in _search_files(data_dir, search, skip)]
    if remote is not None:
        try:
            report.remaining += [f"s3://{remote.bucket}/{key}"
                                 for sid in sids for key in remote.keys_for_call(sid)]
        except StorageError as exc:
            report.remaining.append(f"recordings store: not verified ({exc})")
    db_file = database.sqlite_path
    if db_file is not None and data_dir.resolve() not in db_file.parents:
        for path in (db_file, db_file.with_name(db_file.name + "-wal")):
            if path.is_file():
                report.remaining += [f"file: {path} ({kind})"
                                     for kind in sorted(_file_hits(path, search))]
    return report


def _needles(identity: dict[str, Any], sids: list[str], for_search: bool
             ) -> list[tuple[str, bytes]]:
    """(kind, bytes) to look for. Names only when searching: others may share them."""
    out: list[tuple[str, bytes]] = [("call_sid", s.encode()) for s in sids]
    phone = identity.get("phone")
    if phone:
        digits = phone.lstrip("+")
        out += [("phone", phone.encode()), ("phone", f"%2B{digits}".encode())]
        if for_search:
            out.append(("phone", digits.encode()))
    if identity.get("email"):
        out.append(("email", identity["email"].encode()))
    name = identity.get("name")
    if for_search and name and len(name) >= 5:
        out.append(("name", name.encode()))
        escaped = json.dumps(name)[1:-1]  # as JSON writers store it by default
        if escaped != name:
            out.append(("name", escaped.encode()))
    return out


def _count(report: StoreReport, what: str, n: int = 1) -> None:
    report.removed[what] = report.removed.get(what, 0) + n


def _hit(data: bytes, needles: list[tuple[str, bytes]]) -> str | None:
    return next((kind for kind, n in needles if n in data), None)


def _walk(data_dir: Path, skip: list[Path]) -> Iterator[Path]:
    if not data_dir.is_dir():
        return
    for root, dirs, files in os.walk(data_dir, followlinks=False):
        base = Path(root).resolve()
        dirs[:] = [d for d in dirs if (base / d) not in skip]
        for name in files:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _file_hits(path: Path, needles: list[tuple[str, bytes]]) -> set[str]:
    """Kinds of needles in the file, read in overlapping chunks (files may be big)."""
    overlap = max((len(n) for _, n in needles), default=1)
    hits: set[str] = set()
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            block = tail + chunk
            hits |= {kind for kind, n in needles if n in block}
            tail = block[-overlap:]
    return hits


def _erase_files(data_dir: Path, needles: list[tuple[str, bytes]], recording_paths: list[str],
                 skip: list[Path], names: list[tuple[str, bytes]]) -> StoreReport:
    """Delete files named after them; rewrite text files that mention them.

    A text file that holds their number, email or calls loses the lines that do
    (CSV, logs) or has those values and their name replaced (other text files).
    """
    report = StoreReport("files")
    for relative in recording_paths:
        path = (data_dir / relative)
        if path.is_file():
            path.unlink()
            _count(report, "recordings")
    for path in list(_walk(data_dir, skip)):
        if _hit(path.name.encode(), needles):
            path.unlink()
            _count(report, "files named after the person or their calls")
            continue
        if path.name.endswith(STORE_FILE_SUFFIXES) or not _file_hits(path, needles):
            continue  # the stores' own files were handled by SQL vacuum / AOF rewrite
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            report.notes.append(f"{path.relative_to(data_dir)}: binary file mentions them; "
                                "left unchanged, remove or rewrite it by hand")
            continue
        if path.suffix.lower() in LINE_FILE_SUFFIXES:  # a line is one record: drop it
            data = b"".join(line for line in data.splitlines(keepends=True)
                            if not _hit(line, needles))
        else:
            for _, needle in needles + names:
                data = data.replace(needle, ERASED)
        tmp = path.with_name(path.name + ".erase-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        _count(report, "text files rewritten")
    return report


def _remote_store(data_dir: Path) -> Any | None:
    """The S3-compatible recording store when ``IVR_RECORDINGS_URL`` names one."""
    from recordings.config import JobConfig

    config = JobConfig.from_env()
    if not (config.recordings_url or "").startswith("s3://"):
        return None
    from recordings.config import load_or_create_secret
    from recordings.s3_storage import S3RecordingStorage

    secret = config.secret_key or load_or_create_secret(Path(data_dir))
    return S3RecordingStorage.from_url(config.recordings_url or "", secret,
                                       config.s3_endpoint_url)


def _erase_objects(remote: Any, recording_paths: list[str], sids: list[str]) -> StoreReport:
    """Delete the person's recordings from the object store, and any stray object of
    their calls (a recording stored after the row was erased, say)."""
    report = StoreReport("recordings store")
    keys = {remote.key(p) for p in recording_paths}
    for sid in sids:
        keys.update(remote.keys_for_call(sid))
    for key in sorted(keys):
        relative = key[len(remote.prefix) + 1:] if remote.prefix else key
        if remote.delete_relative(relative):
            _count(report, "recordings")
    report.notes.append(f"s3://{remote.bucket}/{remote.prefix}: objects hold ciphertext only")
    return report


def _search_files(data_dir: Path, needles: list[tuple[str, bytes]], skip: list[Path]
                  ) -> list[str]:
    hits = []
    for path in _walk(data_dir, skip):
        name_kinds = {k for k, n in needles if n in path.name.encode()}
        for kind in sorted(_file_hits(path, needles) | name_kinds):
            hits.append(f"{path.relative_to(data_dir)} ({kind})")
    return hits
