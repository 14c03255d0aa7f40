"""The simulated Twilio against a tiny Flask app that serves fixed TwiML.

The app checks every ``X-Twilio-Signature`` with twilio's own ``RequestValidator``
(403 otherwise), so a passing test proves the simulator signs as Twilio does; it logs
the parameters it received so tests can pin them to Twilio's documented names.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from ivr.cli import cli
from ivr.simulator import (
    EventKind,
    LoopGuardTripped,
    ScriptError,
    ServerUnreachable,
    SimulatedCall,
    Simulator,
    TestClientTransport,
    WebhookError,
    dial_outcome,
    hangup,
    press,
    queue_outcome,
    record,
    run_call,
    say,
    silence,
)

TOKEN = "test-auth-token"
BASE = "http://ivr.example.test"

MENU = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Say language="es-ES">Bienvenido a Centralita.</Say>
  <Gather input="dtmf speech" numDigits="1" action="menu" language="es-ES" timeout="4">
    <Say language="es-ES">Para facturas, pulse 1 o diga factura.</Say>
  </Gather>
  <Say language="es-ES">No le he oído.</Say>
  <Redirect method="GET">/voice/incoming?retry=1</Redirect>
</Response>"""

ROUTES: dict[str, str] = {
    "/voice/menu": '<Response><Say language="es-ES">Ha elegido facturas.</Say><Hangup/></Response>',
    "/voice/empty": """<Response><Gather action="/voice/menu" actionOnEmptyResult="true"
        finishOnKey="#"><Say>Account number, then hash.</Say></Gather>
        <Say>not reached</Say></Response>""",
    "/voice/account": """<Response><Gather action="/voice/menu" finishOnKey="#">
        <Say>Account number, then hash.</Say></Gather></Response>""",
    "/voice/voicemail": """<Response><Say>Leave a message.</Say>
        <Record action="/voice/recorded" maxLength="30"
                recordingStatusCallback="/voice/recording-status"/>
        <Say>Nothing recorded, goodbye.</Say></Response>""",
    "/voice/recorded": "<Response><Say>Thanks for your message.</Say></Response>",
    "/voice/queue": """<Response><Enqueue waitUrl="/voice/wait" action="/voice/queue-done"
        >support-es</Enqueue><Say>after the queue</Say></Response>""",
    "/voice/queue-done": "<Response><Say>Goodbye from the queue.</Say></Response>",
    "/voice/wait-menu": """<Response><Gather numDigits="1" action="/voice/wait-choice">
        <Say>Press 1 to leave a voicemail.</Say></Gather><Pause length="10"/></Response>""",
    "/voice/wait-choice": "<Response><Leave/></Response>",
    "/voice/dial": """<Response><Dial action="/voice/dial-done" timeout="20">
        <Number>+34911111111</Number></Dial></Response>""",
    "/voice/dial-done": "<Response><Say>Dial finished.</Say></Response>",
    "/voice/reject": '<Response><Reject reason="busy"/><Say>unreachable</Say></Response>',
    "/voice/loop": "<Response><Redirect>/voice/loop</Redirect></Response>",
    "/voice/nested": "<Response><Gather><Dial>+34911111111</Dial></Gather></Response>",
}


