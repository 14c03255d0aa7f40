"""Whole-call recording in the pure engine: told first, started, paused for card digits.

A line with ``record_calls: true`` makes the first step tell the caller (in every
language of the flow while theirs is unknown) and come straight back; only that second
step starts the recording (``RecordingControl(start)``), so nothing is recorded before
the notice has played. A ``sensitive`` ask node pauses it while active and the next
node resumes it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from call_flows.actions import Gather, Redirect, Say
from call_flows.model import FlowError
from call_flows.registry import FlowRegistry
from call_flows.testing import FlowHarness

FLOW = """\
flow: pay
version: "1"
languages: [es, en]
start: menu
human: agent
nodes:
  menu:
    type: menu
    prompt: {es: "Pulse 1 para pagar.", en: "Press 1 to pay."}
    options:
      pay: {key: 1, say: {es: [pagar], en: [pay]}, next: card}
  card:
    type: ask
    var: card
    sensitive: true
    validate: {length: [13, 19], luhn: true}
    prompt: {es: "Marque el número de la tarjeta.", en: "Key in your card number."}
    next: done
  done:
    type: say
    prompt: {es: "Tarjeta terminada en {vars.card|last4}.", en: "Card ending {vars.card|last4}."}
    next: agent
  agent:
    type: queue
    topic: payments
"""
LINES = """\
lines:
  pay:
    default: true
    numbers: ["+34930000000"]
    flow: pay
    languages: [es, en]
    language: {language}
    record_calls: {record}
"""
CARD = "4111111111111111"


def registry(tmp_path: Path, record: str = "true", language: str = "es",
             flow: str = FLOW) -> FlowRegistry:
    (tmp_path / "pay.yaml").write_text(flow, encoding="utf-8")
    (tmp_path / "lines.yaml").write_text(LINES.format(record=record, language=language))
    return FlowRegistry.load(tmp_path)


def test_the_notice_plays_before_the_recording_starts(tmp_path: Path) -> None:
    h = FlowHarness(registry(tmp_path)).call(called="+34930000000")
    assert [type(a) for a in h.actions] == [Say, Redirect]
    assert h.heard() == [("Le informamos de que esta llamada se grabará para mejorar la "
                         "calidad del servicio.")]
    assert h.recording_controls == []  # nothing is recorded yet
    h.resume()  # Twilio follows the <Redirect> once the notice has played
    assert h.recording_controls == ["start"]
    assert h.node == "menu" and isinstance(h.gather, Gather)
    assert h.session is not None and h.session.recording == "in-progress"


def test_unknown_language_hears_the_notice_in_every_flow_language(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "call_flows" / "definitions"
    for name in ("demo.yaml", "password_help.yaml"):
        (tmp_path / name).write_text((shipped / name).read_text(encoding="utf-8"),
                                     encoding="utf-8")
    lines = (shipped / "lines.yaml").read_text(encoding="utf-8").replace(
        "    default: true\n", "    default: true\n    record_calls: true\n", 1)
    (tmp_path / "lines.yaml").write_text(lines, encoding="utf-8")
    h = FlowHarness(FlowRegistry.load(tmp_path)).call(called="+34930001000")
    assert [(p.language, p.text) for a in h.actions if isinstance(a, Say)
            for p in [a.prompt]] == [
        ("es", ("Le informamos de que esta llamada se grabará para mejorar la calidad del "
               "servicio.")),
        ("ca", "L'informem que aquesta trucada es gravarà per millorar la qualitat del servei."),
        ("en", "Please note that this call will be recorded to help us improve our service.")]
    h.resume()
    assert h.node == "choose_language" and h.recording_controls == ["start"]


def test_card_digits_pause_the_recording_and_the_next_node_resumes_it(tmp_path: Path) -> None:
    h = FlowHarness(registry(tmp_path)).call(called="+34930000000").resume()
    h.press("1")
    assert h.node == "card" and h.recording_controls == ["start", "paused"]
    assert h.session is not None and h.session.recording == "paused"
    h.press("1234")  # invalid: asked again, still paused (no second pause)
    assert h.node == "card" and h.recording_controls == ["start", "paused"]
    h.press(CARD)
    assert h.recording_controls == ["start", "paused", "in-progress"]
    assert "1 1 1 1" in h.heard_text() and CARD not in str(h.log)
    assert h.session is not None and h.session.recording == "in-progress"


def test_card_digits_are_keyed_only_never_listened_to(tmp_path: Path) -> None:
    h = FlowHarness(registry(tmp_path, record="false")).call(called="+34930000000")
    assert isinstance(h.gather, Gather) and h.gather.speech  # the menu listens...
    h.press("1")
    assert h.node == "card" and isinstance(h.gather, Gather)
    assert h.gather.dtmf and not h.gather.speech  # ...the card number is keyed only


def test_a_line_without_recording_never_controls_one(tmp_path: Path) -> None:
    h = FlowHarness(registry(tmp_path, record="false")).call(called="+34930000000")
    assert h.node == "menu" and not any(isinstance(a, Redirect) for a in h.actions)
    h.press("1").press(CARD)
    assert h.recording_controls == []


def test_record_calls_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(FlowError) as info:
        registry(tmp_path, record="sometimes")
    assert [(p.line, p.message) for p in info.value.problems] == [
        (8, "line 'pay': record_calls must be true or false")]


FRENCH = """\
messages:
  not_understood: {es: "Perdone.", fr: "Pardon."}
  keypad_only: {es: "Use el teclado.", fr: "Utilisez le clavier."}
  confirm_heard: {es: "¿{heard}?", fr: "{heard} ?"}
  callback_number: {es: "Su número.", fr: "Votre numéro."}
  callback_done: {es: "Le llamaremos.", fr: "Nous vous rappellerons."}
  voicemail_thanks: {es: "Gracias.", fr: "Merci."}
  apology: {es: "Lo sentimos.", fr: "Désolés."}
"""


def test_a_recorded_line_needs_the_notice_in_each_of_its_languages(tmp_path: Path) -> None:
    flow = FLOW.replace("languages: [es, en]", "languages: [es, fr]").replace(
        'en: "', 'fr: "').replace("en: [pay]", "fr: [payer]") + FRENCH
    (tmp_path / "pay.yaml").write_text(flow, encoding="utf-8")
    lines = LINES.replace("[es, en]", "[es, fr]")
    (tmp_path / "lines.yaml").write_text(lines.format(record="false", language="es"))
    FlowRegistry.load(tmp_path)  # not recorded: the notice is not needed in French
    (tmp_path / "lines.yaml").write_text(lines.format(record="true", language="es"))
    with pytest.raises(FlowError) as info:
        FlowRegistry.load(tmp_path)
    assert [(Path(p.file).name, p.line, p.message) for p in info.value.problems] == [
        ("lines.yaml", 8, ("line 'pay': record_calls needs the caller told in fr: add "
                          "messages.recording_notice to flow 'pay'"))]
    (tmp_path / "pay.yaml").write_text(flow + '  recording_notice: {es: "Grabamos.", '
                                              'fr: "Cet appel est enregistré."}\n',
                                       encoding="utf-8")
    h = FlowHarness(FlowRegistry.load(tmp_path)).call(called="+34930000000")
    assert h.heard() == ["Grabamos."]
