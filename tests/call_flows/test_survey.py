"""The survey node: checked like every node (FILE:LINE), and walked by the engine.

The demo flow's surveys are walked in every language in ``test_demo_flow.py``; here a
small flow pins the rules: consent first, CSAT 1-5, NPS 0-10 (10 by keypad), an
optional comment, one reprompt then a polite goodbye, answers logged as ``survey``
events shaped the way ``recordings.kpi_source`` reads them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from call_flows.actions import Gather, Hangup, Record
from call_flows.loader import load_flow_text
from call_flows.model import FlowError, NodeType
from call_flows.registry import FlowRegistry
from call_flows.testing import FlowHarness

Make = Callable[..., FlowRegistry]

FLOW = """\
flow: s
version: "1"
languages: [es, en]
start: hello
nodes:
  hello:
    type: say
    prompt: {es: "Hola.", en: "Hello."}
    next: rate
  rate:
    type: survey
    prompt: {es: "¿Dos preguntas? Pulse 1 o 2.", en: "Two questions? Press 1 or 2."}
    csat: {es: "Del 1 al 5.", en: "From 1 to 5."}
    nps: {es: "Del 0 al 10.", en: "From 0 to 10."}
    reprompt: {es: "No le he entendido.", en: "Sorry?"}
    thanks: {es: "Gracias.", en: "Thanks."}
    goodbye: {es: "Adiós.", en: "Goodbye."}
"""


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(FlowError) as info:
        load_flow_text(textwrap.dedent(text), "s.yaml")
    return [(p.line, p.message) for p in info.value.problems]


def test_a_survey_node_loads() -> None:
    node = load_flow_text(FLOW, "s.yaml").nodes["rate"]
    assert node.type is NodeType.SURVEY and node.csat and node.nps and node.comment is None
    assert node.max_length_s == 60


def test_a_survey_without_questions_is_refused_at_its_line() -> None:
    text = FLOW.replace('    csat: {es: "Del 1 al 5.", en: "From 1 to 5."}\n', "").replace(
        '    nps: {es: "Del 0 al 10.", en: "From 0 to 10."}\n', "")
    assert problems(text) == [(10, ("node 'rate': a survey node asks 'csat' (1-5), 'nps' "
                                  "(0-10) or both"))]


def test_survey_mistakes_point_at_their_keys() -> None:
    text = FLOW.replace('    thanks: {es: "Gracias.", en: "Thanks."}\n', "").replace(
        '    nps: {es: "Del 0 al 10.", en: "From 0 to 10."}',
        '    nps: {es: "Del 0 al 10."}\n    options: {}\n    max_length: -1')
    found = problems(text)
    assert (10, "node 'rate': a survey node needs 'thanks'") in found
    assert (14, "node 'rate': nps: missing translation for 'en'") in found
    assert (15, "node 'rate': unknown key 'options' for a survey node") in found
    assert (16, "node 'rate': max_length must be a whole number >= 1") in found


def test_after_must_name_a_node() -> None:
    text = FLOW + "  q:\n    type: queue\n    after: nowhere\n"
    assert (20, "node 'q': after: no node named 'nowhere'") in problems(text)


def test_full_survey_by_keypad_logs_kpi_shaped_events(make_registry: Make) -> None:
    h = FlowHarness(make_registry(FLOW, languages="[es, en]")).call()
    assert h.heard() == ["Hola.", "¿Dos preguntas? Pulse 1 o 2."]
    h.press("1")
    assert isinstance(h.gather, Gather) and h.gather.num_digits == 1
    h.press("5")
    assert isinstance(h.gather, Gather) and h.gather.num_digits == 2
    h.press("10")
    assert h.ended and h.heard() == ["Gracias."] and isinstance(h.actions[-1], Hangup)
    survey = [r for r in h.log if r.get("kind") == "survey"]
    assert survey == [
        {"node": "rate", "type": "survey", "input": "dtmf:5", "outcome": "csat:5",
         "kind": "survey", "csat": 5},
        {"node": "rate", "type": "survey", "input": "dtmf:10", "outcome": "nps:10",
         "kind": "survey", "nps": 10}]


def test_spoken_numbers_in_english(make_registry: Make) -> None:
    h = FlowHarness(make_registry(FLOW, language="en", languages="[es, en]")).call()
    h.say("yes", 0.9).say("three", 0.9).say("ten", 0.9)
    assert [r.get("csat", r.get("nps")) for r in h.log if r.get("kind") == "survey"] == [3, 10]


def test_low_confidence_speech_is_not_taken_as_a_score(make_registry: Make) -> None:
    h = FlowHarness(make_registry(FLOW, languages="[es, en]")).call().press("1")
    h.say("cinco", 0.2)
    assert h.heard() == ["No le he entendido.", "Del 1 al 5."]
    assert not [r for r in h.log if r.get("kind") == "survey"]


def test_declined_survey_says_goodbye_and_logs_no_answer(make_registry: Make) -> None:
    h = FlowHarness(make_registry(FLOW, languages="[es, en]")).call().press("2")
    assert h.ended and h.heard() == ["Adiós."]
    assert h.log[-1]["outcome"] == "declined"


@pytest.mark.parametrize("inputs", [["", ""], ["9", "*"], ["", "9"]])
def test_no_or_bad_answers_get_one_reprompt_then_goodbye(make_registry: Make,
                                                         inputs: list[str]) -> None:
    h = FlowHarness(make_registry(FLOW, languages="[es, en]")).call()
    for i, key in enumerate(inputs):
        h.silence() if not key else h.press(key)
        if i == 0:
            assert not h.ended and h.heard()[0] == "No le he entendido."
    assert h.ended and h.heard() == ["Adiós."]
    outcomes = [r["outcome"] for r in h.log if r["node"] == "rate"]
    assert outcomes[-1].endswith(":2")


def test_optional_comment_is_recorded_for_transcription(make_registry: Make) -> None:
    text = FLOW.replace('    reprompt:', '    comment: {es: "Deje un comentario.", '
                                         'en: "Leave a comment."}\n    max_length: 30\n'
                                         '    reprompt:')
    h = FlowHarness(make_registry(text, languages="[es, en]")).call()
    h.press("1").press("4").press("8#")
    rec = h.last(Record)
    assert isinstance(rec, Record) and rec.purpose == "survey" and rec.max_length_s == 30
    assert h.heard() == ["Deje un comentario."]
    h.record(seconds=9)
    assert h.ended and h.heard() == ["Gracias."] and h.log[-1]["outcome"] == "comment"


def test_queue_after_sends_a_bridged_caller_to_the_survey(make_registry: Make) -> None:
    text = FLOW.replace("    next: rate\n", "    next: line\n") + (
        "  line:\n    type: queue\n    topic: general\n    after: rate\n    on_fail: rate\n")
    registry = make_registry(text, languages="[es, en]")
    h = FlowHarness(registry).call()
    assert h.enqueued is not None
    h.queue_left("bridged")
    assert h.node == "rate" and not h.ended and h.outcome == "queued"
    h = FlowHarness(registry).call()
    h.queue_left("redirected")  # taken out of the queue by REST to <Dial> the agent
    assert h.node == "line" and not h.ended and h.enqueued is None
    h.dial_done("completed")  # the agent's <Dial> ended: the agent hung up first
    assert h.node == "rate" and h.outcome == "queued"
    h = FlowHarness(registry).call()
    h.queue_left("hangup")  # the caller hung up while bridged: nobody to ask
    assert h.ended and h.node == "line"