def make_app(calls: list[dict[str, Any]], wait_mode: dict[str, str]) -> Flask:
    app = Flask(__name__)
    validator = RequestValidator(TOKEN)

    @app.before_request
    def check_signature() -> None:
        params = request.form if request.method == "POST" else {}
        if not validator.validate(request.url, params, request.headers.get(
                "X-Twilio-Signature", "")):
            abort(403)
        calls.append({"method": request.method, "path": request.path,
                      "params": request.values.to_dict()})

    def twiml(body: str) -> Response:
        return Response(body, mimetype="text/xml")

    @app.route("/voice/incoming", methods=["GET", "POST"])
    def incoming() -> Response:
        return twiml(MENU)

    @app.route("/voice/status", methods=["POST"])
    @app.route("/voice/recording-status", methods=["POST"])
    def status() -> Response:
        return Response("", status=204)

    @app.route("/voice/wait", methods=["POST"])
    def wait() -> Response:
        if wait_mode.get("mode") == "leave" and int(request.form["QueueTime"]) >= 20:
            return twiml("<Response><Leave/></Response>")
        if wait_mode.get("mode") == "menu":
            return twiml(ROUTES["/voice/wait-menu"])
        return twiml(f'<Response><Say language="es-ES">Su posición es '
                     f'{request.form["QueuePosition"]}.</Say><Pause length="8"/></Response>')

    @app.route("/bad/<kind>", methods=["POST"])
    def bad(kind: str) -> Response:
        if kind == "html":
            return Response("<Response/>", mimetype="text/html")
        if kind == "xml":
            return twiml("<Response><Say>unclosed</Response>")
        if kind == "root":
            return twiml("<html><Say>hi</Say></html>")
        abort(500)

    for path, body in ROUTES.items():
        app.add_url_rule(path, path, (lambda b=body: twiml(b)), methods=["GET", "POST"])
    return app


@pytest.fixture()
def server_log() -> list[dict[str, Any]]:
    return []


@pytest.fixture()
def wait_mode() -> dict[str, str]:
    return {}


@pytest.fixture()
def sim(server_log: list[dict[str, Any]], wait_mode: dict[str, str]) -> Simulator:
    app = make_app(server_log, wait_mode)
    return Simulator(BASE, TOKEN, transport=TestClientTransport(app.test_client()))


def test_incoming_call_sends_twilios_parameters_signed(sim: Simulator,
                                                       server_log: list[dict[str, Any]]) -> None:
    call = sim.call("+34600111222", "+34900000000").start()
    assert call.pending == "Gather"
    assert call.heard("Bienvenido", language="es-ES")
    assert call.heard("pulse 1")
    first = server_log[0]
    assert (first["method"], first["path"]) == ("POST", "/voice/incoming")
    params = first["params"]
    assert params["CallStatus"] == "ringing" and params["Direction"] == "inbound"
    assert params["ApiVersion"] == "2010-04-01"
    assert params["From"] == params["Caller"] == "+34600111222"
    assert params["To"] == params["Called"] == "+34900000000"
    assert params["CallSid"].startswith("CA") and len(params["CallSid"]) == 34
    assert params["AccountSid"].startswith("AC") and len(params["AccountSid"]) == 34

    call.press("1")
    menu = server_log[1]
    assert menu["path"] == "/voice/menu"  # relative action="menu" resolved
    assert menu["params"]["Digits"] == "1"
    assert menu["params"]["CallStatus"] == "in-progress"
    assert call.heard("Ha elegido facturas")
    assert call.ended and call.status == "completed"
    status = server_log[-1]
    assert status["path"] == "/voice/status"
    assert status["params"]["CallStatus"] == "completed"
    assert status["params"]["SequenceNumber"] == "0"
    assert status["params"]["CallbackSource"] == "call-progress-events"
    assert int(status["params"]["CallDuration"]) == call.duration > 0


def test_speech_sends_speech_result_and_confidence(sim: Simulator,
                                                   server_log: list[dict[str, Any]]) -> None:
    call = sim.call().start().say("factura", confidence=0.87)
    params = server_log[1]["params"]
    assert params["SpeechResult"] == "factura" and params["Confidence"] == "0.87"
    assert "Digits" not in params
    assert call.heard("Ha elegido facturas")


def test_gather_timeout_goes_on_with_the_next_verb_and_get_redirect_is_signed(
        sim: Simulator, server_log: list[dict[str, Any]]) -> None:
    call = sim.call().start().silence()
    assert call.heard("No le he oído")
    again = server_log[1]
    assert again["method"] == "GET" and again["path"] == "/voice/incoming"
    assert again["params"]["retry"] == "1" and again["params"]["CallSid"] == call.call_sid
    assert call.pending == "Gather"
    assert [e.kind for e in call.events].count(EventKind.SILENT) == 1


