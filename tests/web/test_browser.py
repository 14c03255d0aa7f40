"""The pages in a real browser: Debian's chromium driven by Playwright against a real
server thread (werkzeug) on real Redis and SQLite.

Screenshots are taken on every run into pytest's temporary directory; with
``IVR_UPDATE_SCREENSHOTS=1`` they replace the ones in docs/screenshots/ (the README's).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from ivr.simulator import Simulator
from tests.fakes import FakeTwilioCloud
from tests.hours import open_clock
from tests.jobs import run_jobs
from tests.web.conftest import PASSWORD
from tests.web.test_flow_editor import NEW_GOODBYE, _edited, _line_of

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
DOC_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LUCIA = "+34600000001"  # a demo customer (recordings/demo_customers.csv), Spanish, VIP


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed: run `make test` (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture()
def server(web_app: Flask) -> Iterator[str]:
    # Calls go through the shipped demo line: open whenever CI runs (tests/hours.py).
    web_app.extensions["centralita"].components["calls"].clock = open_clock()
    httpd = make_server("127.0.0.1", 0, web_app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)


@pytest.fixture()
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="es-ES")  # type: ignore[attr-defined]
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    errors: list[str] = []  # script errors, CSP refusals and unexpected HTTP errors fail

    def on_console(msg: object) -> None:
        text = msg.text  # type: ignore[attr-defined]
        if msg.type == "error" and not text.startswith("Failed to load resource"):  # type: ignore[attr-defined]
            errors.append(text)

    def on_response(response: object) -> None:
        status, url = response.status, response.url  # type: ignore[attr-defined]
        # A call's record is 404 until the worker files it; the console waits for it.
        # A form refused with its errors shown next to the fields is a 400 by design.
        form_refused = status == 400 and re.search(r"/admin/(lines|queues)\b", url)
        if status >= 400 and not (status == 404 and "/api/calls/" in url) and not form_refused:
            errors.append(f"{status} {url}")

    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", on_console)
    tab.on("response", on_response)
    yield tab
    context.close()
    assert errors == [], errors


@pytest.fixture()
def job_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, redis_url: str) -> None:
    """What the RQ worker process reads: the same Redis, data dir and secret as the app."""
    for key, value in {"IVR_DATA_DIR": str(data_dir), "REDIS_URL": redis_url,
                       "IVR_SECRET_KEY": "web-test-secret", "IVR_FINALIZE_SETTLE_S": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("IVR_UPDATE_SCREENSHOTS") == "1":
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        return DOC_SHOTS
    return tmp_path_factory.mktemp("screenshots")


def shot(tab: object, folder: Path, name: str) -> None:
    tab.screenshot(path=str(folder / name), full_page=False)  # type: ignore[attr-defined]
    assert (folder / name).stat().st_size > 10_000  # a real picture, not a blank page


def log_in(tab: object, base: str, user: str) -> None:
    tab.goto(base + "/login")  # type: ignore[attr-defined]
    tab.get_by_label("Usuario").fill(user)  # type: ignore[attr-defined]
    tab.get_by_label("Contraseña").fill(PASSWORD)  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Entrar").click()  # type: ignore[attr-defined]


def test_admin_edits_checks_simulates_and_publishes(server: str, page: object, web_app: Flask,
                                                    flows_dir: Path, shots: Path) -> None:
    expect = playwright_api.expect
    tab: object = page
    tab.goto(server + "/admin/flows")  # type: ignore[attr-defined]
    expect(tab).to_have_url(re.compile(r"/login\?next=/admin/flows"))  # type: ignore[arg-type]
    shot(tab, shots, "login.png")
    log_in(tab, server, "ana")
    expect(tab).to_have_url(re.compile(r"/admin/flows$"))  # type: ignore[arg-type]
    tab.get_by_role("link", name="Editar demo").click()  # type: ignore[attr-defined]
    editor = tab.get_by_label("Editor demo")  # type: ignore[attr-defined]
    original = editor.input_value()
    broken = original.replace("next: anything_else", "next: anything_elze", 1)
    bad_line = _line_of(broken, "next: anything_elze")
    editor.fill(broken)
    problem = tab.locator("#problems li.problem", has_text="anything_elze")  # type: ignore[attr-defined]
    expect(problem).to_contain_text(f"demo.yaml:{bad_line}")
    expect(tab.locator("#gutter b.bad")).to_have_text(str(bad_line))  # type: ignore[attr-defined]
    problem.get_by_role("button").click()
    shot(tab, shots, "flow-editor-error.png")

    editor.fill(_edited(original))
    expect(tab.locator("#problems li.ok")).to_be_visible()  # type: ignore[attr-defined]
    tab.get_by_label("Teclas").fill("1")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Pulsar").click()  # type: ignore[attr-defined]
    tab.get_by_label("Teclas").fill("*")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Pulsar").click()  # type: ignore[attr-defined]
    tab.get_by_label("Teclas").fill("3")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Pulsar").click()  # type: ignore[attr-defined]
    tab.get_by_label("Teclas").fill("2")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Pulsar").click()  # type: ignore[attr-defined]
    log = tab.locator("#sim-log")  # type: ignore[attr-defined]
    expect(log).to_contain_text("nos ayuda a mejorar")  # the closing survey: decline it
    tab.get_by_label("Teclas").fill("2")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Pulsar").click()  # type: ignore[attr-defined]
    expect(log).to_contain_text(NEW_GOODBYE)  # the draft, not the published flow
    expect(log).to_contain_text("Llamada terminada")
    tab.locator("#sim-h").scroll_into_view_if_needed()  # type: ignore[attr-defined]
    shot(tab, shots, "flow-editor-simulator.png")

    tab.get_by_role("button", name="Publicar").click()  # type: ignore[attr-defined]
    expect(tab.locator("#status")).to_contain_text("publicada")  # type: ignore[attr-defined]
    registry = web_app.extensions["centralita"].get("flows")
    assert registry.current("demo").version == "web-test.2"
    # A call placed the way Twilio places it now follows the new version.
    call = Simulator(server, "test-token").call(from_="+34699000111",
                                                to="+34930001000").start()
    call.press("1").press("*").press("3").press("2").press("2")  # no to the survey
    assert call.ended and call.heard(NEW_GOODBYE)
    expect(tab.locator("#versions tbody tr").first).to_contain_text("publicada")  # type: ignore[attr-defined]


def test_agent_gets_a_routed_call_with_its_screen_pop(server: str, page: object,
                                                      web_app: Flask, job_env: None,
                                                      redis_url: str, shots: Path) -> None:
    expect = playwright_api.expect
    services = web_app.extensions["centralita"]
    services.get("database").load_demo()
    cloud = FakeTwilioCloud().start()  # Twilio's REST API: accepting rings the agent
    rest = cloud.rest_client()
    rest.public_url = server  # IVR_PUBLIC_URL: the agent's <Dial> reports back here
    services.components["bridge"].rest = rest
    admin = {"Authorization": "Bearer admin-secret"}
    configured = requests.put(f"{server}/api/agents/alba", headers=admin, timeout=10,
                              json={"skills": {"lang:es": 3, "topic:billing": 3},
                                    "contact": "+34600999000"})
    assert configured.status_code == 200, configured.text
    tab: object = page
    log_in(tab, server, "alba")
    expect(tab).to_have_url(re.compile(r"/agent$"))  # type: ignore[arg-type]
    expect(tab.locator("#idle")).to_be_visible()  # type: ignore[attr-defined]

    call = Simulator(server, "test-token").call(from_=LUCIA, to="+34930001000").start()
    cloud.add_live_call(call.call_sid, to="+34930001000", from_=LUCIA)
    for _ in range(4):  # identified by caller ID; choose billing until put in the queue
        if call.queue_listening or call.ended:
            break
        call.press("1")
    assert call.queue_listening, call.transcript()

    tab.get_by_role("button", name="Disponible").click()  # type: ignore[attr-defined]
    offer = tab.locator("#offer")  # type: ignore[attr-defined]
    expect(offer).to_be_visible()
    expect(offer).to_contain_text("Lucía Fernández Ortega")
    expect(offer).to_contain_text("VIP")
    expect(offer).to_contain_text("billing")
    expect(offer).to_contain_text(LUCIA)
    shot(tab, shots, "agent-screen-pop.png")
    tab.get_by_role("button", name="Aceptar").click()  # type: ignore[attr-defined]
    expect(tab.locator("#state")).to_have_text("En llamada")  # type: ignore[attr-defined]
    rung = [r for r in cloud.requests if r.path.endswith(f"/Calls/{call.call_sid}.json")]
    assert rung and "+34600999000" in rung[-1].form["Twiml"][0]  # the caller dialled through
    cloud.stop()
    tab.get_by_role("button", name="Terminar llamada").click()  # type: ignore[attr-defined]
    expect(tab.locator("#wrapup")).to_be_visible()  # type: ignore[attr-defined]
    call.queue_outcome("bridged", talk=40)  # Twilio: the caller talked to the agent
    assert call.heard("nos ayuda a mejorar"), call.transcript()  # the survey is offered
    call.hangup()  # the caller does not answer it
    assert call.ended
    run_jobs(redis_url)  # the call is filed and summarised, as on a server
    summary = tab.get_by_label("Resumen")  # type: ignore[attr-defined]
    expect(summary).to_be_enabled()
    summary.fill("Pidió un duplicado de la factura de octubre; se le enviará por correo.")
    tab.get_by_role("button", name="Guardar resumen").click()  # type: ignore[attr-defined]
    expect(tab.locator("#status")).to_contain_text("Guardado")  # type: ignore[attr-defined]
    shot(tab, shots, "agent-wrap-up.png")
    record = requests.get(f"{server}/api/customers", params={"phone": LUCIA}, headers=admin,
                          timeout=10).json()
    filed = next(c for c in record["calls"] if c["call_sid"] == call.call_sid)
    assert filed["summary"]["status"] == "approved"
    assert filed["summary"]["body"]["text"].startswith("Pidió un duplicado")
    follow_up = tab.get_by_label(re.compile("Abrir un seguimiento"))  # type: ignore[attr-defined]
    follow_up.fill("Enviar duplicado de factura")
    tab.get_by_role("button", name="Abrir un seguimiento").click()  # type: ignore[attr-defined]
    expect(follow_up).to_have_value("")  # cleared once the API created it
    customer = services.get("database").customers.find_by_phone(LUCIA)
    follow_ups = services.get("database").follow_ups.for_customer(customer.id)
    assert any(f["description"] == "Enviar duplicado de factura" for f in follow_ups)
    tab.get_by_role("button", name="Volver a disponible").click()  # type: ignore[attr-defined]
    expect(tab.locator("#state")).to_have_text("Disponible")  # type: ignore[attr-defined]


def test_dashboard_shows_the_queue_changing(server: str, page: object, web_app: Flask,
                                            shots: Path) -> None:
    expect = playwright_api.expect
    tab: object = page
    web_app.extensions["centralita"].get("database").load_demo()
    log_in(tab, server, "sergi")
    expect(tab).to_have_url(re.compile(r"/dashboard$"))  # type: ignore[arg-type]
    call = Simulator(server, "test-token").call(from_=LUCIA, to="+34930001000").start()
    for _ in range(4):
        if call.queue_listening or call.ended:
            break
        call.press("1")
    assert call.queue_listening
    row = tab.locator('#queues tr[data-queue="support"]')  # type: ignore[attr-defined]
    expect(row.locator(".waiting")).to_have_text("1")
    expect(tab.locator("#t-waiting")).to_have_text("1")  # type: ignore[attr-defined]
    shot(tab, shots, "dashboard.png")
    call.hangup()
    expect(row.locator(".waiting")).to_have_text("0")


def _madrid_now() -> datetime:
    return datetime.now(ZoneInfo("Europe/Madrid"))


def test_history_charts_show_the_filed_calls(server: str, page: object, web_app: Flask,
                                             job_env: None, redis_url: str,
                                             shots: Path) -> None:
    """Three real calls through the webhooks, filed by the worker's job, then charted."""
    expect = playwright_api.expect
    simulator = Simulator(server, "test-token")
    for caller in ("+34699000201", "+34699000202"):  # hang up at the language menu
        simulator.call(from_=caller, to="+34930001000").start().hangup()
    third = simulator.call(from_="+34699000203", to="+34930001000").start().press("1")
    assert not third.ended, third.transcript()
    third.hangup()
    run_jobs(redis_url)  # the finalize jobs file the three calls, as the RQ worker does
    admin = {"Authorization": "Bearer admin-secret"}
    today = datetime.now(UTC).date().isoformat()  # the page asks for UTC days too
    report = requests.get(f"{server}/api/reports/kpis", headers=admin, timeout=10,
                          params={"from": today, "to": today, "by": "day"}).json()
    day = next(r for r in report["rows"] if r["group"] == "day" and r["key"] == today)
    assert day["calls"] == 3
    menu = next(s for s in report["funnel"] if s["node"] == "choose_language")
    assert (menu["flow"], menu["reached"], menu["dropped"]) == ("demo", 3, 2)
    later = [s for s in report["funnel"] if s["node"] != "choose_language" and s["dropped"]]
    assert sum(s["dropped"] for s in later) == 1

    tab: object = page
    log_in(tab, server, "sergi")
    bar = tab.locator("#h-day .bar", has_text=today)  # type: ignore[attr-defined]
    expect(bar).to_have_count(1)
    expect(bar.locator("span").last).to_have_text("3")
    funnel = tab.locator("#h-funnel .bar", has_text="demo · choose_language (3)")  # type: ignore[attr-defined]
    expect(funnel.locator("span").last).to_have_text("2")
    tab.locator("#history-h").scroll_into_view_if_needed()  # type: ignore[attr-defined]
    shot(tab, shots, "dashboard-history.png")


