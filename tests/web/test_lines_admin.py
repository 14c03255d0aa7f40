"""/admin/lines: the line form (hours, holidays), its errors, versions, publish, roll back."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient

from call_flows.hours import DAYS
from tests.web.conftest import login

MADRID = ZoneInfo("Europe/Madrid")


def form_data(token: str, **changes: Any) -> dict[str, Any]:
    """The support line's shipped values as the browser posts them, with ``changes``."""
    data: dict[str, Any] = {
        "csrf_token": token, "numbers": "+34930001000", "flow": "demo", "language": "",
        "languages": "es, ca, en", "timezone": "Europe/Madrid", "action": "draft",
        **{f"hours_{d}": "09:00-18:00" for d in DAYS[:5]}, "hours_sat": "10:00-14:00",
        "hours_sun": "", "holiday_date": ["2026-01-01", "2026-01-06", ""],
        "holiday_name": ["Año Nuevo", "Reyes", ""],
    }
    data.update(changes)
    return data


def _lines(flows_dir: Path) -> str:
    return (flows_dir / "lines.yaml").read_text(encoding="utf-8")


def test_the_form_shows_each_day_and_holiday(web_client: FlaskClient) -> None:
    login(web_client, "ana")
    index = web_client.get("/admin/lines").get_data(as_text=True)
    assert 'href="/admin/lines/catalunya"' in index and "+442071838750" in index
    html = web_client.get("/admin/lines/support").get_data(as_text=True)
    assert re.search(r'id="hours_mon" name="hours_mon" value="09:00-18:00"', html)
    assert re.search(r'id="hours_sat" name="hours_sat" value="10:00-14:00"', html)
    assert re.search(r'id="hours_sun" name="hours_sun" value=""', html)
    assert html.count('name="holiday_date"') == 12 + 1  # the shipped dates and a blank row
    assert '<label for="timezone">' in html and 'value="Europe/Madrid"' in html


def test_field_errors_are_shown_next_to_their_field(web_client: FlaskClient,
                                                    flows_dir: Path) -> None:
    token = login(web_client, "ana")
    before = _lines(flows_dir)
    answer = web_client.post("/admin/lines/support", data=form_data(
        token, hours_tue="09:00-14:00, 18:00-16:00", timezone="Europe/Madird",
        numbers="+34930001000, 12", holiday_date=["2026-02-30", ""], holiday_name=["x", ""]))
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    for field, text in [("hours_tue", "&#39;18:00-16:00&#39; is not a range"),
                        ("timezone", "unknown time zone &#39;Europe/Madird&#39;"),
                        ("numbers", "&#39;12&#39; is not a phone number"),
                        ("holiday_0", "&#39;2026-02-30&#39; is not a date")]:
        assert re.search(rf'id="{field}-error">[^<]*{text}', html), field
    assert re.search(r'id="hours_tue"[^>]*aria-describedby="hours-help hours_tue-error"\s*'
                     r'aria-invalid="true"', html)
    assert 'value="09:00-14:00, 18:00-16:00"' in html  # what was typed is kept
    assert _lines(flows_dir) == before


def test_a_problem_only_the_validator_finds_is_shown_too(web_client: FlaskClient,
                                                         flows_dir: Path) -> None:
    token = login(web_client, "ana")
    answer = web_client.post("/admin/lines/support",
                             data=form_data(token, numbers="+34930001000, +34930001001"))
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    problems = re.search(r'id="form-problems">(.*?)</div>', html, re.DOTALL)
    assert problems and "number +34930001001 belongs to both lines" in problems.group(1)
    assert "lines.yaml:" in problems.group(1)  # with the file and line, as the CLI says