def test_action_on_empty_result_posts_the_action_without_digits(
        sim: Simulator, server_log: list[dict[str, Any]]) -> None:
    call = sim.call(url=f"{BASE}/voice/empty").start().silence()
    assert server_log[1]["path"] == "/voice/menu"
    assert "Digits" not in server_log[1]["params"]
    assert not call.heard("not reached")


def test_finish_on_key_is_not_sent_and_extra_keys_stop_at_num_digits(
        sim: Simulator, server_log: list[dict[str, Any]]) -> None:
    sim.call(url=f"{BASE}/voice/account").start().press("12345#")
    assert server_log[1]["params"]["Digits"] == "12345"
    sim.call().start().press("29")  # numDigits="1" on the menu
    assert server_log[-2]["params"]["Digits"] == "2"


def test_record_posts_recording_and_status_callback(sim: Simulator,
                                                    server_log: list[dict[str, Any]]) -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
    call = sim.call(url=f"{BASE}/voice/voicemail").start()
    assert call.pending == "Record"
    call.record(url, 42, sid="RE" + "1" * 32)  # longer than maxLength="30"
    action = server_log[1]
    assert action["path"] == "/voice/recorded"
    assert action["params"]["RecordingUrl"] == url
    assert action["params"]["RecordingDuration"] == "30"
    assert action["params"]["RecordingSid"] == "RE" + "1" * 32
    rec_status = server_log[2]
    assert rec_status["path"] == "/voice/recording-status"
    assert rec_status["params"]["RecordingStatus"] == "completed"
    assert call.heard("Thanks for your message") and call.ended


def test_empty_recording_skips_the_action(sim: Simulator,
                                          server_log: list[dict[str, Any]]) -> None:
    call = sim.call(url=f"{BASE}/voice/voicemail").start().silence()
    assert call.heard("Nothing recorded") and call.ended
    assert [c["path"] for c in server_log] == ["/voice/voicemail", "/voice/status"]


def test_enqueue_loops_wait_url_then_posts_queue_result(
        sim: Simulator, server_log: list[dict[str, Any]]) -> None:
    call = sim.call(url=f"{BASE}/voice/queue").start()
    assert call.pending == "Enqueue" and call.heard("Su posición es 1")
    call.queue_outcome("bridged", after=25, talk=60)
    waits = [c["params"] for c in server_log if c["path"] == "/voice/wait"]
    assert len(waits) >= 3
    assert [int(w["QueueTime"]) for w in waits] == sorted(int(w["QueueTime"]) for w in waits)
    assert all(w["QueueSid"].startswith("QU") and w["CurrentQueueSize"] == "1" for w in waits)
    done = next(c["params"] for c in server_log if c["path"] == "/voice/queue-done")
    assert done["QueueResult"] == "bridged" and done["QueueTime"] == "25"
    assert call.heard("Goodbye from the queue") and call.duration >= 85


def test_wait_url_leave_ends_the_stay(sim: Simulator, server_log: list[dict[str, Any]],
                                      wait_mode: dict[str, str]) -> None:
    wait_mode["mode"] = "leave"
    call = sim.call(url=f"{BASE}/voice/queue").start().queue_outcome("bridged", after=300)
    done = next(c["params"] for c in server_log if c["path"] == "/voice/queue-done")
    assert done["QueueResult"] == "leave" and 20 <= int(done["QueueTime"]) < 300
    assert call.ended


def test_keys_pressed_while_queued_go_to_the_wait_gather(
        sim: Simulator, server_log: list[dict[str, Any]], wait_mode: dict[str, str]) -> None:
    wait_mode["mode"] = "menu"
    call = sim.call(url=f"{BASE}/voice/queue").start()
    assert call.queue_listening
    call.press("1")
    choice = next(c["params"] for c in server_log if c["path"] == "/voice/wait-choice")
    assert choice["Digits"] == "1" and "QueuePosition" in choice
    done = next(c["params"] for c in server_log if c["path"] == "/voice/queue-done")
    assert done["QueueResult"] == "leave"


