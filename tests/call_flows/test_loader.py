"""Flow files: every kind of mistake is refused with the line of the offending key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from call_flows.loader import check_paths, load_flow_file, load_flow_text
from call_flows.model import FlowError, NodeType
from ivr.cli import cli

HEAD = """\
flow: t
version: "1"
languages: [es, en]
start: menu
human: agent
nodes:
"""
AGENT = """\
  agent:
    type: queue
    topic: general
"""
MENU = """\
  menu:
    type: menu
    prompt: {es: "Pulse 1.", en: "Press 1."}
    options:
      one: {key: 1, say: {es: [uno], en: [one]}, next: agent}
"""


def problems_of(text: str) -> list[tuple[int, str]]:
    with pytest.raises(FlowError) as info:
        load_flow_text(textwrap.dedent(text), "t.yaml")
    assert all(p.file == "t.yaml" for p in info.value.problems)
    return [(p.line, p.message) for p in info.value.problems]


def test_a_valid_flow_loads_into_frozen_dataclasses() -> None:
    flow = load_flow_text(HEAD + MENU + AGENT, "t.yaml")
    assert flow.id == "t" and flow.version == "1" and flow.languages == ("es", "en")
    menu = flow.nodes["menu"]
    assert menu.type is NodeType.MENU and menu.line == 7
    assert menu.options[0].key == "1" and menu.options[0].phrases["en"] == ("one",)
    with pytest.raises(AttributeError):
        menu.id = "other"  # type: ignore[misc]


def test_unknown_node_type_points_at_the_type_key() -> None:
    text = HEAD + MENU + AGENT + "  odd:\n    type: dance\n"
    [(line, message)] = problems_of(text)
    assert line == 16 and "unknown node type 'dance'" in message


def test_unknown_key_points_at_that_key() -> None:
    text = HEAD + MENU + AGENT + "    colour: blue\n"
    [(line, message)] = problems_of(text)
    assert line == 15 and "unknown key 'colour' for a queue node" in message


def test_reference_to_a_missing_node_points_at_the_reference() -> None:
    text = HEAD + MENU.replace("next: agent", "next: nowhere") + AGENT
    found = problems_of(text)
    assert (11, "node 'menu': option 'one': no node named 'nowhere'") in found


def test_unreachable_node_points_at_its_id() -> None:
    text = HEAD + MENU + AGENT + "  lost:\n    type: hangup\n"
    assert problems_of(text) == [(15, "node 'lost' is unreachable from start")]


def test_missing_translation_points_at_the_prompt_key() -> None:
    text = HEAD + MENU.replace(', en: "Press 1."', "") + AGENT
    assert problems_of(text) == [(9, "node 'menu': prompt: missing translation for 'en'")]


def test_missing_phrases_for_a_language_are_reported() -> None:
    text = HEAD + MENU.replace(", en: [one]", "") + AGENT
    [(line, message)] = problems_of(text)
    assert line == 11 and "has no phrases for 'en'" in message


def test_undeclared_language_is_reported() -> None:
    text = HEAD + MENU.replace('en: "Press 1."', 'en: "Press 1.", fr: "Appuyez"') + AGENT
    [(line, message)] = problems_of(text)
    assert line == 9 and "language 'fr' is not declared" in message


def test_loop_that_never_waits_is_refused() -> None:
    text = HEAD.replace("start: menu", "start: a") + textwrap.dedent("""\
      a:
        type: say
        prompt: {es: "Hola", en: "Hello"}
        next: b
      b:
        type: branch
        cases:
          - if: {vars: {x: "1"}}
            next: agent
        else: a
    """).replace("\n", "\n  ").rstrip(" ") .replace("a:\n", "  a:\n", 1) + AGENT
    found = problems_of(text)
    assert any(line == 7 and "loop without input: a -> b -> a" in m for line, m in found), found


def test_loop_without_exit_is_refused() -> None:
    text = HEAD.replace("human: agent\n", "") + textwrap.indent(textwrap.dedent("""\
    menu:
      type: menu
      prompt: {es: "Uno o dos", en: "One or two"}
      options:
        one: {key: 1, next: other}
      on_fail: other
    other:
      type: confirm
      prompt: {es: "¿Seguro?", en: "Sure?"}
      yes: menu
      no: menu
      on_fail: menu
    """), "  ")
    found = problems_of(text)
    assert found == [(6, "loop without exit: menu, other never lead out of the loop")]


def test_failure_route_back_to_the_same_node_is_refused() -> None:
    text = HEAD + MENU + "    on_fail: menu\n" + AGENT
    found = problems_of(text)
    assert any(line == 7 and "failure route leads back to itself" in m for line, m in found)


def test_input_node_without_any_failure_route_is_refused() -> None:
    text = HEAD.replace("human: agent\n", "") + MENU + AGENT
    found = problems_of(text)
    assert found == [(6, ("node 'menu' has no on_fail and the flow has no 'human' route: "
                          "a caller who fails three times would have nowhere to go"))]


@pytest.mark.parametrize("validate, expected", [
    ("{regex: '[0-9'}", "bad regex"),
    ("{length: [8, 4]}", "length must be N or [MIN, MAX]"),
    ("{luhn: maybe}", "luhn must be true or false"),
    ("{exists: card}", "exists must be 'account'"),
    ("{shape: round}", "unknown validator 'shape'"),
])
def test_bad_validators_point_at_the_validator(validate: str, expected: str) -> None:
    ask = textwrap.indent(textwrap.dedent(f"""\
    menu:
      type: ask
      var: account
      prompt: {{es: "Número", en: "Number"}}
      validate: {validate}
      next: agent
    """), "  ")
    found = problems_of(HEAD + ask + AGENT)
    assert len(found) == 1 and found[0][0] == 11 and expected in found[0][1], found


def test_duplicate_keys_are_reported_not_overwritten() -> None:
    text = HEAD + MENU + AGENT + "    topic: billing\n"
    assert problems_of(text) == [(15, "duplicate key 'topic'")]


def test_unknown_placeholder_is_reported() -> None:
    text = HEAD + MENU.replace('"Press 1."', '"Hi {customer.password}"') + AGENT
    [(line, message)] = problems_of(text)
    assert line == 9 and "unknown placeholder '{customer.password}'" in message


def test_bad_condition_is_reported() -> None:
    text = HEAD.replace("start: menu", "start: b") + textwrap.indent(textwrap.dedent("""\
    b:
      type: branch
      cases:
        - if: {moon_phase: full}
          next: menu
      else: menu
    """), "  ") + MENU + AGENT
    [(line, message)] = problems_of(text)
    assert line == 10 and "unknown condition 'moon_phase'" in message


def test_yaml_syntax_errors_have_a_line() -> None:
    [(line, message)] = problems_of(HEAD + "  menu: [unclosed\n  x: 1\n")
    assert line >= 7 and message.startswith("not valid YAML")


def test_python_tags_are_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = HEAD + f"  x: !!python/object/apply:os.system ['touch {marker}']\n"
    [(_, message)] = problems_of(text)
    assert "not valid YAML" in message and not marker.exists()


def test_yes_and_no_are_keys_not_booleans() -> None:
    text = HEAD + textwrap.indent(textwrap.dedent("""\
    menu:
      type: confirm
      prompt: {es: "¿Sí?", en: "Yes?"}
      yes: agent
      no: agent
    """), "  ") + AGENT
    flow = load_flow_text(text, "t.yaml")
    assert flow.nodes["menu"].yes == "agent" and flow.nodes["menu"].no == "agent"


def test_every_problem_is_reported_at_once() -> None:
    text = HEAD + MENU.replace("next: agent", "next: void") + AGENT + \
        "    colour: red\n  odd:\n    type: dance\n"
    lines = [line for line, _ in problems_of(text)]
    assert lines == [11, 15, 17]


def test_load_flow_file_reads_utf8_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(HEAD + MENU + AGENT + "  lost:\n    type: hangup\n", encoding="utf-8")
    with pytest.raises(FlowError) as info:
        load_flow_file(path)
    assert str(info.value) == f"{path}:15: node 'lost' is unreachable from start"


# --------------------------------------------------------------------------- several files

GOTO_FLOW = """\
flow: main
version: "1"
languages: [es]
start: jump
nodes:
  jump:
    type: goto
    flow: helper
    return: bye
  bye:
    type: hangup