def _hours_excluding(now: datetime) -> str:
    """An opening range today that does not include ``now`` (nor crosses midnight)."""
    start = (now.hour + 2) % 24
    return f"{start:02d}:00-{start:02d}:59"


def _call_hears_closed(server: str) -> bool:
    call = Simulator(server, "test-token").call(from_="+34699000300", to="+34930001000")
    call.start().press("1")  # Spanish, then the flow checks the line's hours
    closed = call.heard("En este momento estamos cerrados")
    call.hangup()
    return closed


DAY_LABELS = ("Lunes", "Martes", "Miércoles", "Jueves", "Viernes", "Sábado", "Domingo")


def test_admin_changes_business_hours_and_new_calls_follow(server: str, page: object,
                                                          web_app: Flask, flows_dir: Path,
                                                          shots: Path) -> None:
    expect = playwright_api.expect
    tab: object = page
    log_in(tab, server, "ana")
    tab.get_by_role("link", name="Líneas y horarios").click()  # type: ignore[attr-defined]
    tab.get_by_role("link", name="Editar support").click()  # type: ignore[attr-defined]
    flash = tab.locator("p.flash")  # type: ignore[attr-defined]

    for label in DAY_LABELS:  # open all day, every day
        tab.get_by_label(label, exact=True).fill("00:00-24:00")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Guardar y publicar").click()  # type: ignore[attr-defined]
    expect(flash).to_contain_text("publicada")
    assert not _call_hears_closed(server)

    # A typo is shown next to its field; nothing is saved.
    tab.get_by_label("Martes", exact=True).fill("09:00-14:00, 18:00-16:00")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Guardar borrador").click()  # type: ignore[attr-defined]
    expect(tab.locator("#hours_tue-error")).to_contain_text("'18:00-16:00' is not a range")  # type: ignore[attr-defined]
    expect(tab.get_by_label("Martes", exact=True)).to_have_attribute("aria-invalid", "true")  # type: ignore[attr-defined]

    # New hours that leave out the present moment, and a named holiday added in place.
    window = _hours_excluding(_madrid_now())
    for label in DAY_LABELS:
        tab.get_by_label(label, exact=True).fill(window)  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Añadir un festivo").click()  # type: ignore[attr-defined]
    tab.locator("#holiday-table tbody tr").last.locator("input[type=date]").fill("2026-12-31")  # type: ignore[attr-defined]
    tab.locator("#holiday-table tbody tr").last.locator("input[name=holiday_name]").fill("Nochevieja")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Guardar y publicar").click()  # type: ignore[attr-defined]
    expect(flash).to_contain_text("publicada")
    expect(tab.get_by_label("Lunes", exact=True)).to_have_value(window)  # type: ignore[attr-defined]
    expect(tab.locator('input[name=holiday_name][value="Nochevieja"]')).to_have_count(1)  # type: ignore[attr-defined]
    registry = web_app.extensions["centralita"].get("flows")
    assert not registry.line("support").hours.is_open(_madrid_now())
    assert "- 2026-12-31  # Nochevieja" in (flows_dir / "lines.yaml").read_text("utf-8")
    assert _call_hears_closed(server)  # the next call hears the closed message
    tab.locator("#hours").scroll_into_view_if_needed()  # type: ignore[attr-defined]
    shot(tab, shots, "admin-lines.png")

    # Roll back to the first (shipped) version from the versions table.
    tab.locator("table.versions tbody tr").last.get_by_role("button").click()  # type: ignore[attr-defined]
    expect(flash).to_contain_text("publicada")
    assert "Nochevieja" not in (flows_dir / "lines.yaml").read_text("utf-8")