def test_save_publish_and_roll_back_hours(web_client: FlaskClient, web_app: Flask,
                                          flows_dir: Path) -> None:
    token = login(web_client, "ana")
    registry = web_app.extensions["centralita"].get("flows")
    shipped = _lines(flows_dir)
    saturday_evening = datetime(2026, 3, 7, 17, 30, tzinfo=MADRID)
    assert not registry.line("support").hours.is_open(saturday_evening)

    saved = web_client.post("/admin/lines/support", data=form_data(
        token, hours_sat="10:00-14:00, 16:00-19:00",
        holiday_date=["2026-01-01", "2026-03-09", ""],
        holiday_name=["Año Nuevo", "Fiesta local: Sant Jordi # no es un comentario", ""]))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert _lines(flows_dir) == shipped  # a draft changes nothing yet
    assert not registry.line("support").hours.is_open(saturday_evening)
    html = web_client.get("/admin/lines/support").get_data(as_text=True)
    assert 'value="10:00-14:00, 16:00-19:00"' in html  # the form shows the draft
    number = int(re.findall(r'<tr data-version="(\d+)">', html)[0])

    published = web_client.post(f"/admin/lines/versions/{number}/publish",
                                data={"csrf_token": token, "back": "support"})
    assert published.status_code == 302
    hours = registry.line("support").hours
    assert hours.is_open(saturday_evening)  # new calls get the new hours at once
    assert hours.holidays == frozenset({date(2026, 1, 1), date(2026, 3, 9)})
    text = _lines(flows_dir)
    assert 'sat: ["10:00-14:00", "16:00-19:00"]' in text
    assert "- 2026-03-09  # Fiesta local: Sant Jordi # no es un comentario" in text
    assert "# Which flow answers which dialled number" in text  # the file's comments stay
    assert text.split("  catalunya:")[1] == shipped.split("  catalunya:")[1]  # others too
    html = web_client.get("/admin/lines/support").get_data(as_text=True)
    assert 'value="Fiesta local: Sant Jordi # no es un comentario"' in html

    database = web_app.extensions["centralita"].get("database")
    versions = database.flows.versions("@lines")
    assert [(v["author"], v["published"]) for v in versions] == [("file", False),
                                                                 ("ana", True)]
    rolled = web_client.post(f"/admin/lines/versions/{versions[0]['version']}/publish",
                             data={"csrf_token": token})
    assert rolled.status_code == 302
    assert _lines(flows_dir) == shipped
    assert not registry.line("support").hours.is_open(saturday_evening)
    actions = [e["action"] for e in database.audit.entries("config", "@lines")]
    assert actions == ["config.save", "config.publish", "config.publish"]


def test_save_and_publish_in_one_step_and_open_all_day(web_client: FlaskClient,
                                                      web_app: Flask) -> None:
    token = login(web_client, "ana")
    answer = web_client.post("/admin/lines/international", data=form_data(
        token, numbers="+442071838750", language="en", languages="en, es, ca",
        always_open="1", action="publish"), follow_redirects=True)
    assert answer.status_code == 200
    assert "publicada" in answer.get_data(as_text=True)
    line = web_app.extensions["centralita"].get("flows").line("international")
    assert line.hours.always_open and line.language == "en"


def test_only_admins_edit_lines(web_client: FlaskClient) -> None:
    token = login(web_client, "sergi")
    assert web_client.get("/admin/lines").status_code == 403
    assert web_client.post("/admin/lines/support", data=form_data(token)).status_code == 403


def test_keys_the_form_does_not_show_are_kept(web_client: FlaskClient, web_app: Flask,
                                              flows_dir: Path) -> None:
    token = login(web_client, "ana")
    path = flows_dir / "lines.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "    flow: demo\n    language: en\n",
        "    flow: demo\n    language: en\n    record_calls: false  # not yet\n", 1),
        encoding="utf-8")
    answer = web_client.post("/admin/lines/international", data=form_data(
        token, numbers="+442071838750", language="en", languages="en, es, ca",
        action="publish"))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    block = path.read_text(encoding="utf-8").split("  international:")[1]
    assert "record_calls: false" in block and 'voices: {es: "Polly.Lucia"' in block
    line = web_app.extensions["centralita"].get("flows").line("international")
    assert line.region == "GB" and line.voice("en") == "Polly.Amy"


