"""The worker follows edits of lines.yaml as the web processes do: the business hours
and the caller ID of each line's callbacks are the ones on disk now, not at start."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from call_flows.registry import DEFAULT_DIR
from ivr.settings import Settings
from ivr.worker import install_queueing
from queueing import jobs

MONDAY_11 = datetime(2026, 11, 23, 11, 0, tzinfo=ZoneInfo("Europe/Madrid")).timestamp()


def test_an_edit_of_the_lines_reaches_the_worker_without_a_restart(
        tmp_path: Path, settings: Settings) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(DEFAULT_DIR, flows)
    settings = settings.with_(flows_dir=flows, twilio_account_sid="AC" + "1" * 32,
                              public_url="https://ivr.example")
    try:
        _, is_open, sync = install_queueing(settings, watch=False)
        assert is_open(MONDAY_11)["international"]  # Mon-Fri 09:00-18:00
        config = jobs._CONTEXT.config
        assert config is not None and config.caller_id("international") == "+442071838750"
        lines = flows / "lines.yaml"
        text = lines.read_text(encoding="utf-8")
        edited = text.replace('numbers: ["+442071838750"]', 'numbers: ["+442071838751"]')
        edited = edited.replace('''    hours:
      mon-fri: "09:00-18:00"
    voices''', '''    hours:
      tue-fri: "09:00-18:00"
    voices''')
        assert edited.count("+442071838751") == 1 and "tue-fri" in edited
        lines.write_text(edited, encoding="utf-8")
        sync.check()  # what the watcher thread does every 2 s
        state = is_open(MONDAY_11)
        assert not state["international"] and state["support"]  # closed on Mondays now
        assert config.caller_id("international") == "+442071838751"
        assert config.caller_id("renamed-away") == "+34930001000"  # the default line's
    finally:
        jobs.install(None, None)
