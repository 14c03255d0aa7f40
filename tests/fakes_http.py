"""The fake Twilio cloud's answers, shaped as Twilio shapes them (JSON bodies, error
objects with ``code``, ``message``, ``status`` and ``more_info``)."""

from __future__ import annotations

import json
import re
from typing import Any

from werkzeug.wrappers import Response


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _relative_url(twiml: str) -> bool:
    """Does inline TwiML hold a relative URL (an action, a <Redirect>/<Play> body)?"""
    return bool(re.search(r'\b(action|url|waitUrl|statusCallback|recordingStatusCallback)="/',
                          twiml) or re.search(r"<(Redirect|Play)\b[^>]*>/", twiml))


def _error(status: int, code: int | None, message: str) -> Response:
    body: dict[str, Any] = {"code": code, "message": message, "status": status,
                            "more_info": f"https://www.twilio.com/docs/errors/{code}"
                            if code else None}
    return _json(status, body)


def _not_found(path: str) -> Response:
    return _error(404, 20404, f"The requested resource {path} was not found")