"""
HELPER = """\
flow: helper
version: "1"
languages: [es]
start: hi
nodes:
  hi:
    type: say
    prompt: "Hola"
    next: back
  back:
    type: return
"""


def test_goto_to_a_flow_that_is_not_loaded_is_reported(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text(GOTO_FLOW)
    found = check_paths([tmp_path])
    assert [str(p) for p in found] == [f"{tmp_path / 'main.yaml'}:8: goto: no flow named 'helper'"]
    (tmp_path / "helper.yaml").write_text(HELPER)
    assert check_paths([tmp_path]) == []


def test_lines_file_problems(tmp_path: Path) -> None:
    (tmp_path / "helper.yaml").write_text(HELPER)
    (tmp_path / "lines.yaml").write_text(textwrap.dedent("""\
    lines:
      main:
        numbers: ["+34930001000", "not a number"]
        flow: nowhere
        timezone: Mars/Olympus
        hours:
          mon-fri: "18:00-09:00"
          funday: "10:00-11:00"
    """))
    found = [(p.line, p.message) for p in check_paths([tmp_path])]
    assert found == [
        (3, "line 'main': 'not a number' is not a phone number (use E.164: +34...)"),
        (4, "line 'main': no flow named 'nowhere'"),
        (5, "line 'main': unknown time zone 'Mars/Olympus' (use names like Europe/Madrid)"),
        (7, ("line 'main': hours: '18:00-09:00' is not a range such as 09:00-18:00 "
             "(end after start)")),
        (8, ("line 'main': hours: 'funday' is not a day or range of days "
             "(mon, tue, ..., sun; mon-fri)")),
    ]


# --------------------------------------------------------------------------- the command


def test_ivr_flows_check_accepts_the_shipped_flows() -> None:
    result = CliRunner().invoke(cli, ["flows", "check"])
    assert result.exit_code == 0, result.output
    assert result.output == "2 flows OK\n"


def test_ivr_flows_check_prints_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + MENU.replace("next: agent", "next: void") + AGENT + "  odd:\n"
                   "    type: dance\n")
    result = CliRunner().invoke(cli, ["flows", "check", str(bad)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{bad}:11: node 'menu': option 'one': no node named 'void'",
        (f"{bad}:16: node 'odd': unknown node type 'dance' (use answer, ask, branch, callback, "
         "confirm, faq, goto, hangup, lookup, menu, play, queue, return, say, survey, transfer, "
         "voicemail)"),
    ]


def test_ivr_flows_check_reports_a_missing_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["flows", "check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert result.output == f"{tmp_path / 'nope.yaml'}:1: no such file or directory\n"
