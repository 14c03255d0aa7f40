"""The call-list side of the fake Twilio cloud (mixed into ``tests.fakes.FakeTwilioCloud``).

``GET /2010-04-01/Accounts/{sid}/Calls.json`` as Twilio answers it: filters ``Status``
(one value), ``To`` and ``From``; pages of ``PageSize`` (default 50, at most 1000),
newest first, each page naming the next one in ``next_page_uri`` (a path on the API
host with ``Page`` and ``PageToken``), ``null`` on the last page. A bad ``Status`` is a
400 with code 20001, as on Twilio.

Also here: calls the fake "already holds" (inbound calls Twilio has live, for
reconciliation tests) and a gate that holds ``POST Calls.json`` after the call was
created and before the answer, so a test can kill the client mid-request.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tests.fakes_http import _error, _json

STATUSES = ("queued", "ringing", "in-progress", "canceled", "completed", "failed", "busy",
            "no-answer")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass
class CreateGate:
    """Holds every ``POST Calls.json`` answer until :meth:`release` (the call itself is
    created at once, as Twilio creates it before a slow answer reaches the client)."""

    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    timeout_s: float = 30.0

    def release(self) -> None:
        self.released.set()


class CallListing:
    """Mixin: needs ``calls``, ``account_sid``, ``_lock``, ``_call_json`` and ``FakeCall``."""

    calls: dict[str, Any]
    account_sid: str
    _lock: threading.RLock
    _gate: CreateGate | None = None

    # ------------------------------------------------------------------ test controls

    def hold_creates(self, timeout_s: float = 30.0) -> CreateGate:
        """From now on, outbound-call requests are answered only once released."""
        self._gate = CreateGate(timeout_s=timeout_s)
        return self._gate

    def add_live_call(self, sid: str | None = None, status: str = "in-progress",
                      to: str = "+34910000000", from_: str = "+34600000001") -> str:
        """A call Twilio holds that did not come through the fake (an inbound call)."""
        from tests.fakes import FakeCall

        if status not in STATUSES:
            raise ValueError(f"unknown call status {status!r}")
        call = FakeCall(sid or "CA" + uuid.uuid4().hex, to, from_, None, "POST", None, None,
                        status=status)
        with self._lock:
            self.calls[call.sid] = call
        return call.sid

    def set_status(self, sid: str, status: str) -> None:
        """The call moved on at Twilio's end (e.g. the caller hung up: ``completed``)."""
        if status not in STATUSES:
            raise ValueError(f"unknown call status {status!r}")
        with self._lock:
            self.calls[sid].status = status

    def _created(self) -> None:
        """The call exists; its answer is held (by :meth:`_hold_answer`, after the fake's
        lock is let go: Twilio answers other requests meanwhile, e.g. the call list)."""
        gate = self._gate
        if gate is not None:
            gate.arrived.set()
            self._held_here().gate = gate

    def _held_here(self) -> threading.local:
        held = self.__dict__.get("_held")
        if held is None:
            held = self.__dict__.setdefault("_held", threading.local())
        return held

    def _hold_answer(self) -> None:
        held = self._held_here()
        gate, held.gate = getattr(held, "gate", None), None
        if gate is not None:
            gate.released.wait(gate.timeout_s)

    # ------------------------------------------------------------------ the list route

    def _status_of(self, call: Any) -> str:
        sim = call.simulation
        if sim is not None and not sim.ended and sim.answered:
            return "in-progress"
        return str(call.status)

    def _route_calls_list(self, request: Request) -> Response:
        args = request.args
        status = args.get("Status")
        if status is not None and status not in STATUSES:
            return _error(400, 20001, f"Invalid Status: {status}")
        try:
            size = int(args.get("PageSize", DEFAULT_PAGE_SIZE))
            page = int(args.get("Page", 0))
        except ValueError:
            return _error(400, 20001, "PageSize and Page must be integers")
        if not 1 <= size <= MAX_PAGE_SIZE or page < 0:
            return _error(400, 20001, f"PageSize must be 1..{MAX_PAGE_SIZE}")
        with self._lock:
            chosen = [c for c in reversed(list(self.calls.values()))  # newest first
                      if (status is None or self._status_of(c) == status)
                      and (not args.get("To") or c.to == args["To"])
                      and (not args.get("From") or c.from_ == args["From"])]
            rows = [{**self._call_json(c), "status": self._status_of(c)}  # type: ignore[attr-defined]
                    for c in chosen[page * size:(page + 1) * size]]
        base = f"/2010-04-01/Accounts/{self.account_sid}/Calls.json"
        keep = [(k, v) for k, v in (("Status", status), ("To", args.get("To")),
                                    ("From", args.get("From"))) if v]

        def uri(n: int) -> str:
            extra = [("PageToken", "PA" + uuid.uuid5(uuid.NAMESPACE_URL, f"{n}").hex)] if n else []
            return base + "?" + urlencode(keep + [("PageSize", size), ("Page", n)] + extra)

        more = (page + 1) * size < len(chosen)
        return _json(200, {
            "calls": rows, "page": page, "page_size": size, "start": page * size,
            "end": page * size + max(0, len(rows) - 1), "uri": uri(page),
            "first_page_uri": uri(0), "next_page_uri": uri(page + 1) if more else None,
            "previous_page_uri": uri(page - 1) if page else None,
        })