def new_line_data(token: str, **changes: Any) -> dict[str, Any]:
    """A new English line, open all day, as the "new line" form posts it."""
    values: dict[str, Any] = {"name": "ventas", "numbers": "930 001 002", "language": "en",
                              "languages": "en, es", "always_open": "1", "action": "publish",
                              "holiday_date": [""], "holiday_name": [""]}
    return form_data(token, **{**values, **changes})


def test_add_a_line_that_answers_its_number(web_client: FlaskClient, web_app: Flask,
                                            flows_dir: Path) -> None:
    token = login(web_client, "ana")
    blank = web_client.get("/admin/lines/new").get_data(as_text=True)
    assert '<label for="name">' in blank and 'id="name" name="name" value=""' in blank
    assert re.search(r'id="hours_mon" name="hours_mon" value="09:00-18:00"', blank)  # default's
    registry = web_app.extensions["centralita"].get("flows")
    assert registry.line_for("+34930001002").name == "support"  # nobody's number yet
    shipped = _lines(flows_dir)

    answer = web_client.post("/admin/lines/new", data=new_line_data(token))
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/lines/ventas")
    line = registry.line_for("+34930001002")  # written as E.164, answered by the new line
    assert (line.name, line.flow, line.language, line.languages) == ("ventas", "demo", "en",
                                                                     ("en", "es"))
    assert line.hours.always_open and line.voice("en") == "Polly.Amy"  # voices: the default's
    text = _lines(flows_dir)
    assert text.startswith(shipped.rstrip("\n")) and text.rstrip().endswith("locales: "
                                                                            '{es: "es-ES", ca: "ca-ES", en: "en-GB"}')
    page = web_client.get("/admin/lines/ventas").get_data(as_text=True)
    assert "publicada" in page and 'value="+34930001002"' in page
    index = web_client.get("/admin/lines").get_data(as_text=True)
    assert 'href="/admin/lines/ventas/remove"' in index
    assert 'href="/admin/lines/support/remove"' not in index  # the default line stays


def test_a_new_line_is_checked_field_by_field(web_client: FlaskClient, flows_dir: Path) -> None:
    token = login(web_client, "ana")
    before = _lines(flows_dir)
    cases = [({"name": "Ventas!"}, "name", "a line name is 1-40 lower-case letters"),
             ({"name": "support"}, "name", "there is already a line &#39;support&#39;"),
             ({"name": "new"}, "name", "not &#39;new&#39;"),
             ({"numbers": ""}, "numbers", "give the number(s) this line answers"),
             ({"languages": "en, ko"}, "languages", "does not speak ko")]
    for changes, field, text in cases:
        answer = web_client.post("/admin/lines/new", data=new_line_data(token, **changes))
        assert answer.status_code == 400, changes
        html = answer.get_data(as_text=True)
        assert re.search(rf'id="{field}-error">[^<]*{re.escape(text)}', html), (field, html)
        assert 'action="/admin/lines/new"' in html  # still the new-line form
    taken = web_client.post("/admin/lines/new", data=new_line_data(token, numbers="+34930001001"))
    assert taken.status_code == 400
    assert "number +34930001001 belongs to both lines" in taken.get_data(as_text=True)
    assert _lines(flows_dir) == before
    assert not web_app_versions(web_client)


def web_app_versions(client: FlaskClient) -> list[Any]:
    database = client.application.extensions["centralita"].get("database")
    return [v for v in database.flows.versions("@lines") if v["author"] != "file"]