def test_hangup_in_queue_posts_hangup_and_ends(sim: Simulator,
                                               server_log: list[dict[str, Any]]) -> None:
    call = sim.call(url=f"{BASE}/voice/queue").start().hangup()
    done = next(c["params"] for c in server_log if c["path"] == "/voice/queue-done")
    assert done["QueueResult"] == "hangup"
    assert call.ended and not call.heard("Goodbye from the queue")


def test_dial_outcome_reaches_the_action(sim: Simulator,
                                         server_log: list[dict[str, Any]]) -> None:
    call = sim.call(url=f"{BASE}/voice/dial").start()
    assert call.pending == "Dial"
    call.dial_outcome("busy")
    params = server_log[1]["params"]
    assert params["DialCallStatus"] == "busy" and "DialCallDuration" not in params
    assert call.heard("Dial finished")


def test_reject_ends_unanswered(sim: Simulator, server_log: list[dict[str, Any]]) -> None:
    call = sim.call(url=f"{BASE}/voice/reject").start()
    assert call.status == "busy" and not call.heard("unreachable")
    assert server_log[-1]["params"]["CallStatus"] == "busy"
    assert "CallDuration" not in server_log[-1]["params"]


def test_loop_guard_stops_a_looping_flow(sim: Simulator,
                                         server_log: list[dict[str, Any]]) -> None:
    call = sim.call(url=f"{BASE}/voice/loop", max_requests=10)
    with pytest.raises(LoopGuardTripped, match="max_requests=10"):
        call.start()
    assert call.ended and server_log[-1]["path"] == "/voice/status"


@pytest.mark.parametrize(("kind", "message"), [
    ("html", "12300"), ("xml", "12100"), ("root", "not <Response>"), ("boom", "HTTP 500")])
def test_bad_answers_are_reported(sim: Simulator, kind: str, message: str) -> None:
    call = sim.call(url=f"{BASE}/bad/{kind}")
    with pytest.raises(WebhookError, match=message):
        call.start()
    assert call.ended and call.heard("application error")


def test_nested_dial_in_gather_is_invalid(sim: Simulator) -> None:
    with pytest.raises(WebhookError, match="cannot be nested"):
        sim.call(url=f"{BASE}/voice/nested").start()


def test_a_wrong_key_is_refused_by_the_server() -> None:
    log: list[dict[str, Any]] = []
    client = make_app(log, {}).test_client()
    call = SimulatedCall(BASE, "not-the-token", transport=TestClientTransport(client))
    with pytest.raises(WebhookError, match="HTTP 403"):
        call.start()
    assert log == []


def test_scripted_run_and_script_errors(sim: Simulator,
                                        server_log: list[dict[str, Any]]) -> None:
    call = sim.call(script=[silence(), say("factura")]).run()
    assert call.heard("No le he oído") and call.heard("Ha elegido facturas")
    with pytest.raises(ScriptError, match="has ended"):
        call.press("1")
    waiting = sim.call().start()
    with pytest.raises(ScriptError, match="does not fit a <Gather>"):
        waiting.queue_outcome("bridged")
    with pytest.raises(ScriptError, match="0-9"):
        waiting.press("12a")
    assert waiting.pending == "Gather"  # a misuse changes nothing
    queued = sim.call(url=f"{BASE}/voice/queue", script=[record(), hangup()])
    with pytest.raises(ScriptError, match="does not fit an <Enqueue>"):
        queued.run()


