"""The queueing package's exceptions, rooted at :class:`QueueError`.

Messages say what went wrong and what to do about it; the JSON API turns them into
4xx answers with the message as the reason.
"""

from __future__ import annotations


class QueueError(Exception):
    """Root of every error raised by the queueing package."""

    status = 400  # the HTTP status the API answers with


class RulesError(QueueError):
    """The queue rules file is malformed; the message names the file and the key."""


class UnknownAgent(QueueError):
    status = 404


class UnknownCall(QueueError):
    status = 404


class InvalidTransition(QueueError):
    """An agent or call is not in a state that allows the requested change."""

    status = 409
