"""The engine on small flows: retries, confidence, validators, hand-overs, sub-flows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from call_flows.actions import (
    CallStarted,
    CustomerInfo,
    Dial,
    Digits,
    Enqueue,
    Gather,
    Hangup,
    LookupCustomer,
    Say,
    Speech,
)
from call_flows.engine import Engine
from call_flows.registry import FlowRegistry
from call_flows.session import Session
from call_flows.testing import FlowHarness

Make = Callable[..., FlowRegistry]
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

MENU_FLOW = """\
flow: small
version: "1"
languages: [es]
start: menu
human: people
{extra_top}
nodes:
  menu:
    type: menu
    prompt: "Diga factura o pulse 1."
    reprompt: "Perdone. Para facturas, pulse 1."
    keypad_prompt: "Pulse 1 para facturas."
    {extra_menu}
    options:
      bill: {{key: 1, say: [factura], next: billing, set: {{topic: billing}}}}
  billing:
    type: queue
    topic: billing
    prompt: "Facturación."
  people:
    type: queue
    prompt: "Le paso con una persona."
"""


def menu_flow(extra_top: str = "", extra_menu: str = "") -> str:
    return MENU_FLOW.format(extra_top=extra_top, extra_menu=extra_menu)


def test_failures_reprompt_differently_then_keypad_only_then_a_person(make_registry: Make
                                                                      ) -> None:
    h = FlowHarness(make_registry(menu_flow())).call()
    first = h.gather
    assert isinstance(first, Gather) and first.speech and first.hints == ("factura",)
    h.silence()
    assert h.heard() == ["Perdone. Para facturas, pulse 1."] and h.gather.speech  # type: ignore
    h.say("el tiempo mañana", 0.95)
    assert h.heard() == ["Pulse 1 para facturas."]
    assert h.gather is not None and not h.gather.speech and h.gather.dtmf
    h.press("9")
    assert h.node == "people" and h.heard() == ["Le paso con una persona."]
    assert [r["outcome"] for r in h.log[-4:-1]] == ["no_input:1", "no_match:2", "no_match:3"]


def test_without_a_node_reprompt_the_flow_messages_are_used(make_registry: Make) -> None:
    text = menu_flow().replace('    reprompt: "Perdone. Para facturas, pulse 1."\n', "")
    text = text.replace('    keypad_prompt: "Pulse 1 para facturas."\n', "")
    h = FlowHarness(make_registry(text)).call().silence()
    assert h.heard() == ["Perdone, no le he entendido.", "Diga factura o pulse 1."]
    h.silence()
    assert h.heard() == ["Por favor, utilice el teclado del teléfono.", "Diga factura o pulse 1."]


def test_confidence_bands_are_configurable_per_flow(make_registry: Make) -> None:
    reg = make_registry(menu_flow(extra_top="confidence: {high: 0.9, low: 0.2}"))
    h = FlowHarness(reg)
    assert h.call().say("factura", 0.95).node == "billing"
    assert h.call().say("factura", 0.5).heard() == [
        "Ha dicho factura. ¿Es correcto? Pulse 1 o diga sí; pulse 2 o diga no."]
    assert h.call().say("factura", 0.1).heard() == ["Perdone. Para facturas, pulse 1."]


def test_speech_without_a_confidence_is_confirmed_before_acting(make_registry: Make) -> None:
    h = FlowHarness(make_registry(menu_flow())).call().say("factura", 0.0)
    assert h.node == "menu" and h.heard()[0].startswith("Ha dicho factura.")
    assert h.say("sí", 0.0).node == "billing"


def test_confirm_always_and_never(make_registry: Make) -> None:
    always = FlowHarness(make_registry(menu_flow(extra_menu="confirm: always")))
    assert always.call().say("factura", 0.99).node == "menu"
    assert always.say("sí", 0.9).node == "billing"
    never = FlowHarness(make_registry(menu_flow(extra_menu="confirm: never")))
    assert never.call().say("factura", 0.5).node == "billing"


def test_queue_priority_adds_vip_and_urgency(make_registry: Make) -> None:
    text = menu_flow().replace("set: {topic: billing}", "set: {topic: billing, urgency: 2}")
    vip = CustomerInfo(id="1", name="Ana", vip=True)
    h = FlowHarness(make_registry(text)).call(customer=vip).press("1")
    assert h.enqueued == Enqueue(queue="general", skills={"language": "es", "topic": "billing"},
                                 priority=2 + 5)


ASK_FLOW = """\
flow: ask
version: "1"
languages: [es]
start: card
human: people
nodes:
  card:
    type: ask
    var: card
    validate: {{length: [13, 19], luhn: true}}
    prompt: "Marque su tarjeta."
    invalid: "Tarjeta no válida."
    next: account
  account:
    type: ask
    var: account
    validate: {{length: 6, exists: account}}
    prompt: "Marque su cuenta."
    invalid: "No existe."
    next: code
  code:
    type: ask
    var: code
    input: speech
    validate: {{regex: "[A-Za-z]+ [A-Za-z]+"}}
    prompt: "Diga la palabra clave."
    next: done
  done:
    type: answer
    prompt: "Gracias, {{customer.name}}. Tarjeta {{vars.card|last4}}, clave {{vars.code}}."
    next: bye
  bye:
    type: hangup
  people:
    type: queue