def test_remove_a_line_its_numbers_go_to_the_default(web_client: FlaskClient, web_app: Flask,
                                                     flows_dir: Path) -> None:
    token = login(web_client, "ana")
    registry = web_app.extensions["centralita"].get("flows")
    shipped = _lines(flows_dir)
    confirm = web_client.get("/admin/lines/catalunya/remove").get_data(as_text=True)
    consequence = re.search(r'id="remove-consequence">([^<]*)<', confirm)
    assert consequence and "+34930001001" in consequence.group(1)
    assert "support" in consequence.group(1)

    done = web_client.post("/admin/lines/catalunya/remove",
                           data={"csrf_token": token, "action": "publish"},
                           follow_redirects=True)
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and re.search(
        r'class="flash"[^>]*>Línea catalunya quitada y publicada[^<]*\+34930001001[^<]*'
        r'línea por defecto, support', html)
    assert registry.line("catalunya") is None
    assert registry.line_for("+34930001001").name == "support"
    text = _lines(flows_dir)
    assert "catalunya" not in text and "# Which flow answers" in text
    before, rest = shipped.split("  catalunya:")
    assert text == before + "  international:" + rest.split("  international:")[1]  # just it

    draft = web_client.post("/admin/lines/international/remove",
                            data={"csrf_token": token, "action": "draft"})
    assert draft.status_code == 302 and _lines(flows_dir) == text  # a draft changes nothing
    assert registry.line_for("+442071838750").name == "international"
    index = web_client.get("/admin/lines").get_data(as_text=True)
    assert "international" not in index.split('id="lines"')[1].split("</table>")[0]  # the draft
    number = int(re.findall(r'<tr data-version="(\d+)">', index)[0])
    web_client.post(f"/admin/lines/versions/{number}/publish", data={"csrf_token": token})
    assert registry.line_for("+442071838750").name == "support"


def test_the_default_or_only_line_cannot_be_removed(web_client: FlaskClient,
                                                    flows_dir: Path) -> None:
    token = login(web_client, "ana")
    shipped = _lines(flows_dir)
    for method in ("get", "post"):
        answer = getattr(web_client, method)("/admin/lines/support/remove",
                                             data={"csrf_token": token, "action": "publish"})
        assert answer.status_code == 409
        refused = re.search(r'id="remove-refused">(.*?)</div>', answer.get_data(as_text=True),
                            re.DOTALL)
        assert refused and "&#39;support&#39; is the default line" in refused.group(1)
    assert _lines(flows_dir) == shipped
    for name in ("catalunya", "international"):
        web_client.post(f"/admin/lines/{name}/remove",
                        data={"csrf_token": token, "action": "publish"})
    path = flows_dir / "lines.yaml"
    path.write_text(_lines(flows_dir).replace("    default: true\n", ""), encoding="utf-8")
    only = web_client.post("/admin/lines/support/remove",
                           data={"csrf_token": token, "action": "publish"})
    assert only.status_code == 409
    assert "&#39;support&#39; is the only line" in only.get_data(as_text=True)
    assert "  support:" in _lines(flows_dir)
    assert web_client.get("/admin/lines/nothere/remove").status_code == 404


def test_two_admins_editing_at_once_the_later_save_is_refused_not_lost(
        web_client: FlaskClient, web_app: Flask, flows_dir: Path) -> None:
    token = login(web_client, "ana")
    page = web_client.get("/admin/lines/support").get_data(as_text=True)
    base = re.search(r'name="base_version" value="([^"]*)"', page)
    assert base is not None  # both admins opened the form on this version
    first = web_client.post("/admin/lines/support", data=form_data(
        token, base_version=base[1], hours_sat="10:00-13:00"))
    assert first.status_code == 302  # the first save lands
    second = web_client.post("/admin/lines/support", data=form_data(
        token, base_version=base[1], hours_sun="10:00-12:00"))
    assert second.status_code == 409  # built on the old version: refused, with the reason
    assert "mientras usted editaba" in second.get_data(as_text=True)
    newest = web_client.get("/admin/lines/support").get_data(as_text=True)
    assert "10:00-13:00" in newest and "10:00-12:00" not in newest  # the first change stands
