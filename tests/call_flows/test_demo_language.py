"""How the demo flow chooses the caller's language: the customer record, the dialled
line, else the language menu; and what every step logs."""

from __future__ import annotations

from call_flows.actions import Gather
from call_flows.testing import FlowHarness
from tests.call_flows.conftest import LUCIA, MARTA
from tests.call_flows.test_demo_flow import to_menu


def test_known_customer_language_skips_the_language_menu(harness: FlowHarness) -> None:
    harness.call(caller="+34600999888", customer=MARTA)
    assert harness.heard()[:2] == ["Benvingut al servei d'atenció al client de Centralita.",
                                   "Hola, Marta Puig."]
    assert harness.node == "main_menu"
    assert all(p.locale == "ca-ES" and p.voice == "Google.ca-ES-Standard-A"
               for a in harness.actions for p in ([a.prompt] if hasattr(a, "prompt")
                                                  else a.prompts))


def test_line_language_is_used_when_the_record_has_none(harness: FlowHarness) -> None:
    harness.call(caller="+34600999888", called="+34930001001", customer=LUCIA)
    assert harness.heard()[0] == "Benvingut al servei d'atenció al client de Centralita."
    harness.call(caller="+34600999888", called="+442071838750")
    assert harness.heard()[0] == "Welcome to Centralita customer service."
    gather = harness.gather
    assert isinstance(gather, Gather) and gather.language == "en" and gather.locale == "en-GB"


def test_unknown_dialled_number_gets_the_default_line(harness: FlowHarness) -> None:
    harness.call(called="+15550100")
    assert harness.session is not None and harness.session.line == "support"
    assert harness.node == "choose_language"
    assert harness.heard() == ["Para español, pulse 1 o diga español.",
                               "Per català, premi 2 o digui català.",
                               "For English, press 3 or say English."]


def test_every_step_is_logged_with_node_type_input_and_outcome(harness: FlowHarness) -> None:
    to_menu(harness, "es").press("1")
    for rec in harness.log:
        assert set(rec) == {"node", "type", "input", "outcome"}
    assert harness.log[-2:] == [
        {"node": "main_menu", "type": "menu", "input": "dtmf:1", "outcome": "option:billing"},
        {"node": "billing_queue", "type": "queue", "input": None, "outcome": "enqueued"}]
