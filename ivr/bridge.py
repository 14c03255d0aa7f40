"""Putting a caller through to the agent the router reserved for them.

The caller holds in Twilio's queue (``<Enqueue>``); once the agent accepts we update
the caller's live call (REST) to ``<Dial>`` the agent's contact, which takes them
out of the queue. Agents' contacts (E.164 phone, ``client:NAME`` for Twilio Client,
or ``sip:...``) live in Redis (``ivr:agent_contact``), set through the agents API.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from ivr import render
from ivr.errors import IvrError

log = logging.getLogger(__name__)
CONTACTS = "ivr:agent_contact"


class BridgeError(IvrError):
    """The caller could not be put through; the message says why and what to do."""


class Bridge:
    def __init__(self, client: redis.Redis, rest: Any | None) -> None:
        self.client = client
        self.rest = rest

    def set_contact(self, agent_id: str, contact: str) -> None:
        self.client.hset(CONTACTS, agent_id, contact)

    def contact(self, agent_id: str) -> str | None:
        value = self.client.hget(CONTACTS, agent_id)
        return str(value) if value else None

    def language_of(self, call_sid: str) -> str | None:
        raw = self.client.hget(f"ivr:call:{call_sid}", "session")
        try:
            return json.loads(raw).get("language") if raw else None
        except ValueError:
            return None

    def twiml_for(self, agent_id: str, call_sid: str, callback: bool = False) -> str:
        contact = self.contact(agent_id)
        if not contact:
            raise BridgeError(f"agent {agent_id!r} has no contact: PUT /api/agents/{agent_id} "
                              'with {"contact": "+34..." | "client:name"}')
        return render.connect_to_agent(contact, self.language_of(call_sid), callback=callback)

    def connect(self, agent_id: str, call_sid: str) -> None:
        """Take the caller out of the hold and ring the agent."""
        twiml = self.twiml_for(agent_id, call_sid)
        if self.rest is None or getattr(self.rest, "disabled", False):
            raise BridgeError("outbound REST calls are disabled (TWILIO_ACCOUNT_SID unset): "
                              "the agent must take the call from the Twilio queue")
        self.rest.update_call(call_sid, twiml=twiml)
        log.info("call %s put through to agent %s", call_sid, agent_id)
