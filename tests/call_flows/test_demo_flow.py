"""Scripted calls through the shipped demo flow, every path, in all three languages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from call_flows.actions import Enqueue, Hangup, Record
from call_flows.registry import FlowRegistry
from call_flows.testing import FlowHarness
from call_flows.validate import edges
from tests.call_flows.conftest import JOHN, LUCIA, MARTA
from tests.call_flows.demo_wording import CALLER, CHRISTMAS, KEY, LANGS, SUNDAY, T

Scenario = Callable[[FlowHarness, str], None]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def start(h: FlowHarness, lang: str, **kw: object) -> FlowHarness:
    """An unknown caller on the main line picks the language by keypad."""
    h.call(caller=str(kw.pop("caller", CALLER)), **kw)  # type: ignore[arg-type]
    assert h.node == "choose_language"
    h.press(KEY[lang])
    assert h.heard()[0] == T[lang]["welcome"]
    assert h.session is not None and h.session.language == lang
    return h


def to_menu(h: FlowHarness, lang: str, **kw: object) -> FlowHarness:
    start(h, lang, **kw)
    assert h.node == "ask_account"
    h.press("*")
    assert h.node == "main_menu"
    return h


def assert_queued(h: FlowHarness, lang: str, topic: str, priority: int = 0) -> None:
    q = h.enqueued
    assert isinstance(q, Enqueue), h.actions
    assert (q.queue, dict(q.skills), q.priority) == (
        "support", {"language": lang, "topic": topic}, priority)
    assert h.outcome == "queued" and not h.ended
    h.queue_left("bridged")  # the agent hung up first: the caller is offered the survey
    assert h.node == "survey" and not h.ended and h.heard() == [T[lang]["survey"]]
    h.press("2")
    assert h.ended and h.outcome == "queued" and h.heard() == [T[lang]["no_survey"]]
    assert isinstance(h.actions[-1], Hangup)


# --------------------------------------------------------------------------- scenarios


@scenario
def billing_by_keypad(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang)
    h.press("1")
    assert h.heard() == [T[lang]["billing"]]
    assert_queued(h, lang, "billing")


@scenario
def billing_by_voice_high_confidence(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).say(T[lang]["bill"], 0.92)
    assert h.heard() == [T[lang]["billing"]]
    assert_queued(h, lang, "billing")


@scenario
def billing_by_voice_confirmed(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).say(T[lang]["word_bill"], 0.6)
    assert h.node == "main_menu" and h.heard() == [T[lang]["heard"]]
    assert h.gather is not None and h.gather.num_digits == 1
    h.say(T[lang]["yes"], 0.8)
    assert h.heard() == [T[lang]["billing"]]


@scenario
def billing_by_voice_denied_then_keypad(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).say(T[lang]["word_bill"], 0.6).press("2")
    assert h.node == "main_menu" and h.heard() != [T[lang]["heard"]]
    h.press("1")
    assert h.heard() == [T[lang]["billing"]]


@scenario
def low_confidence_is_not_understood(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang)
    first = h.heard()
    h.say(T[lang]["word_bill"], 0.3)
    assert h.node == "main_menu" and h.heard() != first
    assert h.log[-1]["outcome"] == "no_match:1"


@scenario
def urgent_by_voice_raises_priority(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).say(T[lang]["urgent"], 0.95)
    assert_queued(h, lang, "incident", priority=1 + 3)


@scenario
def order_status_for_identified_caller(h: FlowHarness, lang: str) -> None:
    start(h, lang).press("123456")
    assert h.node == "confirm_account"
    h.say(T[lang]["yes"], 0.85)
    assert h.heard()[0] == T[lang]["hello"] and h.node == "main_menu"
    h.press("2")
    assert h.heard()[0] == T[lang]["order"] and h.node == "anything_else"
    h.press("2")
    assert h.heard() == [T[lang]["bye"], T[lang]["survey"]] and h.node == "survey"
    h.say(T[lang]["no"], 0.9)
    assert h.ended and h.outcome == "resolved_ivr" and h.last(Hangup) == Hangup()


@scenario
def order_status_unknown_goes_to_orders_team(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("2")
    assert h.node == "orders_queue"
    assert_queued(h, lang, "orders")


@scenario
def account_denied_then_not_found(h: FlowHarness, lang: str) -> None:
    start(h, lang).press("123456").press("2")
    assert h.node == "ask_account"
    h.press("999999").press("1")
    assert h.node == "main_menu" and len(h.heard()) == 2
    assert h.session is not None and h.session.customer is None


@scenario
def account_invalid_three_times(h: FlowHarness, lang: str) -> None:
    start(h, lang)
    first = h.heard()[-1]
    h.press("12")
    assert h.heard()[0] == T[lang]["invalid"] and h.heard()[1] != first
    assert h.gather is not None and h.gather.speech
    h.press("*#abc")
    assert h.gather is not None and not h.gather.speech  # keypad-only version
    h.silence()
    assert h.node == "main_menu"


@scenario
def account_by_voice_digits(h: FlowHarness, lang: str) -> None:
    words = {"es": "uno dos tres cuatro cinco seis", "ca": "u dos tres quatre cinc sis",
             "en": "one two three four five six"}[lang]
    start(h, lang).say(words, 0.9)
    assert h.node == "confirm_account" and "1 2 3 4 5 6" in h.heard_text()


@scenario
def confirm_account_fails_three_times(h: FlowHarness, lang: str) -> None:
    start(h, lang).press("123456").silence().say(T[lang]["unsure"], 0.9).press("7")
    assert h.node == "main_menu"


@scenario
def hours_then_more_then_password_then_done(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("3")
    assert h.heard()[0].startswith(T[lang]["hours"]) and h.node == "anything_else"
    h.say(T[lang]["yes"], 0.9)
    assert h.node == "main_menu"
    h.press("4")
    assert h.heard()[0].startswith(T[lang]["password"]) and h.node == "anything_else"
    assert h.session is not None and h.session.flow == "demo" and h.session.stack == ()
    h.say(T[lang]["no"], 0.9)
    assert h.node == "survey" and not h.ended
    h.silence().silence()  # no answer to the survey offer: asked again once, then goodbye
    assert h.ended and h.outcome == "resolved_ivr" and h.heard() == [T[lang]["no_survey"]]


@scenario
def survey_by_keypad_after_self_service(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("3").press("2").press("1")
    assert h.gather is not None and h.gather.num_digits == 1 and h.heard() == [T[lang]["csat"]]
    h.press("4")
    assert h.gather is not None and h.gather.num_digits == 2  # so that 10 can be keyed
    h.press("10")
    rec = h.last(Record)
    assert isinstance(rec, Record) and rec.purpose == "survey" and rec.max_length_s == 60
    h.record(seconds=8)
    assert h.ended and h.outcome == "resolved_ivr" and h.heard() == [T[lang]["thanks"]]
    answers = [r for r in h.log if r.get("kind") == "survey"]
    assert [(r.get("csat"), r.get("nps")) for r in answers] == [(4, None), (None, 10)]


@scenario
def survey_by_voice_after_an_agent(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("0").queue_left("bridged")
    h.say(T[lang]["yes"], 0.9).say(T[lang]["five"], 0.9).say(T[lang]["nine"], 0.85)
    assert h.last(Record) is not None
    h.silence()  # no comment
    assert h.ended and h.outcome == "queued" and h.heard() == [T[lang]["thanks"]]
    assert [(r.get("csat"), r.get("nps")) for r in h.log if r.get("kind") == "survey"] == [
        (5, None), (None, 9)]


@scenario
def survey_invalid_answers_end_politely(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("3").press("2").press("1")
    h.press("7")  # not 1-5: reprompted once
    assert h.node == "survey" and h.heard()[0] == T[lang]["reprompt"]
    assert h.heard()[1] == T[lang]["csat"]
    h.press("4").press("11#")  # CSAT kept; NPS out of range
    assert not h.ended and h.heard()[0] == T[lang]["reprompt"]
    h.say(T[lang]["unsure"], 0.9)  # still no number: goodbye, never a loop
    assert h.ended and h.heard() == [T[lang]["no_survey"]]
    assert [r.get("csat") for r in h.log if r.get("kind") == "survey"] == [4]


@scenario
def survey_nps_single_digit_with_hash(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("3").press("2").press("1").press("2").press("6#")
    assert [r.get("nps") for r in h.log if r.get("kind") == "survey" and "nps" in r] == [6]


@scenario
def anything_else_fails_to_agent(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("3").silence().silence().silence()
    assert h.node == "agent_queue" and h.heard() == [T[lang]["agent"]]


@scenario
def voicemail_from_menu(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("5")
    rec = h.last(Record)
    assert isinstance(rec, Record) and rec.purpose == "voicemail" and rec.max_length_s == 120
    h.record(seconds=20)
    assert h.ended and h.outcome == "voicemail" and isinstance(h.actions[-1], Hangup)


@scenario
def voicemail_left_empty(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("5").silence()
    assert h.ended and h.outcome == "hangup"


@scenario
def callback_on_caller_number(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang, caller="+34600111222").press("6")
    assert T[lang]["ending"] in h.heard_text()
    h.say(T[lang]["yes"], 0.9)
    cb = h.callback
    assert cb is not None and cb.number == "+34600111222"
    assert dict(cb.skills) == {"language": lang, "topic": "general"}
    assert h.ended and h.outcome == "callback"


@scenario
def callback_on_other_number(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("6").press("2")
    assert h.node == "request_callback"
    h.press("612345678#")
    assert h.callback is None and "6 1 2, 3 4, 5 6, 7 8" in h.heard_text()
    h.press("1")
    assert h.callback is not None and h.callback.number == "+34612345678"


@scenario
def callback_bad_numbers_go_to_voicemail(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("6").press("2").press("12").press("1").press("99")
    assert h.node == "leave_voicemail"


@scenario
def callback_confirmation_not_understood(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("6").silence().silence().silence()
    assert h.node == "leave_voicemail"


@scenario
def agent_then_queue_fails_to_voicemail(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang).press("0")
    assert h.heard() == [T[lang]["agent"]]
    h.queue_left("error")
    assert h.node == "leave_voicemail" and isinstance(h.last(Record), Record)


@scenario
def silence_three_times_reaches_a_person(h: FlowHarness, lang: str) -> None:
    to_menu(h, lang)
    prompts = [h.heard()]
    for _ in range(2):
        h.silence()
        prompts.append(h.heard())
    assert len({tuple(p) for p in prompts}) == 3  # three different wordings
    h.silence()
    assert h.node == "agent_queue"
    assert_queued(h, lang, "general")


@scenario
def known_caller_with_follow_up_yes(h: FlowHarness, lang: str) -> None:
    john = JOHN.__class__(**{**JOHN.__dict__, "language": lang})
    h.call(caller="+447700900123", customer=john)
    assert h.node == "follow_up_check" and T[lang]["followup"] in h.heard_text()
    h.press("1")
    assert_queued(h, lang, "follow_up", priority=2 + 5)  # follow-up + VIP


@scenario
def known_caller_with_follow_up_no(h: FlowHarness, lang: str) -> None:
    john = JOHN.__class__(**{**JOHN.__dict__, "language": lang})
    h.call(caller="+447700900123", customer=john).say(T[lang]["no"], 0.9)
    assert h.node == "main_menu"
    h.press("1")
    assert_queued(h, lang, "billing", priority=5)


@scenario
def follow_up_question_fails(h: FlowHarness, lang: str) -> None:
    john = JOHN.__class__(**{**JOHN.__dict__, "language": lang})
    h.call(caller="+447700900123", customer=john).silence().silence().silence()
    assert h.node == "main_menu"


@scenario
def closed_line_voicemail(h: FlowHarness, lang: str) -> None:
    start(h, lang, now=SUNDAY)
    assert h.node == "closed_menu" and h.heard()[1].startswith(T[lang]["closed"])
    h.press("1")
    assert h.node == "leave_voicemail"
    h.record()
    assert h.outcome == "voicemail"


@scenario
def closed_line_callback(h: FlowHarness, lang: str) -> None:
    start(h, lang, now=CHRISTMAS).press("2").press("1")
    assert h.callback is not None and h.outcome == "callback"


@scenario
def closed_line_silence_goes_to_voicemail(h: FlowHarness, lang: str) -> None:
    start(h, lang, now=SUNDAY).silence().silence().silence()
    assert h.node == "leave_voicemail"
    assert not any(isinstance(a, Enqueue) for s in h.steps for a in s.actions)


@scenario
def line_closes_while_in_the_menu(h: FlowHarness, lang: str) -> None:
    evening = datetime(2026, 11, 24, 16, 59, 50, tzinfo=UTC)  # 17:59:50 Madrid
    to_menu(h, lang, now=evening).press("0")
    assert h.node == "closed_menu" and h.enqueued is None


@scenario
def language_menu_fails_to_agent(h: FlowHarness, lang: str) -> None:
    h.call(caller=CALLER).silence().silence().silence()
    assert h.node == "agent_queue"
    assert [p.language for p in h.actions[0:3] for p in [p.prompt]] == ["es", "ca", "en"]


@scenario
def language_by_voice(h: FlowHarness, lang: str) -> None:
    h.call(caller=CALLER).say(T[lang]["lang"], 0.9)
    assert h.session is not None and h.session.language == lang
    assert h.heard()[0] == T[lang]["welcome"]


def _reach_queue(h: FlowHarness, lang: str, queue: str, **kw: object) -> None:
    """Walk to one of the five queues of the demo flow."""
    if queue == "follow_up_queue":
        john = JOHN.__class__(**{**JOHN.__dict__, "language": lang})
        h.call(caller="+447700900123", customer=john, **kw).press("1")  # type: ignore[arg-type]
        return
    to_menu(h, lang, **kw)
    if queue == "incident_queue":
        h.say(T[lang]["urgent"], 0.95)
    else:
        h.press({"billing_queue": "1", "orders_queue": "2", "agent_queue": "0"}[queue])


QUEUES = ["billing_queue", "orders_queue", "incident_queue", "follow_up_queue", "agent_queue"]


@scenario
def every_queue_falls_back_to_voicemail(h: FlowHarness, lang: str) -> None:
    for queue in QUEUES:
        _reach_queue(h, lang, queue)
        assert h.node == queue
        h.queue_left("error")
        assert h.node == "leave_voicemail", queue


@scenario
def pressing_one_on_hold_offers_a_callback(h: FlowHarness, lang: str) -> None:
    for queue in QUEUES:
        _reach_queue(h, lang, queue)
        assert h.node == queue
        h.queue_left("leave")
        assert h.node == "request_callback", queue


@scenario
def every_queue_checks_the_hours_again(h: FlowHarness, lang: str) -> None:
    for queue in QUEUES:
        # The harness adds 5 s per event: the queue is reached at 18:00:00 Madrid, closing.
        ticks = 1 if queue == "follow_up_queue" else 3
        evening = datetime(2026, 11, 24, 17, 0, tzinfo=UTC) - timedelta(seconds=5 * ticks)
        _reach_queue(h, lang, queue, now=evening)
        assert h.node == "closed_menu" and h.enqueued is None, queue
        assert h.log[-2] == {"node": queue, "type": "queue", "input": None, "outcome": "closed"}


ALL = sorted(SCENARIOS)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", ALL)
def test_scenario(harness: FlowHarness, name: str, lang: str) -> None:
    SCENARIOS[name](harness, lang)


def _covered(h: FlowHarness) -> set[tuple[str, str]]:
    labels = {"said": "next", "answered": "next", "found": "found", "not_found": "not_found",
              "yes": "yes", "no": "no", "else": "else", "missing": "missing",
              "closed": "closed", "failed": "fail", "left_for_callback": "leave",
              "done": "after"}
    out: set[tuple[str, str]] = set()
    for rec in h.journal:
        node, outcome = str(rec["node"]), str(rec["outcome"])
        if outcome.startswith(("option:", "case:")):
            out.add((node, "skip" if outcome == "option:skip" else outcome))
        elif outcome.endswith(":3"):
            out.add((node, "fail"))
        elif outcome.startswith("return:"):
            out.add(("password_help", "return"))
        elif outcome in labels:
            out.add((node, labels[outcome]))
    return out


@pytest.mark.parametrize("lang", LANGS)
def test_the_scenarios_take_every_edge_of_the_demo_flow(registry: FlowRegistry,
                                                        lang: str) -> None:
    covered: set[tuple[str, str]] = set()
    for name in ALL:
        h = FlowHarness(registry, customers=[MARTA, JOHN, LUCIA])
        SCENARIOS[name](h, lang)
        covered |= _covered(h)
    wanted = set()
    for flow_id in ("demo", "password_help"):
        flow = registry.current(flow_id)
        for node in flow.nodes.values():
            wanted |= {(node.id, label) for label, _ in edges(flow, node)}
    # In one language's walk the caller picks that language only.
    wanted -= {("choose_language", f"option:{other}") for other in LANGS if other != lang}
    assert wanted - covered == set()
