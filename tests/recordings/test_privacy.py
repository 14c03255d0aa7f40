"""Redaction of card/identity numbers, and erasing a person from every store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from recordings.customers import CustomerInput
from recordings.errors import NotFound
from recordings.privacy import erase, iban_ok, luhn_ok, redact, redact_value
from recordings.store import Database

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("mi tarjeta es 4111 1111 1111 1111", "mi tarjeta es **** **** **** 1111"),
    ("4111-1111-1111-1111 caduca 12/27", "**** **** **** 1111 caduca 12/27"),
    ("amex 378282246310005.", "amex **** **** **** 0005."),
    ("4111 1111 1111 1111 123", "**** **** **** 1111 123"),  # CVV beside it
    ("pedido 4111 1111 1111 1112", "pedido 4111 1111 1111 1112"),  # fails Luhn
    ("ticket 1234567890123", "ticket 1234567890123"),
    ("llame al +34 600 11 22 33", "llame al +34 600 11 22 33"),
    ("DNI 12345678Z", "DNI [DNI]"),
    ("dni 12345678-z.", "dni [DNI]."),
    ("DNI 12345678A", "DNI 12345678A"),  # wrong letter: not a DNI
    ("NIE X1234567L", "NIE [NIE]"),
    ("NIE Y1234567X", "NIE [NIE]"),
    ("NIE Y1234567A", "NIE Y1234567A"),  # wrong letter
    ("cuenta ES91 2100 0418 4502 0005 1332", "cuenta [IBAN ES… 1332]"),
    ("GB82WEST12345698765432", "[IBAN GB… 5432]"),
    ("ES91 2100 0418 4502 0005 1333", "ES91 2100 0418 4502 0005 1333"),  # bad checksum
    ("", ""),
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_checksums() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE89 3704 0044 0532 0130 01")


def test_redact_value_walks_json() -> None:
    data = {"said": ["4111111111111111", 3, None], "nested": {"dni": "12345678Z"}}
    assert redact_value(data) == {"said": ["**** **** **** 1111", 3, None],
                                  "nested": {"dni": "[DNI]"}}


def _with_luhn_digit(body: str) -> str:
    for last in "0123456789":
        if luhn_ok(body + last):
            return body + last
    raise AssertionError("unreachable")


@given(body=st.text(alphabet="0123456789", min_size=12, max_size=18),
       sep=st.sampled_from(["", " ", "-"]),
       before=st.text(alphabet="abc ,.:", max_size=10),
       after=st.text(alphabet="abc ,.:", max_size=10))
def test_no_valid_card_survives_redaction(body: str, sep: str, before: str, after: str) -> None:
    card = _with_luhn_digit(body)
    written = sep.join(card[i:i + 4] for i in range(0, len(card), 4))
    out = redact(f"{before} {written} {after}")
    assert card not in out.replace(" ", "").replace("-", "")
    assert card[-4:] in out


# --------------------------------------------------------------------------- erase

ANA_PHONE, BOB_PHONE = "+34600112233", "+34699887766"
ANA_CALLS = ["CA" + "a" * 32, "CA" + "b" * 32]
BOB_CALL = "CA" + "c" * 32


def _populate(db: Database, client: redis.Redis, data_dir: Path) -> int:
    ana, _ = db.customers.upsert(CustomerInput(
        name="Ana García Vidal", phone=ANA_PHONE, email="ana.garcia@example.com",
        language="es", account="ACC-77"))
    bob, _ = db.customers.upsert(CustomerInput(name="Bob Marley Jr", phone=BOB_PHONE))
    for sid, phone in [*((s, ANA_PHONE) for s in ANA_CALLS), (BOB_CALL, BOB_PHONE)]:
        db.calls.record_start(sid, from_number=phone, to_number="+34910000000",
                              started_at=NOW)
        db.calls.add_events(sid, [{"seq": 1, "at": NOW, "kind": "start",
                                   "data": {"caller": phone}}])
        db.calls.add_transcript(sid, f"hola soy {'Ana García Vidal' if phone == ANA_PHONE else 'Bob'}")
        db.summaries.save_draft(sid, {"caller": phone})
        path = f"recordings/{sid}.wav"
        (data_dir / "recordings").mkdir(exist_ok=True)
        (data_dir / path).write_bytes(b"RIFF....WAVE" + sid.encode())
        db.calls.add_recording(sid, path=path, recording_sid="RE" + sid[2:])
        db.calls.record_end(sid, ended_at=NOW, outcome="served")
        client.hset(f"ivr:call:{sid}", mapping={"session": json.dumps(
            {"call_sid": sid, "caller": phone}), "status": "completed"})
        client.sadd(f"ivr:call:{sid}:seqs", 1, 2)
        client.xadd(f"ivr:call:{sid}:events", {"seq": 1, "data": "{}"})
        client.xadd("ivr:events", {"sid": sid, "data": json.dumps({"node": "menu"})})
        client.sadd(f"ivr:phone:{phone}", sid)
        client.zadd("q:general:waiting", {sid: 1.0})
        client.rpush("q:callbacks", json.dumps({"number": phone}))
    db.follow_ups.open(ana.id, "devolver 20 euros", call_sid=ANA_CALLS[0])
    db.audit.write("agent1", "customer.read", "customer", str(ana.id))
    db.audit.write("agent1", "call.read", "call", ANA_CALLS[1])
    db.audit.write("agent1", "customer.read", "customer", str(bob.id))
    client.hset("rq:job:job-ana", mapping={"data": json.dumps([ANA_CALLS[0]]), "status": "finished"})
    client.zadd("rq:finished:default", {"job-ana": 1, "job-bob": 2})
    client.xadd("rq:results:job-ana", {"return_value": "ok"})
    client.hset("rq:job:job-bob", mapping={"data": json.dumps([BOB_CALL])})
    client.set("session:web-1", json.dumps({"user": "agent1", "looking_at": ANA_PHONE}))
    (data_dir / "logs").mkdir()
    (data_dir / "logs" / "ivr.log").write_text(
        f"call from {ANA_PHONE} ({ANA_CALLS[0]})\ncall from {BOB_PHONE} ({BOB_CALL})\n")
    return ana.id


def _needles() -> list[bytes]:
    return [n.encode() for n in (ANA_PHONE, ANA_PHONE[1:], "Ana García Vidal",
                                 "ana.garcia@example.com", *ANA_CALLS)]


def _traces_in_files(data_dir: Path) -> list[str]:
    return [f"{p}: {n!r}" for p in data_dir.rglob("*") if p.is_file()
            for n in _needles() if n in p.read_bytes() or n in str(p).encode()]


def _traces_in_redis(client: redis.Redis) -> list[str]:
    raw = redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=client.connection_pool.connection_class,
        **{**client.connection_pool.connection_kwargs, "decode_responses": False}))
    readers = {
        b"string": lambda k: [raw.get(k)],
        b"hash": lambda k: [b for kv in raw.hgetall(k).items() for b in kv],
        b"list": lambda k: raw.lrange(k, 0, -1),
        b"set": lambda k: list(raw.smembers(k)),
        b"zset": lambda k: raw.zrange(k, 0, -1),
        b"stream": lambda k: [b for _, fields in raw.xrange(k) for kv in fields.items()
                              for b in kv],
    }
    found = []
    for key in raw.scan_iter():
        values = b"\0".join(readers[raw.type(key)](key))
        found += [f"{key!r}: {n!r}" for n in _needles() if n in key or n in values]
    raw.close()
    return found


def test_erase_leaves_no_trace_and_keeps_others(db: Database, redis_client: redis.Redis,
                                                data_dir: Path) -> None:
    ana_id = _populate(db, redis_client, data_dir)
    assert _traces_in_files(data_dir) and _traces_in_redis(redis_client)  # the test sees them

    report = erase(db, redis_client, data_dir, customer_id=ana_id)

    assert report.clean, report.remaining
    assert report.calls == 2
    sql, red, files = report.stores
    assert sql.removed["customers"] == 1 and sql.removed["calls"] == 2
    assert sql.removed["call_events"] == 2 and sql.removed["follow_ups"] == 1
    assert sql.removed["audit_log (anonymised)"] == 2
    assert red.removed["rq jobs"] == 1 and red.removed["keys"] >= 7
    assert files.removed["recordings"] == 2 and files.removed["text files rewritten"] == 1
    assert set(report.searched_for) == {"call_sid", "email", "name", "phone"}
    # independently of the report: the SQLite file bytes, every file, every Redis value
    assert _traces_in_files(data_dir) == []
    assert _traces_in_redis(redis_client) == []
    assert db.customers.find_by_phone(ANA_PHONE) is None
    assert all(db.calls.get(s) is None for s in ANA_CALLS)
    # Bob is untouched
    assert db.customers.find_by_phone(BOB_PHONE) is not None
    assert db.calls.get(BOB_CALL)["events"][0]["data"] == {"caller": BOB_PHONE}
    assert redis_client.exists(f"ivr:call:{BOB_CALL}", f"ivr:phone:{BOB_PHONE}",
                               "rq:job:job-bob") == 3
    assert redis_client.zrange("rq:finished:default", 0, -1) == ["job-bob"]
    assert redis_client.zrange("q:general:waiting", 0, -1) == [BOB_CALL]
    assert redis_client.xlen("ivr:events") == 1
    assert (data_dir / "recordings" / f"{BOB_CALL}.wav").exists()
    assert BOB_PHONE in (data_dir / "logs" / "ivr.log").read_text()
    assert db.audit.entries("customer", "erased")[-1]["action"] == "customer.erase"


def test_erase_by_phone_of_an_unknown_caller(db: Database, redis_client: redis.Redis,
                                             data_dir: Path) -> None:
    db.calls.record_start(ANA_CALLS[0], from_number=ANA_PHONE, to_number=None, started_at=NOW)
    redis_client.sadd(f"ivr:phone:{ANA_PHONE}", ANA_CALLS[0])
    report = erase(db, redis_client, data_dir, phone="600 11 22 33")
    assert report.clean and report.customer_id is None and report.calls == 1
    assert redis_client.exists(f"ivr:phone:{ANA_PHONE}") == 0


def test_erase_of_nobody_says_so(db: Database, redis_client: redis.Redis,
                                 data_dir: Path) -> None:
    with pytest.raises(NotFound):
        erase(db, redis_client, data_dir, customer_id=42)
    with pytest.raises(NotFound):
        erase(db, redis_client, data_dir, phone=ANA_PHONE)


def test_verification_reports_what_it_cannot_remove(db: Database, redis_client: redis.Redis,
                                                    data_dir: Path) -> None:
    ana, _ = db.customers.upsert(CustomerInput(name="Ana García Vidal", phone=ANA_PHONE))
    (data_dir / "notes.bin").write_bytes(b"\xff\xfe" + ANA_PHONE.encode() + b"\x00")
    report = erase(db, redis_client, data_dir, customer_id=ana.id)
    assert not report.clean
    assert any("notes.bin" in place and "(phone)" in place for place in report.remaining)
    assert any("binary file" in note for note in report.stores[2].notes)


def test_erase_by_phone_finds_calls_only_redis_knows(db: Database, redis_client: redis.Redis,
                                                    data_dir: Path) -> None:
    """A caller whose call was never filed in SQL: Redis's per-number index names it."""
    redis_client.sadd(f"ivr:phone:{ANA_PHONE}", ANA_CALLS[0])
    redis_client.hset(f"ivr:call:{ANA_CALLS[0]}", "status", "in-progress")
    redis_client.zadd("q:general:waiting", {ANA_CALLS[0]: 1})
    db.calls.add_events(ANA_CALLS[0], [{"seq": 1, "kind": "start"}])  # events, no call row
    report = erase(db, redis_client, data_dir, phone=ANA_PHONE)
    assert report.clean, report.remaining
    assert report.calls == 1 and report.stores[0].removed["call_events"] == 1
    assert redis_client.keys("*") == []
    with pytest.raises(NotFound):
        erase(db, redis_client, data_dir, phone=ANA_PHONE)


