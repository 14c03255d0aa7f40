"""`ivr customers import|export|erase` and `ivr users add` on the server's own state."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from ivr.cli import cli
from ivr.embedded import EmbeddedRedis
from recordings.store import Database

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SID = "CA" + "e" * 32
CSV = """name,phone,email,language,order_status
Ana García Vidal,+34 600 11 22 33,ana.garcia@example.com,es,enviado
Pere Vidal,0034 611 22 33 44,pere@example.org,ca,
Nobody,(555) 123-4567,nobody@example.com,en,
"""


@pytest.fixture()
def env(data_dir: Path, redis_url: str) -> dict[str, str | None]:
    return {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": redis_url, "DATABASE_URL": None}


def run(env: dict[str, str | None], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_import_prints_a_summary_and_bad_lines(env: dict, data_dir: Path) -> None:
    path = data_dir / "people.csv"
    path.write_text(CSV)
    code, out, _ = run(env, "customers", "import", str(path))
    assert code == 0
    assert "4 rows" not in out and "3 rows, 2 created, 0 updated, 1 skipped" in out
    assert f"{path}:4: skipped: phone:" in out
    db = Database(f"sqlite:///{data_dir / 'centralita.db'}")
    assert db.customers.find_by_phone("+34611223344") is not None
    db.dispose()


def test_import_of_nothing_fails(env: dict, data_dir: Path) -> None:
    path = data_dir / "bad.csv"
    path.write_text("name,phone,email,language\nNobody,123,x@example.com,es\n")
    code, _, err = run(env, "customers", "import", str(path))
    assert code == 1 and "no customer could be imported" in err
    path.write_text("name,phone\nAna,600112233\n")
    code, _, err = run(env, "customers", "import", str(path))
    assert code == 1 and "lacks the column(s) email, language" in err
    code, _, err = run(env, "customers", "import", str(data_dir / "missing.csv"))
    assert code == 1 and "no such file" in err


def test_export_prints_one_json_document(env: dict, data_dir: Path) -> None:
    (data_dir / "people.csv").write_text(CSV)
    run(env, "customers", "import", str(data_dir / "people.csv"))
    code, out, _ = run(env, "customers", "export", "1")
    assert code == 0
    document = json.loads(out)
    assert document["customer"]["phone"] == "+34600112233"
    assert document["customer"]["fields"] == {"order_status": "enviado"}
    assert document["calls"] == [] and document["follow_ups"] == []
    code, _, err = run(env, "customers", "export", "77")
    assert code == 1 and "no customer with id 77" in err


def test_users_add_prints_a_working_token(env: dict, data_dir: Path) -> None:
    code, out, err = run(env, "users", "add", "maria", "--role", "supervisor",
                         "--password-stdin", stdin="long enough pw\n")
    assert code == 0 and "shown once" in err
    token = out.strip()
    db = Database(f"sqlite:///{data_dir / 'centralita.db'}")
    user = db.users.find_by_token(token)
    assert user is not None and (user.name, user.role) == ("maria", "supervisor")
    assert db.users.verify_password("maria", "long enough pw") is not None
    db.dispose()
    code, _, err = run(env, "users", "add", "maria", "--role", "agent")
    assert code == 1 and "exists already" in err
    code, _, err = run(env, "users", "add", "x", "--role", "boss")
    assert code == 2 and "boss" in err


def test_erase_needs_exactly_one_target(env: dict) -> None:
    assert run(env, "customers", "erase")[0] == 2
    assert run(env, "customers", "erase", "1", "--phone", "+34600112233")[0] == 2
    code, _, err = run(env, "customers", "erase", "--phone", "+34600112233")
    assert code == 1 and "nobody with phone +34600112233" in err


@pytest.fixture()
def embedded(data_dir: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(data_dir)
    server.start()
    yield server
    server.stop()


def test_erase_with_the_embedded_redis_leaves_no_trace_under_the_data_dir(
        data_dir: Path, embedded: EmbeddedRedis) -> None:
    """The deployment default: SQLite and an AOF Redis both under IVR_DATA_DIR."""
    env = {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": None, "DATABASE_URL": None}
    (data_dir / "people.csv").write_text(CSV)
    run(env, "customers", "import", str(data_dir / "people.csv"))
    db = Database(f"sqlite:///{data_dir / 'centralita.db'}")
    db.calls.record_start(SID, from_number="+34600112233", to_number="+34910000000",
                          started_at=NOW)
    db.calls.add_events(SID, [{"seq": 1, "at": NOW, "kind": "start",
                               "data": {"caller": "+34600112233"}}])
    db.dispose()
    client = redis.Redis.from_url(embedded.url)
    client.hset(f"ivr:call:{SID}", "session", json.dumps({"caller": "+34600112233"}))
    client.sadd("ivr:phone:+34600112233", SID)
    client.xadd("ivr:events", {"sid": SID, "data": "{}"})
    needles = [b"+34600112233", b"34600112233", b"ana.garcia@example.com",
               "Ana García Vidal".encode(), SID.encode()]
    aof = embedded.dir / "appendonlydir"
    deadline = time.monotonic() + 10  # the AOF is written within a second
    while not any(SID.encode() in p.read_bytes() for p in aof.iterdir()):
        assert time.monotonic() < deadline, "the AOF never received the writes"
        time.sleep(0.05)

    code, out, _ = run(env, "customers", "erase", "--phone", "600 11 22 33")

    assert code == 0, out
    assert "erased customer 1 (1 calls)" in out
    assert "sql: call_events: 1" in out and "AOF rewritten" in out
    assert "verification: no trace left" in out
    assert client.keys("*") == [b"ivr:events"] and client.xlen("ivr:events") == 0
    client.close()
    traces = [f"{p}: {n!r}" for p in data_dir.rglob("*") if p.is_file()
              for n in needles if n in p.read_bytes()]
    assert traces == []
    code, out, _ = run(env, "customers", "export", "2")
    assert code == 0 and json.loads(out)["customer"]["name"] == "Pere Vidal"
