"""The process's services, built once by ``create_app`` and found by views.

Views and blueprints get their dependencies with :func:`current`; nothing is
created at import time. Components from other packages are optional while the
project grows: a blueprint that needs one checks it is there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import current_app

from ivr.settings import Settings


@dataclass(frozen=True)
class Principal:
    """Who is calling the API or using a page."""

    name: str
    role: str  # "admin" | "supervisor" | "agent"
    agent_id: str | None = None
    user_id: str | None = None


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis  # decode_responses=True
    # token -> Principal for users' API tokens (the admin token is checked separately)
    lookup_token: Callable[[str], Principal | None] = lambda token: None
    components: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        try:
            return self.components[name]
        except KeyError:
            raise LookupError(f"component {name!r} is not configured in this app") from None


def current() -> Services:
    services: Services = current_app.extensions["centralita"]
    return services