def test_verification_finds_json_escaped_names(db: Database, redis_client: redis.Redis,
                                               data_dir: Path) -> None:
    ana, _ = db.customers.upsert(CustomerInput(name="Ana García Vidal", phone=ANA_PHONE))
    redis_client.set("ivr:wallboard", json.dumps({"last_caller": "Ana García Vidal"}))
    report = erase(db, redis_client, data_dir, customer_id=ana.id)
    assert report.remaining == ["redis: a string key (name)"]
    assert report.clean  # a name alone may be a namesake's: shown, not failed


def test_a_namesake_is_reported_but_other_identifiers_decide(
        db: Database, redis_client: redis.Redis, data_dir: Path) -> None:
    ana, _ = db.customers.upsert(CustomerInput(name="Ana García", phone=ANA_PHONE))
    db.customers.upsert(CustomerInput(name="Ana García", phone=BOB_PHONE))
    report = erase(db, redis_client, data_dir, customer_id=ana.id)
    assert report.clean
    assert report.remaining[0] == "sql: customers.name (name)"
    assert db.customers.find_by_phone(BOB_PHONE) is not None


def test_an_unreachable_redis_is_reported_not_clean(db: Database, data_dir: Path) -> None:
    ana, _ = db.customers.upsert(CustomerInput(name="Ana García Vidal", phone=ANA_PHONE))
    down = redis.Redis(unix_socket_path=str(data_dir / "no-such.sock"))
    report = erase(db, down, data_dir, customer_id=ana.id)
    assert not report.clean
    assert "not reachable" in report.stores[1].notes[0]
    assert db.customers.find_by_phone(ANA_PHONE) is None  # SQL and files were still erased
