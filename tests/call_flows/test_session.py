"""Session serialisation: every field survives the round trip through the sealed URL."""

from __future__ import annotations

import dataclasses

from call_flows.actions import CustomerInfo
from call_flows.session import Session


def test_round_trip_with_every_field_set() -> None:
    session = Session(
        call_sid="CA1", caller="+34600000001", called="+34930001000", line="support",
        flow="demo", flow_version="v2", node="main_menu", language="ca",
        customer=CustomerInfo(id="7", name="Jordi", language="ca", vip=True, account="100002",
                              open_follow_up="devolució", fields={"order_status": "enviat"}),
        vars={"account": "100002"}, attempts=2, seq=9, pending={"confirm": "billing"},
        stack=("password_help:start",), ended=True, outcome="queued")
    data = session.to_dict()
    assert set(data) == {f.name for f in dataclasses.fields(Session)}
    assert Session.from_dict(data) == session