"""


def test_ask_validators_lookup_and_sensitive_values(make_registry: Make) -> None:
    ana = CustomerInfo(id="1", name="Ana", account="222333")
    h = FlowHarness(make_registry(ASK_FLOW.format()), customers=[ana]).call()
    h.press("4111111111111112")  # fails the Luhn check
    assert h.heard()[0] == "Tarjeta no válida." and h.node == "card"
    h.press("4111111111111111#")
    assert h.node == "account"
    assert h.session is not None and h.session.vars["card"] == "1111"
    assert "4111111111111111" not in repr(h.journal) and "4111111111111111" not in repr(
        h.session.to_dict())
    h.press("999999")
    assert h.effects[-1] == LookupCustomer(by="account", value="999999")
    assert h.heard()[0] == "No existe." and h.node == "account"
    h.press("222333")
    assert h.node == "code" and h.session.customer == ana
    h.say("Rojo   Fuego", 0.8)
    assert h.heard() == ["Gracias, Ana. Tarjeta 1 1 1 1, clave Rojo Fuego."]


def test_lookup_effect_is_the_last_action_and_replays(make_registry: Make) -> None:
    reg = make_registry(ASK_FLOW.format().replace("start: card", "start: account\nentries: [card]"))
    engine = Engine(reg)
    step = engine.start(CallStarted("CA1", "+34600000000", "+34930000000", NOW))
    step = engine.step(step.session, Digits("222333", NOW))
    assert step.actions == (LookupCustomer(by="account", value="222333"),)
    assert engine.step(step.session, Digits("1", NOW)).actions[-1] == step.actions[-1]


TRANSFER_FLOW = """\
flow: tr
version: "1"
languages: [es]
start: dial
nodes:
  dial:
    type: transfer
    number: "+34930000999"
    prompt: "Le transfiero."
    on_fail: sorry
  sorry:
    type: hangup
    prompt: "No contestan."
"""


def test_transfer_dials_and_handles_the_result(make_registry: Make) -> None:
    h = FlowHarness(make_registry(TRANSFER_FLOW)).call()
    assert h.actions[-1] == Dial(number="+34930000999", timeout_s=30)
    assert h.dial_done("completed").outcome == "transfer" and h.ended
    h.call().dial_done("busy")
    assert h.heard() == ["No contestan."] and h.ended


MAIN = """\
flow: main
version: "1"
languages: [es]
start: jump
human: bye
nodes:
  jump:
    type: goto
    flow: sub
    return: after
  after:
    type: say
    prompt: {es: {play: "https://example.test/after.wav"}}
    next: bye
  bye:
    type: hangup
    prompt: "Adiós."
"""
SUB = """\
flow: sub
version: "7"
languages: [es]
start: q
entries: [q]
human: back
nodes:
  q:
    type: confirm
    prompt: "¿Seguimos?"
    yes: back
    no: back
  back:
    type: return
