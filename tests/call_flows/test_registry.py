"""Lines, hours and flow versions: calls in progress finish on the version they began."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from call_flows.actions import CallStarted, Digits
from call_flows.engine import Engine
from call_flows.hours import BusinessHours
from call_flows.model import FlowError, UnknownFlow
from call_flows.registry import FlowRegistry

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
FLOW = """\
flow: v
version: "{version}"
languages: [es]
start: menu
human: people
nodes:
  menu:
    type: menu
    prompt: "{words}"
    options:
      one: {{key: 1, next: people}}
  people:
    type: queue
    prompt: "Cola {version}."
"""
LINES = """\
lines:
  main:
    default: true
    numbers: ["+34930000000"]
    flow: v
    languages: [es]
    timezone: Europe/Madrid
  other:
    numbers: ["+34 931 11 22 33"]
    flow: v
    languages: [es]
"""


def write(tmp_path: Path, version: str, words: str = "Pulse 1.") -> None:
    (tmp_path / "v.yaml").write_text(FLOW.format(version=version, words=words))
    (tmp_path / "lines.yaml").write_text(LINES)


def test_reload_changes_new_calls_only(tmp_path: Path) -> None:
    write(tmp_path, "1")
    reg = FlowRegistry.load(tmp_path)
    engine = Engine(reg)
    old_call = engine.start(CallStarted("CA1", "+34600000000", "+34930000000", NOW))
    write(tmp_path, "2", "Nueva versión: pulse 1.")
    assert reg.reload() == ["v"]
    new_call = engine.start(CallStarted("CA2", "+34600000000", "+34930000000", NOW))
    assert new_call.session.flow_version == "2"
    assert new_call.actions[0].prompts[0].text == "Nueva versión: pulse 1."  # type: ignore
    finished = engine.step(old_call.session, Digits("1", NOW))
    assert finished.session.flow_version == "1"
    assert finished.actions[0].prompt.text == "Cola 1."  # type: ignore[union-attr]
    assert sorted(reg.versions("v")) == ["1", "2"] and reg.reload() == []


def test_an_edit_without_a_version_bump_gets_its_own_version(tmp_path: Path) -> None:
    write(tmp_path, "1")
    reg = FlowRegistry.load(tmp_path)
    write(tmp_path, "1", "Cambiado sin subir la versión.")
    reg.reload()
    current = reg.current("v")
    assert current.version.startswith("1~") and len(current.version) == 10
    assert reg.get("v", "1") is not None and reg.get("v", "1") != current


def test_an_invalid_reload_keeps_the_flows_that_work(tmp_path: Path) -> None:
    write(tmp_path, "1")
    reg = FlowRegistry.load(tmp_path)
    (tmp_path / "v.yaml").write_text(FLOW.format(version="2", words="x") + "  junk: {}\n")
    with pytest.raises(FlowError) as info:
        reg.reload()
    assert f"{tmp_path / 'v.yaml'}:15: node 'junk' has no type" in str(info.value)
    assert reg.current("v").version == "1"


def test_add_version_text_restores_a_version_from_elsewhere(tmp_path: Path) -> None:
    write(tmp_path, "3")
    reg = FlowRegistry.load(tmp_path)
    flow = reg.add_version_text("v", "0.9", FLOW.format(version="0.9", words="Antigua."))
    assert reg.get("v", "0.9") == flow and reg.current("v").version == "3"
    with pytest.raises(FlowError):
        reg.add_version_text("other", "1", FLOW.format(version="1", words="x"))
    with pytest.raises(UnknownFlow):
        reg.current("nope")


def test_lines_are_found_by_number_in_any_format(tmp_path: Path) -> None:
    write(tmp_path, "1")
    reg = FlowRegistry.load(tmp_path)
    assert reg.line_for("+34931112233").name == "other"
    assert reg.line_for("931 11 22 33").name == "other"
    assert reg.line_for("+34930000000").name == "main"
    assert reg.line_for("client:alice").name == "main"
    assert reg.line_for("").name == "main"


def test_start_up_refuses_a_directory_without_lines(tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text(FLOW.format(version="1", words="x"))
    with pytest.raises(FlowError) as info:
        FlowRegistry.load(tmp_path)
    assert str(info.value) == (f"{tmp_path / 'lines.yaml'}:1: missing: lines.yaml says "
                               "which flow answers which number")


def test_two_default_lines_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "1")
    (tmp_path / "lines.yaml").write_text(LINES.replace("  other:\n", "  other:\n    default: true\n"))
    with pytest.raises(FlowError, match="exactly one line must say 'default: true'"):
        FlowRegistry.load(tmp_path)


# --------------------------------------------------------------------------- business hours


def madrid(hours: str, holidays: str = "[]") -> BusinessHours:
    from call_flows.hours import parse_line
    from call_flows.loader import load_marked

    data, _ = load_marked(textwrap.dedent(f"""\
    flow: v
    timezone: Europe/Madrid
    hours: {hours}
    holidays: {holidays}
    """))
    problems: list = []
    line = parse_line("t", data, "lines.yaml", 1, problems)
    assert problems == [] and line is not None
    return line.hours


def test_hours_follow_the_line_time_zone_across_daylight_saving() -> None:
    hours = madrid('{mon-fri: "09:00-14:00, 15:00-18:00"}')
    summer_open = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # 09:00 CEST, Wednesday
    winter_closed = datetime(2026, 1, 7, 7, 0, tzinfo=UTC)  # 08:00 CET
    assert hours.is_open(summer_open) and not hours.is_open(winter_closed)
    lunch = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)  # 14:30 CEST
    assert not hours.is_open(lunch)
    assert not hours.is_open(datetime(2026, 7, 4, 10, 0, tzinfo=UTC))  # Saturday


def test_holidays_close_the_line_all_day() -> None:
    hours = madrid('{mon-sun: "00:00-24:00"}', "[2026-12-25]")
    assert hours.holidays == frozenset({date(2026, 12, 25)})
    assert not hours.is_open(datetime(2026, 12, 25, 12, 0, tzinfo=UTC))
    assert hours.is_open(datetime(2026, 12, 24, 22, 30, tzinfo=UTC))  # 23:30 on 24th
    assert not hours.is_open(datetime(2026, 12, 24, 23, 30, tzinfo=UTC))  # 00:30 25th