def test_admin_adds_a_line_and_its_number_is_answered_by_its_flow(
        server: str, page: object, web_app: Flask, flows_dir: Path, shots: Path) -> None:
    expect = playwright_api.expect
    tab: object = page
    log_in(tab, server, "ana")
    tab.get_by_role("link", name="Líneas y horarios").click()  # type: ignore[attr-defined]
    tab.get_by_role("link", name="Añadir una línea").click()  # type: ignore[attr-defined]
    tab.get_by_label("Nombre de la línea").fill("ventas")  # type: ignore[attr-defined]
    tab.get_by_label("Números").fill("930 001 002")  # type: ignore[attr-defined]
    tab.get_by_label("Idiomas").fill("en, es")  # type: ignore[attr-defined]
    tab.get_by_label("Idioma por defecto").select_option("en")  # type: ignore[attr-defined]
    tab.get_by_label("Abierto 24 horas").check()  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Guardar y publicar").click()  # type: ignore[attr-defined]
    expect(tab.locator("p.flash")).to_contain_text("Línea ventas añadida y publicada")  # type: ignore[attr-defined]
    expect(tab.get_by_label("Números")).to_have_value("+34930001002")  # type: ignore[attr-defined]
    shot(tab, shots, "admin-line-new.png")
    # A call placed the way Twilio places it, to the new number: the new line's flow in
    # English straight away (the default line would ask for a language first).
    call = Simulator(server, "test-token").call(from_="+34699000400", to="+34930001002").start()
    assert call.heard("Welcome to Centralita customer service."), call.transcript()
    assert not call.heard("Para español, pulse 1")
    call.hangup()
    assert "  ventas:" in (flows_dir / "lines.yaml").read_text("utf-8")
    # Removing it says where its number goes; the next call gets the default line.
    tab.get_by_role("link", name="Quitar ventas").click()  # type: ignore[attr-defined]
    expect(tab.locator("#remove-consequence")).to_contain_text("+34930001002")  # type: ignore[attr-defined]
    expect(tab.locator("#remove-consequence")).to_contain_text("support")  # type: ignore[attr-defined]
    tab.get_by_role("button", name="Quitar y publicar").click()  # type: ignore[attr-defined]
    expect(tab.locator("p.flash")).to_contain_text("línea por defecto, support")  # type: ignore[attr-defined]
    again = Simulator(server, "test-token").call(from_="+34699000401", to="+34930001002").start()
    assert again.heard("Para español, pulse 1"), again.transcript()
    again.hangup()


