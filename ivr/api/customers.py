"""`GET /api/customers?phone=` and `GET /api/customers/<id>`: a customer for agents.

The answer is the record with its ``calls`` (each with ``call_sid`` and its
``summary``: the approved version, else the newest draft) and ``follow_ups``.
Every read is written to the audit log (who looked at whom).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from ivr.auth import api_auth
from ivr.services import current
from recordings.customers import normalise_phone
from recordings.errors import InvalidPhone

bp = Blueprint("api_customers", __name__, url_prefix="/api/customers")


def _error(status: int, error: str, detail: str) -> Any:
    response = jsonify(error=error, detail=detail)
    response.status_code = status
    return response


def _answer(customer_id: int) -> Any:
    database = current().get("database")
    view = database.customers.view(customer_id)
    if view is None:
        return _error(404, "not_found", f"no customer with id {customer_id}")
    database.audit.write(g.principal.name, "customer.read", "customer", str(customer_id))
    return jsonify(view)


@bp.get("")
@api_auth("agent", "supervisor")
def by_phone() -> Any:
    raw = request.args.get("phone", "")
    # An unencoded "+" in a query string arrives as a space: "?phone=+34..." -> " 34..."
    if raw.startswith(" ") and raw.strip()[:1].isdigit():
        raw = "+" + raw.strip()
    if not raw.strip():
        return _error(400, "bad_request", "give the number: /api/customers?phone=%2B34600112233")
    database = current().get("database")
    try:
        e164 = normalise_phone(raw, database.region)
    except InvalidPhone as exc:
        return _error(400, "bad_phone", str(exc))
    customer = database.customers.find_by_phone(e164)
    if customer is None:
        return _error(404, "not_found", f"no customer with phone {e164}")
    return _answer(customer.id)


@bp.get("/<int:customer_id>")
@api_auth("agent", "supervisor")
def by_id(customer_id: int) -> Any:
    return _answer(customer_id)