"""


def test_goto_runs_a_sub_flow_and_returns(make_registry: Make) -> None:
    h = FlowHarness(make_registry(MAIN, sub=SUB)).call()
    assert h.session is not None and (h.session.flow, h.session.flow_version) == ("sub", "7")
    assert h.session.stack == ("main@1:after",)
    h.press("1")
    assert h.heard() == ["play:https://example.test/after.wav", "Adiós."] and h.ended
    assert h.session.flow == "main" and h.session.stack == ()


def test_a_session_on_a_vanished_node_goes_to_the_human_route(registry: FlowRegistry) -> None:
    engine = Engine(registry)
    step = engine.start(CallStarted("CA1", "+34600000000", "+34930000000", NOW))
    lost = Session.from_dict({**step.session.to_dict(), "node": "removed_in_v2"})
    out = engine.step(lost, Digits("1", NOW))
    assert out.session.node == "agent_queue" and isinstance(out.actions[-1], Enqueue)
    assert isinstance(out.actions[0], Say) and "problema" in out.actions[0].prompt.text


def test_an_ended_session_only_hangs_up(registry: FlowRegistry) -> None:
    engine = Engine(registry)
    step = engine.start(CallStarted("CA1", "+34600000000", "+34930000000", NOW))
    done = Session.from_dict({**step.session.to_dict(), "ended": True})
    assert engine.step(done, Speech("hola", 0.9, NOW)).actions == (Hangup(),)


def test_an_unknown_flow_gets_the_apology_and_a_queue(registry: FlowRegistry) -> None:
    engine = Engine(registry)
    step = engine.start(CallStarted("CA1", "+34600000000", "+34930000000", NOW))
    alien = Session.from_dict({**step.session.to_dict(), "flow": "gone", "language": "en"})
    out = engine.step(alien, Digits("1", NOW))
    assert out.session.ended and isinstance(out.actions[-1], Enqueue)
    assert out.actions[0].prompt.text.startswith("We're sorry")  # type: ignore[union-attr]


def test_a_session_survives_serialisation_mid_call(registry: FlowRegistry) -> None:
    engine = Engine(registry)
    step = engine.start(CallStarted("CA1", "+34600000000", "+34930000000", NOW))
    step = engine.step(step.session, Digits("2", NOW))
    copy = Session.from_dict(step.session.to_dict())
    assert copy == step.session
    assert engine.step(copy, Speech("factura", 0.6, NOW)) == engine.step(
        step.session, Speech("factura", 0.6, NOW))


BRANCHY = """\
flow: br
version: "1"
languages: [es, en]
start: b
nodes:
  b:
    type: branch
    cases:
      - if: {caller_prefix: "+44", language: en}
        next: uk
      - if: {vip: true, fields: {plan: [gold, platinum]}}
        next: gold
      - if: {vars: {topic: null}, known_customer: false}
        next: anon
    else: other
  uk: {type: hangup, prompt: {es: "uk", en: "uk"}}
  gold: {type: hangup, prompt: {es: "gold", en: "gold"}}
  anon: {type: hangup, prompt: {es: "anon", en: "anon"}}
  other: {type: hangup, prompt: {es: "other", en: "other"}}
"""


def test_branch_conditions(make_registry: Make) -> None:
    h = FlowHarness(make_registry(BRANCHY, language="null", languages="[es, en]"))
    assert h.call(caller="+447700900000", customer=CustomerInfo(
        id="1", name="A", language="en")).heard() == ["uk"]
    assert h.call(customer=CustomerInfo(id="1", name="A", vip=True, fields={
        "plan": "gold"})).heard() == ["gold"]
    assert h.call().heard() == ["anon"]
    assert h.call(customer=CustomerInfo(id="1", name="A", fields={"plan": "gold"})).heard() == [
        "other"]


def test_huge_and_garbage_input_is_safe(registry: FlowRegistry) -> None:
    h = FlowHarness(registry).call()
    h.say("factura " * 1500, 0.9)
    assert h.node == "choose_language"
    h.press("*#abc" * 100)
    assert h.node == "choose_language" and h.gather is not None and not h.gather.speech
