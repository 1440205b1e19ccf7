"""Signed requests between exchanging programs (docs/exchange.md, "The protocol").

Every request either side sends carries

    X-Kopilka-Timestamp: <Unix time in seconds>
    X-Kopilka-Nonce:     <16 to 64 characters: letters, digits, '-', '_'; used once>
    X-Kopilka-Signature: sha256=<hex HMAC-SHA256 under the pair's shared secret of
                         "<timestamp>\\n<nonce>\\n<METHOD>\\n<path>\\n" + raw body>

The receiver refuses a timestamp more than `TOLERANCE_SECONDS` from its clock, a nonce it
has seen (it keeps them for the window: a captured request can't be sent again), and a
signature that does not match — compared in constant time, under every secret the
variable holds (comma-separated: the new and the old while a secret is rotated).

Pure (the standard library): the caller reads the environment, the clock and the
nonces it has seen.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

TIMESTAMP_HEADER = "X-Kopilka-Timestamp"
NONCE_HEADER = "X-Kopilka-Nonce"
SIGNATURE_HEADER = "X-Kopilka-Signature"
TOLERANCE_SECONDS = 300
MIN_SECRET_LENGTH = 16  # a shorter secret is treated as none: requests are refused
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class Signed:
    """What a request's signature covers."""

    timestamp: str
    nonce: str
    method: str
    path: str
    body: bytes


def signature_of(secret: str, signed: Signed) -> str:
    """The signature header's value: `sha256=<hex>`."""
    head = f"{signed.timestamp}\n{signed.nonce}\n{signed.method.upper()}\n{signed.path}\n"
    digest = hmac.new(secret.encode("utf-8"), head.encode() + signed.body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def secrets_in(value: str | None) -> list[str]:
    """The secrets an environment variable's value holds (comma-separated), each long
    enough to be one."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if len(part.strip()) >= MIN_SECRET_LENGTH]


def signed_headers(
    secret: str, method: str, path: str, body: bytes, now: datetime
) -> dict[str, str]:
    """The three headers of a request to send, with a fresh nonce."""
    timestamp, nonce = str(int(now.timestamp())), secrets.token_urlsafe(24)
    signature = signature_of(secret, Signed(timestamp, nonce, method, path, body))
    return {TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce, SIGNATURE_HEADER: signature}


def signature_problem(
    secrets_: list[str], signature: str | None, signed: Signed | None, now: datetime
) -> str | None:
    """Why the request can't be accepted (the nonce's novelty apart), or None."""
    if not secrets_:
        return "exchange with this partner is not configured (no shared secret)"
    if signed is None or signature is None:
        return f"send {TIMESTAMP_HEADER}, {NONCE_HEADER} and {SIGNATURE_HEADER}"
    if not _TIMESTAMP.fullmatch(signed.timestamp):
        return f"{TIMESTAMP_HEADER} is not a Unix time in seconds"
    if abs(now.timestamp() - int(signed.timestamp)) > TOLERANCE_SECONDS:
        return f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS // 60} minutes from now"
    if not _NONCE.fullmatch(signed.nonce):
        return f"{NONCE_HEADER} is not 16 to 64 letters, digits, '-' or '_'"
    if not _SIGNATURE.fullmatch(signature):
        return f"{SIGNATURE_HEADER} is not sha256=<64 lowercase hex digits>"
    # every secret is tried, so the time taken says nothing of which one matched
    matches = [hmac.compare_digest(signature_of(secret, signed), signature) for secret in secrets_]
    return None if any(matches) else "the signature does not match the request"