def test_admin_sets_queue_rules_applied_without_restart(server: str, page: object,
                                                        web_app: Flask, shots: Path) -> None:
    expect = playwright_api.expect
    tab: object = page
    store = web_app.extensions["centralita"].get("queue")
    log_in(tab, server, "ana")
    tab.get_by_role("link", name="Reglas de colas").click()  # type: ignore[attr-defined]
    expect(tab.locator("#queues-file")).to_contain_text("IVR_QUEUES_FILE")  # type: ignore[attr-defined]
    new = tab.locator("#queue-new")  # type: ignore[attr-defined]
    new.get_by_label("Nombre de la cola").fill("support")
    new.get_by_label("Tiempo de cierre").fill("45")
    new.get_by_label("Tras (s) 1").fill("90")
    new.get_by_label("Desbordar a la cola 1").fill("general")
    new.get_by_role("button", name="Añadir un paso").click()
    new.get_by_label("Tras (s) 2").fill("600")
    new.get_by_label("Ofrecer buzón de voz 2").select_option("yes")
    tab.get_by_role("button", name="Guardar y publicar").click()  # type: ignore[attr-defined]
    expect(tab.locator("p.flash")).to_contain_text("el enrutador aplica estas reglas")  # type: ignore[attr-defined]
    support = store.rules().for_queue("support")  # live, in the running router's store
    assert support.wrap_up_s == 45.0
    assert [(s.after_s, s.overflow_to, s.offer_voicemail) for s in support.steps] == [
        (90.0, "general", False), (600.0, None, True)]
    expect(tab.locator("#queue-support")).to_be_visible()  # type: ignore[attr-defined]
    shot(tab, shots, "admin-queues.png")


