"""The root of the ``ivr`` package's exceptions: catch ``IvrError`` to catch them all.

Every message says what happened and what to do next.
"""

from __future__ import annotations


class IvrError(Exception):
    """Something in the web layer, CLI or its Twilio plumbing went wrong."""
