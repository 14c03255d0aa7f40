"""Authentication for the JSON API: bearer tokens, roles.

``IVR_ADMIN_TOKEN`` is the admin's token; users created with ``ivr users add`` have
their own tokens, resolved through ``Services.lookup_token``.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, jsonify, request

from ivr.services import Principal, current

F = TypeVar("F", bound=Callable[..., Any])

ROLES = ("admin", "supervisor", "agent")


def principal_for_token(token: str) -> Principal | None:
    services = current()
    admin = services.settings.admin_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return Principal(name="admin", role="admin")
    return services.lookup_token(token)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def api_auth(*roles: str) -> Callable[[F], F]:
    """Require a bearer token whose role is in ``roles`` (admin always passes).

    Sets ``g.principal``. 401 without a valid token, 403 for a role not allowed.
    """
    allowed = set(roles or ROLES) | {"admin"}

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = bearer_token()
            principal = principal_for_token(token) if token else None
            if principal is None:
                response = jsonify(error="unauthorized",
                                   detail="send Authorization: Bearer <token>")
                response.status_code = 401
                response.headers["WWW-Authenticate"] = 'Bearer realm="centralita"'
                return response
            if principal.role not in allowed:
                response = jsonify(error="forbidden",
                                   detail=f"role {principal.role!r} may not use this route")
                response.status_code = 403
                return response
            g.principal = principal
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
