"""Sealed call state: round trip, tamper refusal, deterministic tokens for retries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.state import InvalidState, StateCodec, load_or_create_secret


def test_round_trip_and_no_plaintext_in_token() -> None:
    codec = StateCodec("s3cret")
    state = {"call_sid": "CA1", "caller": "+34600112233", "vars": {"account": "12345678"}}
    token = codec.encode(state)
    assert codec.decode(token) == state
    assert "34600112233" not in token and "account" not in token


def test_same_state_same_token_so_retries_get_identical_twiml() -> None:
    codec = StateCodec("s3cret")
    assert codec.encode({"a": 1}) == codec.encode({"a": 1})
    assert codec.encode({"a": 1}) != codec.encode({"a": 2})


def test_tampered_or_foreign_tokens_refused() -> None:
    token = StateCodec("one").encode({"a": 1})
    with pytest.raises(InvalidState):
        StateCodec("two").decode(token)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with pytest.raises(InvalidState):
        StateCodec("one").decode(flipped)


@given(st.text(max_size=300))
def test_garbage_tokens_raise_invalid_state_only(garbage: str) -> None:
    with pytest.raises(InvalidState):
        StateCodec("k").decode(garbage)


def test_secret_file_created_once_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = load_or_create_secret(tmp_path)
    assert load_or_create_secret(tmp_path) == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
