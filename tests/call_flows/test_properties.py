"""Property tests: whatever a phone, Twilio or an attacker sends, the engine answers safely."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from call_flows.actions import (
    TWIML_ACTIONS,
    CallStarted,
    Continue,
    CustomerInfo,
    DialDone,
    Digits,
    Hangup,
    LookupCustomer,
    LookupResult,
    NoInput,
    QueueLeft,
    RecordingDone,
    Speech,
)
from call_flows.engine import Engine
from call_flows.registry import FlowRegistry
from call_flows.session import Session, Step

REGISTRY = FlowRegistry.load()
ENGINE = Engine(REGISTRY)

times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                     timezones=st.just(UTC))
customers = st.one_of(st.none(), st.builds(
    CustomerInfo, id=st.text(min_size=1, max_size=8), name=st.text(max_size=40),
    language=st.sampled_from([None, "es", "ca", "en", "fr", "", "es-ES"]), vip=st.booleans(),
    account=st.one_of(st.none(), st.text("0123456789", max_size=8)),
    open_follow_up=st.one_of(st.none(), st.text(max_size=60)),
    fields=st.dictionaries(st.sampled_from(["order_status", "plan", "x"]), st.text(max_size=30),
                           max_size=3)))
keypad = st.text(alphabet="0123456789*#", max_size=20)
words = st.sampled_from(["factura", "sí", "no", "agente", "español", "català", "English",
                         "uno dos tres cuatro cinco seis", "urgente", "call me back", ""])
speech_text = st.one_of(words, st.text(max_size=200), st.text(min_size=5000, max_size=10000)
                        .map(lambda t: t[:10000]))
confidence = st.one_of(st.floats(min_value=0, max_value=1), st.just(float("nan")),
                       st.floats(min_value=-5, max_value=5))


def events(now: datetime) -> st.SearchStrategy[object]:
    return st.one_of(
        st.builds(Digits, digits=st.one_of(keypad, st.text(max_size=30)), now=st.just(now)),
        st.builds(Speech, text=speech_text, confidence=confidence, now=st.just(now)),
        st.builds(NoInput, now=st.just(now)),
        st.builds(Continue, now=st.just(now)),
        st.builds(LookupResult, customer=customers, now=st.just(now)),
        st.builds(RecordingDone, recording_url=st.text(max_size=20),
                  duration_s=st.integers(0, 600), now=st.just(now)),
        st.builds(QueueLeft, result=st.sampled_from(["bridged", "hangup", "leave", "error",
                                                     "redirected", "system-error", "??"]),
                  wait_s=st.integers(0, 900), now=st.just(now)),
        st.builds(DialDone, status=st.sampled_from(["completed", "busy", "no-answer", "x"]),
                  now=st.just(now)),
    )


def check(step: Step, previous: Session | None) -> None:
    assert step.actions, "a step without actions"
    # The engine's last-resort handler must not be what saved the caller: a crash
    # inside a node handler is a bug even though the caller would still be served.
    assert not any(str(r["outcome"]).startswith("error:") for r in step.log), step.log
    for i, action in enumerate(step.actions):
        assert not isinstance(action, LookupCustomer) or i == len(step.actions) - 1
    assert any(isinstance(a, TWIML_ACTIONS) for a in step.actions) or isinstance(
        step.actions[-1], LookupCustomer)
    if previous is not None and previous.ended:
        assert step.actions == (Hangup(),)
    data = json.loads(json.dumps(step.session.to_dict()))
    assert Session.from_dict(data) == step.session


@settings(max_examples=150, deadline=None)
@given(start=times, caller=st.one_of(st.just("+34600111222"), st.text(max_size=20)),
       called=st.sampled_from(["+34930001000", "+34930001001", "+442071838750", "", "junk"]),
       customer=customers, data=st.data())
def test_random_calls_never_raise_and_always_answer(start: datetime, caller: str, called: str,
                                                    customer: CustomerInfo | None,
                                                    data: st.DataObject) -> None:
    step = ENGINE.start(CallStarted("CA1", caller, called, start, customer))
    check(step, None)
    now = start
    for _ in range(data.draw(st.integers(1, 12))):
        now += timedelta(seconds=data.draw(st.integers(0, 4000)))
        event = data.draw(events(now))
        session = step.session
        step = ENGINE.step(session, event)  # type: ignore[arg-type]
        assert ENGINE.step(session, event) == step  # a retry replays exactly
        check(step, session)


@settings(max_examples=100, deadline=None)
@given(node=st.one_of(st.text(max_size=20), st.sampled_from(sorted(
    REGISTRY.current("demo").nodes))), version=st.sampled_from(["2026-11-23.1", "0", ""]),
    pending=st.dictionaries(st.sampled_from(["confirm", "lookup", "stage", "lang"]),
                            st.text(max_size=10), max_size=3),
    attempts=st.integers(-3, 10), language=st.sampled_from([None, "es", "ca", "en", "xx"]),
    stack=st.lists(st.text(max_size=20), max_size=2), now=times)
def test_tampered_sessions_get_a_safe_step(node: str, version: str, pending: dict[str, str],
                                           attempts: int, language: str | None,
                                           stack: list[str], now: datetime) -> None:
    session = Session(call_sid="CA1", caller="+34600111222", called="+34930001000",
                      line="support", flow="demo", flow_version=version, node=node,
                      language=language, pending=pending, attempts=attempts, stack=tuple(stack))
    for event in (NoInput(now), Digits("1", now), Speech("sí", 0.9, now)):
        check(ENGINE.step(session, event), session)
