"""A changed flow file affects new calls only, in this process and in others."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.app import create_app
from ivr.settings import Settings
from ivr.simulator import Simulator, TestClientTransport
from tests.ivr.conftest import AUTH_TOKEN, BASE

DEFINITIONS = Path(__file__).resolve().parents[2] / "call_flows" / "definitions"
OPEN = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo("Europe/Madrid")).timestamp


def make(settings: Settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    app.extensions["centralita"].components["calls"].clock = OPEN
    return app, Simulator(BASE, AUTH_TOKEN, transport=TestClientTransport(app.test_client()))


def test_edit_takes_effect_for_new_calls_only_across_workers(settings: Settings,
                                                             tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(DEFINITIONS, flows)
    settings = settings.with_(flows_dir=flows)
    app, sim = make(settings)
    sync = app.extensions["centralita"].components["flow_sync"]
    sync.archive()
    old = sim.call(from_="+34699000111", to="+34930001000").start()
    old.press("1")
    assert old.heard("Bienvenido al servicio de atención al cliente de Centralita.")

    demo = flows / "demo.yaml"
    text = demo.read_text()
    shipped = re.search(r'^version: "([^"]+)"', text, re.MULTILINE)
    assert shipped is not None
    demo.write_text(text.replace(f'version: "{shipped[1]}"', 'version: "edited-by-test"')
                        .replace("Bienvenido al servicio de atención al cliente de Centralita.",
                                 "Bienvenido a la nueva Centralita."))
    assert sync.check() == ["demo"]

    new = sim.call(from_="+34699000222", to="+34930001000").start()
    new.press("1")
    assert new.heard("Bienvenido a la nueva Centralita.")

    # A worker started after the edit never loaded the old version: it finds it in Redis
    # and the call in progress finishes on the flow it started with.
    other_app, _ = make(settings)
    old.transport = TestClientTransport(other_app.test_client())
    old.press("*")
    assert old.heard("¿En qué podemos ayudarle?")
    registry = other_app.extensions["centralita"].components["flows"]
    assert shipped[1] in registry.versions("demo")


def test_broken_edit_is_refused_and_running_flows_stay(settings: Settings,
                                                       tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    flows = tmp_path / "flows"
    shutil.copytree(DEFINITIONS, flows)
    app, sim = make(settings.with_(flows_dir=flows))
    sync = app.extensions["centralita"].components["flow_sync"]
    (flows / "demo.yaml").write_text((flows / "demo.yaml").read_text()
                                     .replace("next: check_hours", "next: nowhere"))
    assert sync.check() == []
    assert "demo.yaml:" in caplog.text and "nowhere" in caplog.text
    call = sim.call(from_="+34699000111", to="+34930001000").start()
    call.press("1")
    assert call.heard("¿En qué podemos ayudarle?") or call.heard("número de cliente")
