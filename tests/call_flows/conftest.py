"""Fixtures for flow tests: the shipped registry, customers, and tiny registries."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from call_flows.actions import CustomerInfo
from call_flows.registry import FlowRegistry
from call_flows.testing import FlowHarness

MARTA = CustomerInfo(id="c1", name="Marta Puig", language="ca", vip=False, account="123456",
                     fields={"order_status": "enviada"})
JOHN = CustomerInfo(id="c2", name="John Smith", language="en", vip=True, account="654321",
                    open_follow_up="the broken router", fields={})
LUCIA = CustomerInfo(id="c3", name="Lucía García", language=None, account="111111",
                     fields={"order_status": "en preparación"})

LINES = """\
lines:
  main:
    default: true
    numbers: ["+34930000000"]
    flow: {flow}
    languages: {languages}
    language: {language}
    timezone: Europe/Madrid
    hours:
      mon-fri: "09:00-18:00"
"""


@pytest.fixture(scope="session")
def registry() -> FlowRegistry:
    return FlowRegistry.load()


@pytest.fixture()
def harness(registry: FlowRegistry) -> FlowHarness:
    return FlowHarness(registry, customers=[MARTA, JOHN, LUCIA])


@pytest.fixture()
def make_registry(tmp_path: Path) -> Callable[..., FlowRegistry]:
    """Write one flow (plus a lines.yaml pointing at it) and load it."""
    def build(flow_text: str, language: str = "es", languages: str = "[es]",
              **more: str) -> FlowRegistry:
        flow_text = textwrap.dedent(flow_text)
        flow_id = next(line.split(":", 1)[1].strip() for line in flow_text.splitlines()
                       if line.startswith("flow:"))
        (tmp_path / f"{flow_id}.yaml").write_text(flow_text, encoding="utf-8")
        for name, text in more.items():
            (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        (tmp_path / "lines.yaml").write_text(LINES.format(flow=flow_id, language=language,
                                                          languages=languages))
        return FlowRegistry.load(tmp_path)
    return build