def test_admin_edits_a_prompt_in_the_table(server: str, page: object, web_app: Flask,
                                           flows_dir: Path) -> None:
    expect = playwright_api.expect
    tab: object = page
    log_in(tab, server, "ana")
    tab.goto(server + "/admin/flows/demo")  # type: ignore[attr-defined]
    box = tab.get_by_label("welcome prompt ca", exact=True)  # type: ignore[attr-defined]
    expect(box).to_have_value("Benvingut al servei d'atenció al client de Centralita.")
    box.fill("Benvinguts a Centralita!")
    tab.get_by_role("button", name="Guardar textos como borrador").click()  # type: ignore[attr-defined]
    expect(tab.locator("#status")).to_contain_text("borrador")  # type: ignore[attr-defined]
    editor = tab.get_by_label("Editor demo")  # type: ignore[attr-defined]
    expect(editor).to_have_value(re.compile(r'\n      ca: "Benvinguts a Centralita!"\n'))
    expect(tab.locator("#problems li.ok")).to_be_visible()  # type: ignore[attr-defined]
    newest = tab.locator("#versions tbody tr").first  # type: ignore[attr-defined]
    expect(newest).to_contain_text("ana")
    expect(newest).to_contain_text("borrador")
    assert "Benvinguts a Centralita!" not in (flows_dir / "demo.yaml").read_text("utf-8")
