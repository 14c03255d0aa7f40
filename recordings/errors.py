"""Errors of the ``recordings`` package, all rooted at :class:`RecordingsError`.

The project has one root exception per package (house rule 7); nothing here imports
``ivr``, so this root stands alone and the CLI/API catch it to show the message.
Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


class RecordingsError(Exception):
    """Root of every error raised by customer records, users, calls and privacy."""


class NotFound(RecordingsError):
    """The customer, call, user or follow-up asked for does not exist (or was erased)."""


class Conflict(RecordingsError):
    """The change would give one customer's phone or account to another."""


class InvalidPhone(RecordingsError):
    """A phone number could not be read as a valid number (see the message)."""


class ImportFileError(RecordingsError):
    """A customer CSV file cannot be imported at all (missing columns, unreadable)."""


class UserError(RecordingsError):
    """A user cannot be created or changed as asked (duplicate name, bad role...)."""


class MigrationError(RecordingsError):
    """The database schema could not be brought up to date."""
