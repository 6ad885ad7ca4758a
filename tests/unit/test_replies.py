"""The pull's protocol bytes, read without a broker: ack subjects and status headers."""

from __future__ import annotations

import pytest

from motionledger.adapters.nats.replies import (
    Delivery,
    StatusKind,
    parse_ack_subject,
    parse_status,
)


def test_a_nine_token_ack_subject_gives_sequence_timestamp_and_pending() -> None:
    reply = b"$JS.ACK.PRODUCTION.motionledger-PRODUCTION.1.4711.4711.1764480000123456789.42"
    assert parse_ack_subject(reply) == Delivery(4711, 1764480000123456789, 42)


def test_the_twelve_token_form_with_domain_and_account_hash() -> None:
    reply = (
        b"$JS.ACK.hub.ACCOUNTHASH.PRODUCTION.motionledger-PRODUCTION.3.99.97."
        b"1764480000000000001.0.RANDOM"
    )
    assert parse_ack_subject(reply) == Delivery(99, 1764480000000000001, 0)


def test_the_eleven_token_form_without_the_trailing_token() -> None:
    reply = b"$JS.ACK.hub.HASH.S.C.1.7.7.1764480000000000001.5"
    assert parse_ack_subject(reply) == Delivery(7, 1764480000000000001, 5)


@pytest.mark.parametrize(
    "reply",
    [b"_INBOX.abc.1", b"$JS.ACK.S.C.1.x.1.1.1", b"", b"$JS.ACK.S.C.1.2.3"],
)
def test_anything_else_is_not_an_ack_subject(reply: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - int() or the shape check, both ValueError
        parse_ack_subject(reply)


def test_a_heartbeat() -> None:
    status = parse_status(b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 4\r\n\r\n")
    assert status.kind is StatusKind.HEARTBEAT
    assert status.code == "100"


def test_a_request_that_expired_says_what_it_did_not_deliver() -> None:
    headers = (
        b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 1500\r\n"
        b"Nats-Pending-Bytes: 0\r\n\r\n"
    )
    status = parse_status(headers)
    assert (status.kind, status.code, status.undelivered) == (StatusKind.ENDED, "408", 1500)


def test_no_messages_without_a_pending_count() -> None:
    status = parse_status(b"NATS/1.0 404 No Messages\r\n\r\n")
    assert (status.kind, status.undelivered) == (StatusKind.ENDED, None)


def test_too_many_waiting_requests_ends_the_request() -> None:
    status = parse_status(b"NATS/1.0 409 Exceeded MaxWaiting\r\n\r\n")
    assert status.kind is StatusKind.ENDED
    assert status.description == "Exceeded MaxWaiting"


@pytest.mark.parametrize(
    "headers",
    [
        b"NATS/1.0 409 Consumer Deleted\r\n\r\n",
        b"NATS/1.0 409 Consumer is push based\r\n\r\n",
        b"NATS/1.0 400 Bad Request\r\n\r\n",
        b"NATS/1.0 503\r\n\r\n",
    ],
)
def test_any_other_status_breaks_the_pull(headers: bytes) -> None:
    status = parse_status(headers)
    assert status.kind is StatusKind.BROKEN
    assert status.code == headers[9:12].decode()
