"""Call facts and summaries from recorded events (pure, deterministic)."""

from __future__ import annotations

from typing import Any

from recordings.live_calls import STATUS_BASE, ordered
from recordings.summaries import CallOutcome, analyse, build_summary, key_phrases

T0 = 1_795_426_200.0


def stream(steps: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Events as Redis holds them: ``_step`` and ``_id`` (ms stream ids, 1 s apart)."""
    out = []
    for n, (step, records) in enumerate(steps):
        for i, record in enumerate(records):
            out.append({**record, "_step": step, "_id": f"{int(T0 * 1000) + n * 1000}-{i}"})
    return out


def node(name: str, type_: str, input_: str | None, outcome: str) -> dict[str, Any]:
    return {"node": name, "type": type_, "input": input_, "outcome": outcome}


STARTED = {"kind": "call_started", "from": "+34699000111", "to": "+34930001000", "at": T0}
SESSION = {"line": "support", "flow": "demo", "flow_version": "1", "language": "es",
           "customer": {"id": "7", "name": "Ana"}, "vars": {"topic": "billing"},
           "outcome": "queued"}


def served_events(status_first: bool = False) -> list[dict[str, Any]]:
    steps = [
        ("1", [STARTED, node("choose_language", "menu", None, "asked")]),
        ("2", [node("choose_language", "menu", "dtmf:1", "option:es"),
               node("main_menu", "menu", None, "asked")]),
        ("3", [node("main_menu", "menu", "speech:quiero ver mi factura@0.91", "option:billing"),
               node("billing_queue", "queue", None, "enqueued"),
               {"kind": "enqueued", "queue": "billing", "priority": 0, "at": T0 + 20}]),
        ("4", [{"kind": "queue_left", "result": "bridged", "wait_s": 35, "at": T0 + 55},
               node("billing_queue", "queue", "queue:bridged", "done")]),
    ]
    status = ("status:completed:3", [{"kind": "status", "status": "completed",
                                      "duration": "240", "at": T0 + 240}])
    return stream([status] + steps if status_first else steps + [status])


def test_events_are_ordered_by_step_with_status_last_and_stable_numbers() -> None:
    a = ordered(served_events())
    b = ordered(served_events(status_first=True))
    assert [e["seq"] for e in a] == [e["seq"] for e in b]
    assert [e.get("node") or e.get("kind") for e in a] == [
        e.get("node") or e.get("kind") for e in b]
    assert a[-1]["kind"] == "status" and a[-1]["seq"] > STATUS_BASE
    assert a[0]["seq"] == 1000 and a[2]["seq"] == 2000
    assert len({e["seq"] for e in a}) == len(a)


def test_served_call_facts() -> None:
    facts = analyse("CA1", ordered(served_events()), SESSION)
    assert facts.outcome is CallOutcome.SERVED
    assert facts.queue == "billing" and facts.queue_wait_s == 35
    assert facts.duration_s == 240 and facts.ended_at == T0 + 240
    assert facts.handle_time_s is not None and 180 <= facts.handle_time_s <= 220
    assert facts.intents == ("billing",) and facts.reason == "billing"
    assert facts.path == ("choose_language", "main_menu", "billing_queue")
    assert facts.customer_id == 7 and facts.language == "es"
    said = [(i.kind, i.value, i.confidence) for i in facts.inputs]
    assert said[1] == ("speech", "quiero ver mi factura", 0.91)


def test_summary_is_deterministic_and_says_what_happened() -> None:
    facts = analyse("CA1", ordered(served_events()), SESSION)
    first = build_summary(facts)
    again = build_summary(analyse("CA1", ordered(served_events(status_first=True)), SESSION))
    assert first == again
    assert first["resolution"] == "served"
    assert first["caller_said"][1]["said"] == "quiero ver mi factura"
    assert first["caller_said"][1]["t"] == 2.0  # seconds into the call (stream ids)
    assert first["text"] == ("Reason: billing. Queue billing, waited 35 s. Outcome: served by "
                             "an agent. No follow-up needed. Language: es.")


def test_caller_hanging_up_in_the_queue_is_abandoned_with_a_follow_up() -> None:
    events = stream([
        ("1", [STARTED, node("main_menu", "menu", None, "asked")]),
        ("2", [node("main_menu", "menu", "dtmf:0", "option:agent"),
               node("agent_queue", "queue", None, "enqueued"),
               {"kind": "enqueued", "queue": "support", "at": T0 + 5}]),
        ("3", [node("agent_queue", "queue", "queue:hangup", "done")]),
    ])
    facts = analyse("CA2", ordered(events), {**SESSION, "vars": {"topic": "general"}})
    assert facts.outcome is CallOutcome.ABANDONED
    assert facts.reason == "agent"  # only a routing choice was made: that is all we know
    summary = build_summary(facts, follow_ups=[{"id": 3, "description": "Refund 100004",
                                                "due_at": None, "owner": "ana"}])
    assert summary["follow_up"]["reasons"] == ["hung up while waiting for an agent",
                                               "1 open follow-up(s) on the customer"]


def test_callback_survey_and_unknowns() -> None:
    events = stream([
        ("1", [STARTED, node("main_menu", "menu", None, "asked")]),
        ("2", [node("main_menu", "menu", "dtmf:6", "option:callback"),
               {"kind": "callback_requested", "number": "+34699000111", "at": T0 + 9},
               {"kind": "survey", "csat": 5, "nps": 11}]),
    ])
    facts = analyse("CA3", ordered(events), {"line": "support", "flow": "demo"})
    assert facts.outcome is CallOutcome.CALLBACK
    assert facts.survey == {"csat": 5}  # NPS 11 is out of range: ignored
    assert facts.duration_s is None and facts.language is None and facts.customer_id is None
    summary = build_summary(facts, pending=["recording RE1: no Vosk model for 'es'"])
    assert summary["follow_up"]["reasons"] == ["callback requested"]
    assert summary["pending"] == ["recording RE1: no Vosk model for 'es'"]
    assert "Reason: callback." in summary["text"]


def test_caller_hanging_up_mid_menu_and_flow_ending_the_call() -> None:
    mid = stream([("1", [STARTED, node("main_menu", "menu", None, "asked")])])
    assert analyse("CA4", ordered(mid), SESSION | {"outcome": None}).outcome is (
        CallOutcome.ABANDONED)
    closed = stream([("1", [STARTED, node("closed_msg", "hangup", None, "hangup")])])
    assert analyse("CA5", ordered(closed), {"outcome": "hangup"}).outcome is (
        CallOutcome.IVR_ENDED)


def test_key_phrases_link_to_transcript_positions() -> None:
    words = [["quiero", 0.1, 0.4, 0.9], ["devolver", 0.5, 0.9, 0.8], ["el", 1.0, 1.1, 0.9],
             ["pedido", 1.2, 1.6, 0.9], ["pedido", 3.0, 3.4, 0.7], ["****1234", 4.0, 4.5, 0.9]]
    phrases = key_phrases(words, limit=2)
    assert phrases == [{"text": "devolver", "start": 0.5, "end": 0.9, "word": 1},
                       {"text": "pedido", "start": 1.2, "end": 1.6, "word": 3}]