def test_live_update_redirects_a_queued_call(sim: Simulator,
                                             server_log: list[dict[str, Any]]) -> None:
    call = sim.call(url=f"{BASE}/voice/queue").start()
    call.update(twiml="<Response><Say>An agent will call you back.</Say></Response>")
    call.apply_updates()
    done = next(c["params"] for c in server_log if c["path"] == "/voice/queue-done")
    assert done["QueueResult"] == "redirected"
    assert call.heard("call you back") and call.ended


def test_run_call_helper_with_script_items(server_log: list[dict[str, Any]],
                                           wait_mode: dict[str, str]) -> None:
    client = make_app(server_log, wait_mode).test_client()
    call = run_call(BASE, TOKEN, [press("1")], transport=TestClientTransport(client),
                    url=f"{BASE}/voice/incoming")
    assert call.heard("Ha elegido facturas")
    queued = run_call(BASE, TOKEN, [queue_outcome("bridged", after=5)],
                      transport=TestClientTransport(client), url=f"{BASE}/voice/queue")
    assert queued.heard("Goodbye from the queue")
    dial = run_call(BASE, TOKEN, [dial_outcome("completed", 30)],
                    transport=TestClientTransport(client), url=f"{BASE}/voice/dial")
    assert "DialCallDuration=30" not in dial.transcript()
    assert server_log[-2]["params"]["DialCallDuration"] == "30"


# --------------------------------------------------------------------------- the CLI


@pytest.fixture()
def live_server(server_log: list[dict[str, Any]], wait_mode: dict[str, str]) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, make_app(server_log, wait_mode), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_cli_places_a_scripted_call(live_server: str,
                                    server_log: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(
        cli, ["simulate", "--url", live_server, "--say", "no sé", "--digits", "1",
              "--from", "+34600999888"], env={"TWILIO_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.strip() == "said [es-ES]: no sé" for line in lines)
    assert any("Ha elegido facturas" in line for line in lines)
    assert "call completed" in lines[-1]
    assert "ended before 1 script item(s): Press(digits='1')" in result.output
    # the order on the command line is the order of the call
    assert [c["params"].get("SpeechResult") or c["params"].get("Digits")
            for c in server_log if c["path"] == "/voice/menu"] == ["no sé"]
    assert server_log[0]["params"]["From"] == "+34600999888"


def test_cli_digit_groups_feed_successive_gathers(live_server: str,
                                                  server_log: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--url", live_server, "--silence",
                                      "--digits", "1"], env={"TWILIO_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert [c["path"] for c in server_log][:3] == ["/voice/incoming"] * 2 + ["/voice/menu"]


def test_cli_unsigned_call_warns_and_reports_403(live_server: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--url", live_server],
                                env={"TWILIO_AUTH_TOKEN": ""})
    assert result.exit_code == 1
    assert "TWILIO_AUTH_TOKEN is not set" in result.output
    assert "HTTP 403" in result.output


def test_cli_unreachable_server_says_what_to_do() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--url", "http://127.0.0.1:9"],
                                env={"TWILIO_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 1
    assert "is `ivr serve` running?" in result.output


def test_cli_rejects_bad_input() -> None:
    runner = CliRunner()
    bad_digits = runner.invoke(cli, ["simulate", "--url", "http://x", "--digits", "1,a"])
    assert bad_digits.exit_code == 2 and "keys are 0-9" in bad_digits.output
    bad_from = runner.invoke(cli, ["simulate", "--url", "http://x", "--from", "600"])
    assert bad_from.exit_code == 2 and "E.164" in bad_from.output
    assert "--interactive" in runner.invoke(cli, ["simulate", "--help"]).output


def test_cli_interactive_asks_at_each_gather(live_server: str,
                                             server_log: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--url", live_server, "-i"],
                                input="factura\n", env={"TWILIO_AUTH_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert "keys or words" in result.output
    assert server_log[1]["params"]["SpeechResult"] == "factura"


def test_unreachable_server_raises_for_library_users() -> None:
    with pytest.raises(ServerUnreachable, match="ivr serve"):
        SimulatedCall("http://127.0.0.1:9", TOKEN).start()
