"""Customer records: phone normalisation, CSV reading, the record and its flow view.

Pure code: reading a CSV file turns each row into a :class:`CustomerInput` or a
:class:`Skipped` with its line number and reason; ``store.py`` writes the inputs.
Phones are stored as E.164 (``phonenumbers``), national numbers read in a default
region (Spain unless told otherwise).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import phonenumbers

from call_flows.actions import CustomerInfo
from recordings.errors import ImportFileError, InvalidPhone
from recordings.privacy import redact

DEFAULT_REGION = "ES"
DEMO_CSV = Path(__file__).with_name("demo_customers.csv")  # fictional people for the demo
REQUIRED_COLUMNS = ("name", "phone", "email", "language")
ACCOUNT_COLUMNS = ("account", "account_number", "customer_number")
LANGUAGE_NAMES = {
    "español": "es", "espanol": "es", "castellano": "es", "spanish": "es",
    "català": "ca", "catala": "ca", "catalan": "ca", "catalán": "ca",
    "english": "en", "inglés": "en", "ingles": "en", "anglès": "en",
}
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TRUE_WORDS = {"1", "true", "yes", "y", "si", "sí", "x", "vip"}
FALSE_WORDS = {"", "0", "false", "no", "n"}


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Any common way of writing a phone number -> E.164 (``+34600112233``)."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("the phone number is empty")
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        raise InvalidPhone(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{text!r} is not a valid phone number "
                           f"(national numbers are read as region {region.upper()}; "
                           "write others with +country code)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_language(raw: str) -> str | None:
    text = (raw or "").strip().lower()
    if not text:
        return None
    text = LANGUAGE_NAMES.get(text, text).split("-")[0].split("_")[0]
    if not LANGUAGE_RE.match(text):
        raise ValueError(f"language {raw.strip()!r} is not a language code such as es, ca, en")
    return text


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    phone: str | None
    email: str | None
    language: str | None
    account: str | None
    vip: bool
    fields: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "phone": self.phone, "email": self.email,
            "language": self.language, "account": self.account, "vip": self.vip,
            "fields": dict(self.fields), "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class CustomerInput:
    """A customer as given (CSV row, API call): validated, not yet stored."""

    name: str
    phone: str | None = None  # E.164
    email: str | None = None
    language: str | None = None
    account: str | None = None
    vip: bool = False
    fields: Mapping[str, str] = field(default_factory=dict)
    follow_up: str | None = None  # opens a follow-up unless one is open with this text
    line: int = 0  # CSV line, for reports


@dataclass(frozen=True)
class Skipped:
    line: int
    reason: str


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    rows: int = 0

    @property
    def imported(self) -> int:
        return self.created + self.updated

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "skipped": [{"line": s.line, "reason": s.reason} for s in self.skipped]}


def customer_info(customer: Customer, open_follow_up: str | None = None) -> CustomerInfo:
    """The view of a customer the flow engine gets (strings only in ``fields``)."""
    return CustomerInfo(
        id=str(customer.id), name=customer.name, language=customer.language,
        vip=customer.vip, account=customer.account, open_follow_up=open_follow_up,
        fields={str(k): str(v) for k, v in customer.fields.items() if v is not None},
    )


def parse_row(row: Mapping[str, str], line: int, region: str = DEFAULT_REGION
              ) -> CustomerInput | Skipped:
    """One CSV row (lower-cased header keys) -> a valid input or the reason it is not."""
    values = {k: (v or "").strip() for k, v in row.items() if k}
    name = values.get("name", "")
    if not name:
        return Skipped(line, "the name is empty")
    try:
        phone = normalise_phone(values.get("phone", ""), region)
    except InvalidPhone as exc:
        return Skipped(line, f"phone: {exc}")
    email = values.get("email", "") or None
    if email is not None and not EMAIL_RE.match(email):
        return Skipped(line, f"email {email!r} is not an email address")
    try:
        language = normalise_language(values.get("language", ""))
    except ValueError as exc:
        return Skipped(line, str(exc))
    vip_text = values.get("vip", "").lower()
    if vip_text not in TRUE_WORDS | FALSE_WORDS:
        return Skipped(line, f"vip {values['vip']!r} is not yes/no")
    account = next((values[c] for c in ACCOUNT_COLUMNS if values.get(c)), None)
    known = set(REQUIRED_COLUMNS) | set(ACCOUNT_COLUMNS) | {"vip", "follow_up"}
    extra = {k: redact(v) for k, v in values.items() if k not in known and v}
    return CustomerInput(name=name, phone=phone, email=email.lower() if email else None,
                         language=language, account=account, vip=vip_text in TRUE_WORDS,
                         fields=extra, follow_up=redact(values.get("follow_up", "")) or None,
                         line=line)


def count_rows(path: Path) -> int:
    """Physical lines after the header: a cheap total for progress reports."""
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


def read_csv(path: Path, region: str = DEFAULT_REGION
             ) -> Iterator[CustomerInput | Skipped]:
    """Yield one parsed row at a time; raise :class:`ImportFileError` for a bad file."""
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    not_utf8 = f"{path}: not UTF-8 text; save the CSV as UTF-8"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        try:
            first_line = handle.readline()
        except UnicodeDecodeError:
            raise ImportFileError(not_utf8) from None
        handle.seek(0)
        try:  # spreadsheets in Spain often save with ";"
            dialect: Any = csv.Sniffer().sniff(first_line, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(handle, dialect)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise ImportFileError(f"{path}: the file is empty") from None
        except UnicodeDecodeError:
            raise ImportFileError(not_utf8) from None
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ImportFileError(
                f"{path}: the header lacks the column(s) {', '.join(missing)}; "
                f"it needs at least {','.join(REQUIRED_COLUMNS)} (found: {','.join(header)})")
        line = reader.line_num
        try:
            for cells in reader:
                start, line = line + 1, reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(header):
                    yield Skipped(start, f"{len(cells)} cells but the header has {len(header)}")
                    continue
                yield parse_row(dict(zip(header, cells)), start, region)
        except UnicodeDecodeError:
            raise ImportFileError(f"{not_utf8} (from about line {line + 1})") from None
        except csv.Error as exc:
            raise ImportFileError(f"{path}:{line + 1}: cannot read the CSV: {exc}") from None
