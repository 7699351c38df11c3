"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<raw body>"``, several secrets and signatures.

A sender signs every delivery with the header::

    X-Frontier-Signature: t=1735689600,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

``v1`` is the lowercase hex HMAC-SHA256 of ``"<t>.<raw body>"`` under a shared
secret. During a secret rotation the sender adds one ``v1`` per secret it
holds, and the receiver accepts any of its own secrets (the current one and
the previous ones), so neither side has to switch at the same instant. The
timestamp is part of the signed text, so a captured request cannot be replayed
with a fresh timestamp; requests older or newer than the tolerance are refused,
and delivery ids (see :mod:`frontier_provider.webhooks.deliveries`) refuse
replays inside that window.

Pure Python: no Airflow, no web framework.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from frontier_provider.failures import Category

SIGNATURE_HEADER = "X-Frontier-Signature"
DELIVERY_HEADER = "X-Frontier-Delivery"
SIGNATURE_SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
MAX_HEADER_LENGTH = 2048
MAX_SIGNATURES = 8
"""More ``v1`` values than any rotation needs; a longer list only costs HMAC work."""

_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")


class SignatureError(ValueError):
    """The signature header is missing, malformed, does not match, or is outside the tolerance.

    :param reason: what is wrong, safe to return to the sender (it reveals no secret)
    """

    category = Category.CREDENTIALS

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignatureHeader:
    """A parsed ``X-Frontier-Signature`` header.

    :param timestamp: the ``t`` value, Unix seconds
    :param signatures: the ``v1`` values, lowercase hex
    """

    timestamp: int
    signatures: tuple[str, ...]


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` signature of a body: hex HMAC-SHA256 of ``"<timestamp>.<body>"``.

    :param secret: the shared webhook secret
    :param timestamp: Unix seconds, as sent in ``t``
    :param body: the raw request body, byte for byte
    """
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: str | Iterable[str], timestamp: int) -> str:
    """The ``X-Frontier-Signature`` value a sender puts on a delivery, one ``v1`` per secret.

    :param body: the raw request body
    :param secrets: one secret, or several during a rotation
    :param timestamp: Unix seconds of sending
    """
    secrets = [secrets] if isinstance(secrets, str) else list(secrets)
    parts = [f"t={timestamp}"] + [
        f"{SIGNATURE_SCHEME}={compute_signature(secret, timestamp, body)}" for secret in secrets
    ]
    return ",".join(parts)


def parse_signature_header(header: str | None) -> SignatureHeader:
    """Parse ``t=<unix>,v1=<hex>[,v1=<hex>...]``; unknown schemes (e.g. a future ``v2``) are ignored.

    :param header: the header value, or None when the request had none
    :raises SignatureError: when the header is missing or malformed
    """
    if header is None or not header.strip():
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError(f"{SIGNATURE_HEADER} header is longer than {MAX_HEADER_LENGTH} characters")
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, separator, value = item.strip().partition("=")
        if not separator:
            raise SignatureError(f"{SIGNATURE_HEADER} items must be key=value pairs")
        if key == "t":
            timestamps.append(value)
        elif key == SIGNATURE_SCHEME:
            if not _HEX_DIGEST.match(value):
                raise SignatureError(f"{SIGNATURE_HEADER} {SIGNATURE_SCHEME} must be 64 hex characters")
            signatures.append(value.lower())
    if len(timestamps) != 1 or not _TIMESTAMP.match(timestamps[0]):
        raise SignatureError(f"{SIGNATURE_HEADER} needs exactly one t=<unix seconds>")
    if not signatures:
        raise SignatureError(f"{SIGNATURE_HEADER} has no {SIGNATURE_SCHEME} signature")
    if len(signatures) > MAX_SIGNATURES:
        raise SignatureError(f"{SIGNATURE_HEADER} carries more than {MAX_SIGNATURES} signatures")
    return SignatureHeader(timestamp=int(timestamps[0]), signatures=tuple(signatures))


def verify_signature(
    header: str | None,
    body: bytes,
    secrets: Iterable[str],
    *,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> SignatureHeader:
    """Check a delivery's signature against every secret, then its timestamp against the clock.

    The signature is checked before the timestamp, so a caller without a secret
    learns nothing about the receiver's clock. Comparisons are constant-time.

    :param header: the ``X-Frontier-Signature`` value
    :param body: the raw request body, exactly as received
    :param secrets: the receiver's secrets: the current one and any still accepted during a rotation
    :param now: the receiver's clock, Unix seconds
    :param tolerance: largest difference in seconds between ``t`` and ``now``, either way
    :raises SignatureError: when the signature is missing, malformed, wrong or too old / too new
    """
    parsed = parse_signature_header(header)
    expected = [compute_signature(secret, parsed.timestamp, body) for secret in secrets if secret]
    if not expected:
        raise ValueError("no webhook secret is configured")
    matched = False
    for candidate in parsed.signatures:
        for signature in expected:
            # Every pair is compared (no early exit), so timing does not reveal which secret matched.
            matched |= hmac.compare_digest(candidate, signature)
    if not matched:
        raise SignatureError("no signature matches the body under any accepted secret")
    if abs(now - parsed.timestamp) > tolerance:
        raise SignatureError(
            f"signature timestamp {parsed.timestamp} is more than {tolerance} s away from the "
            "receiver's clock: sign each delivery when sending it"
        )
    return parsed
