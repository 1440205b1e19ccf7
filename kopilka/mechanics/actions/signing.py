"""Signed callbacks: how an outside service proves a report comes from it.

The service and Kopilka share a secret per action. Each request carries

    X-Kopilka-Timestamp: <Unix time in seconds>
    X-Kopilka-Signature: sha256=<hex HMAC-SHA256 of
                         "<timestamp>.<program>.<action>.<raw body>" under the secret>

A signature is compared in constant time; a timestamp more than `TOLERANCE_SECONDS` from
the server's clock is refused, so a captured request can't be sent again later (within
the window, the report's external id makes a repeat credit nothing); the program and the
action are signed too, so a request captured for one action can't be sent to another
that shares its secret. The variable may
hold several secrets separated by commas — the new one and the old one while a service
is moved to the new — and a signature under any of them is accepted.

Pure (the standard library): the caller reads the environment and the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

TIMESTAMP_HEADER = "X-Kopilka-Timestamp"
SIGNATURE_HEADER = "X-Kopilka-Signature"
TOLERANCE_SECONDS = 300
MIN_SECRET_LENGTH = 16  # a shorter secret is treated as none: callbacks are refused
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class Signed:
    """What a callback's signature covers, beside its timestamp."""

    program: str
    action: str
    body: bytes


def signature_of(secret: str, timestamp: str, program: str, action: str, body: bytes) -> str:
    """The header value a service sends: `sha256=<hex>`."""
    message = f"{timestamp}.{program}.{action}.".encode() + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def secrets_in(value: str | None) -> list[str]:
    """The secrets an environment variable's value holds (comma-separated), each long
    enough to be one."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if len(part.strip()) >= MIN_SECRET_LENGTH]


def signature_problem(
    secrets: list[str], timestamp: str | None, signature: str | None, signed: Signed,
    now: datetime,
) -> str | None:  # fmt: skip
    """Why the request's signature can't be accepted, or None when it can."""
    if not secrets:
        return "callbacks of this action are not configured"
    if timestamp is None or signature is None:
        return f"send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
    if not _TIMESTAMP.fullmatch(timestamp):
        return f"{TIMESTAMP_HEADER} is not a Unix time in seconds"
    if abs(now.timestamp() - int(timestamp)) > TOLERANCE_SECONDS:
        return f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS // 60} minutes from now"
    if not _SIGNATURE.fullmatch(signature):
        return f"{SIGNATURE_HEADER} is not sha256=<64 lowercase hex digits>"
    # every secret is tried, so the time taken says nothing of which one matched
    matches = [
        hmac.compare_digest(
            signature_of(secret, timestamp, signed.program, signed.action, signed.body), signature
        )
        for secret in secrets
    ]
    return None if any(matches) else "the signature does not match the body"
