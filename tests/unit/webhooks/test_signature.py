"""Webhook signatures: what a sender's header must carry for a delivery to be accepted."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from frontier_provider.webhooks.signature import (
    SignatureError,
    compute_signature,
    parse_signature_header,
    sign,
    verify_signature,
)

SECRET = "whsec_current"
OLD_SECRET = "whsec_previous"
BODY = b'{"company_name": "Acme", "amount": "1234.56"}'
T = 1_735_689_600


def test_signature_is_hmac_sha256_of_timestamp_dot_raw_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, T, BODY) == expected
    assert sign(BODY, SECRET, T) == f"t={T},v1={expected}"


def test_a_correctly_signed_delivery_is_accepted() -> None:
    parsed = verify_signature(sign(BODY, SECRET, T), BODY, [SECRET], now=T)
    assert parsed.timestamp == T


@pytest.mark.parametrize(
    ("sender_secrets", "receiver_secrets"),
    [
        # the sender signs with old and new secret while the receiver still knows only the old one
        ((OLD_SECRET, SECRET), (OLD_SECRET,)),
        # the receiver accepts both while the sender has switched to the new one
        ((SECRET,), (SECRET, OLD_SECRET)),
        # the sender still uses the old one
        ((OLD_SECRET,), (SECRET, OLD_SECRET)),
    ],
)
def test_secret_rotation_needs_no_simultaneous_switch(sender_secrets, receiver_secrets) -> None:
    verify_signature(sign(BODY, sender_secrets, T), BODY, receiver_secrets, now=T)


def test_a_retired_secret_is_refused() -> None:
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(sign(BODY, OLD_SECRET, T), BODY, [SECRET], now=T)


@pytest.mark.parametrize(
    "tampered",
    [BODY + b" ", BODY.replace(b"1234.56", b"9234.56"), b"", BODY.upper()],
)
def test_any_change_to_the_body_breaks_the_signature(tampered: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_signature(sign(BODY, SECRET, T), tampered, [SECRET], now=T)


def test_the_timestamp_is_signed_so_it_cannot_be_refreshed() -> None:
    header = sign(BODY, SECRET, T).replace(f"t={T}", f"t={T + 600}")
    with pytest.raises(SignatureError, match="no signature matches"):
        verify_signature(header, BODY, [SECRET], now=T + 600)


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_timestamps_within_300_seconds_either_way_are_accepted(skew: int) -> None:
    verify_signature(sign(BODY, SECRET, T), BODY, [SECRET], now=T + skew)


@pytest.mark.parametrize("skew", [-301, 301, 86_400, -86_400])
def test_timestamps_beyond_300_seconds_either_way_are_refused(skew: int) -> None:
    with pytest.raises(SignatureError, match="300 s"):
        verify_signature(sign(BODY, SECRET, T), BODY, [SECRET], now=T + skew)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("v1=" + "a" * 64, "exactly one t="),
        (f"t={T}", "no v1"),
        (f"t={T},t={T},v1=" + "a" * 64, "exactly one t="),
        (f"t=-5,v1={'a' * 64}", "exactly one t="),
        (f"t=soon,v1={'a' * 64}", "exactly one t="),
        (f"t={T},v1=abc", "64 hex"),
        (f"t={T},v1={'g' * 64}", "64 hex"),
        (f"t={T},garbage", "key=value"),
        (f"t={T}," + ",".join(["v1=" + "a" * 64] * 9), "more than 8"),
        ("t=1," + "x" * 5000, "longer than"),
    ],
)
def test_malformed_headers_are_refused_with_the_reason(header, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_signature(header, BODY, [SECRET], now=T)


def test_unknown_schemes_are_ignored_for_forward_compatibility() -> None:
    header = sign(BODY, SECRET, T) + ",v2=" + "b" * 64
    verify_signature(header, BODY, [SECRET], now=T)
    assert parse_signature_header(header).signatures == (compute_signature(SECRET, T, BODY),)


def test_uppercase_hex_is_accepted() -> None:
    verify_signature(
        sign(BODY, SECRET, T).upper().replace("T=", "t=").replace("V1=", "v1="), BODY, [SECRET], now=T
    )


def test_a_receiver_without_secrets_accepts_nothing() -> None:
    with pytest.raises(ValueError, match="no webhook secret"):
        verify_signature(sign(BODY, SECRET, T), BODY, ["", ""], now=T)
