"""Registering members and finding them by id, card, phone, email or external id.

Phones are stored in E.164 (a Russian "8 (912) 345-67-89" is +79123456789), emails
lower-cased; a card number, when not given, is generated: the card prefix, random
digits and a Luhn check digit. Personal data go to `member_profiles`, apart from money.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import phonenumbers
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    ScalarSelect,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from kopilka.checkout.mechanic import Joining, mechanics
from kopilka.kernel.errors import Conflict, Duplicate, InvalidInput, NotFound, Problem
from kopilka.kernel.ledger import AccountCode, luhn_check_digit
from kopilka.kernel.reading import Reader, row_id
from kopilka.ledger.accounts import open_accounts
from kopilka.ledger.wallet import Wallet
from kopilka.mechanics.tiers.status import tier_fields
from kopilka.members.link_tables import member_links
from kopilka.platform.db import reading
from kopilka.platform.idempotency import AfterWrite, Answer, followed, idempotent, retrying
from kopilka.platform.tables import member_consents, member_profiles, members, programs
from kopilka.programs.handlers import LoadedProgram, load_program

MEMBER_KEYS = ("card", "phone", "email", "external_id", "name", "birthday", "referrer", "consents",
               "referral_code", "device")  # fmt: skip
REFERRAL_CODE = re.compile(r"^[0-9A-Za-z-]{4,32}$")
DEVICE = re.compile(r"^[\x21-\x7e]{1,128}$")  # a device fingerprint: printable ASCII
# personal data processing (152-FZ), then each channel messages may go by (38-FZ)
CONSENT_CHANNELS = ("personal_data", "sms", "email", "push", "calls")
CARD_PREFIX = "2"  # "2…" numbers are reserved for in-store use, so no bank card clashes
CARD_DIGITS = 13
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CARD = re.compile(r"^[0-9A-Za-z-]{4,32}$")
DEFAULT_REGION = "RU"


@dataclass(frozen=True)
class NewMember:
    card: str | None
    phone: str | None
    email: str | None
    external_id: str | None
    name: str | None
    birthday: date | None
    referrer: str | None
    consents: dict[str, bool]
    # for the mechanics (`Mechanic.joined`): the code of the referral link the member came
    # by, and the fingerprint of the device they registered on, when the caller sends one
    referral_code: str | None = None
    device: str | None = None


def parse_new_member(data: object) -> NewMember:
    problems: list[Problem] = []
    body = Reader(data, "", problems, MEMBER_KEYS)
    card = body.text("card", pattern=_CARD, what="a card number (4–32 letters, digits, '-')")
    new = NewMember(
        card=card,
        phone=_phone(body),
        email=_email(body),
        external_id=body.text("external_id"),
        name=body.text("name"),
        birthday=body.day("birthday"),
        referrer=body.text("referrer"),
        consents=_consents(body),
        referral_code=body.text(
            "referral_code",
            pattern=REFERRAL_CODE,
            what="a referral code (4–32 letters, digits, '-')",
        ),
        device=body.text(
            "device", pattern=DEVICE, what="a device fingerprint (1–128 printable ASCII characters)"
        ),
    )
    if problems:
        raise InvalidInput(problems)
    return new


def _consents(body: Reader) -> dict[str, bool]:
    """`consents: {channel: true|false}` — the channels named, each given or withdrawn."""
    raw = body.raw("consents")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        body.report("consents", f"must be an object like {{\"sms\": true}}; channels: "
                    f"{', '.join(CONSENT_CHANNELS)}")  # fmt: skip
        return {}
    consents = {}
    for channel, granted in raw.items():
        loc = f"consents.{channel}"
        if channel not in CONSENT_CHANNELS:
            body.report(loc, f"unknown channel; one of {', '.join(CONSENT_CHANNELS)}")
        elif not isinstance(granted, bool):
            body.report(loc, "must be true or false")
        else:
            consents[channel] = granted
    return consents


def record_consents(
    connection: Connection, program_id: int, member_id: int, consents: dict[str, bool],
    *, source: str, now: datetime,
) -> None:  # fmt: skip
    """A row for each channel whose consent changes (or is given for the first time)."""
    current = current_consents(connection, member_id)
    changed = [
        {"program_id": program_id, "member_id": member_id, "channel": channel,
         "granted": granted, "source": source, "changed_at": now}
        for channel, granted in consents.items()
        if channel not in current or current[channel]["granted"] != granted
    ]  # fmt: skip
    if changed:
        connection.execute(insert(member_consents), changed)


def current_consents(connection: Connection, member_id: int) -> dict[str, dict[str, Any]]:
    """The consent in force per channel: `{granted, at, source}` from its latest change."""
    rows = connection.execute(
        select(member_consents.c.channel, member_consents.c.granted,
               member_consents.c.source, member_consents.c.changed_at)
        .where(member_consents.c.member_id == member_id)
        .order_by(member_consents.c.id)
    ).all()  # fmt: skip
    return {
        row.channel: {"granted": row.granted, "at": row.changed_at.isoformat(),
                      "source": row.source}
        for row in rows
    }  # fmt: skip


def normalise_phone(raw: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phone(body: Reader) -> str | None:
    raw = body.text("phone")
    if raw is None:
        return None
    phone = normalise_phone(raw)
    if phone is None:
        body.report("phone", f"{raw!r} is not a phone number (e.g. +7 912 345-67-89)")
    return phone


def _email(body: Reader) -> str | None:
    raw = body.text("email", max_length=320)
    if raw is None:
        return None
    if not _EMAIL.match(raw.strip()):
        body.report("email", f"{raw!r} is not an email address")
        return None
    return raw.strip().lower()


def register_member(
    engine: Engine, program_code: str, data: object, *, now: datetime
) -> dict[str, Any]:
    """Register a member with their accounts; a taken card, phone or email is `Duplicate`."""
    return register(engine, program_code, data, now=now)[0]


def register(
    engine: Engine, program_code: str, data: object, *, now: datetime,
    idempotency_key: str | None = None,
) -> Answer:  # fmt: skip
    """`register_member`, and whether it was done now (False: an `Idempotency-Key` replay)."""
    new = parse_new_member(data)

    def attempt(connection: Connection) -> Answer:
        return _register(connection, program_code, new, now), True

    return idempotent(engine, program_code, idempotency_key, "member.register", data, now,
                      attempt)  # fmt: skip


def _register(
    connection: Connection, program_code: str, new: NewMember, now: datetime
) -> dict[str, Any]:
    program = load_program(connection, program_code)
    referrer = find_member(connection, program.program_id, new.referrer) if new.referrer else None
    _refuse_taken(connection, program.program_id, new)
    card = new.card or _free_card(connection, program.program_id)
    try:
        member_id = connection.execute(
            insert(members)
            .values(
                program_id=program.program_id,
                card=card,
                external_id=new.external_id,
                status="active",
                referrer_id=referrer.id if referrer else None,
                created_at=now,
            )
            .returning(members.c.id)
        ).scalar_one()
        connection.execute(
            insert(member_profiles).values(
                member_id=member_id,
                program_id=program.program_id,
                phone=new.phone,
                email=new.email,
                name=new.name,
                birthday=new.birthday,
            )
        )
    except IntegrityError:  # a concurrent registration took the same card/phone/email
        raise Duplicate("a member with this card, phone, email or external id exists") from None
    open_accounts(connection, program.program_id, member_id)
    record_consents(connection, program.program_id, member_id, new.consents,
                    source="registration", now=now)  # fmt: skip
    answer = member_document(connection, find_member(connection, program.program_id,
                                                     str(member_id)), program, now)  # fmt: skip
    extras = {"referral_code": new.referral_code, "device": new.device}
    joining = Joining(connection, program, member_id, referrer.id if referrer else None,
                      extras, answer, now)  # fmt: skip
    for mechanic in mechanics():
        mechanic.joined(joining)
    return answer


def _refuse_taken(connection: Connection, program_id: int, new: NewMember) -> None:
    for field, value, ref in (
        ("card", new.card, f"card:{new.card}"),
        ("phone", new.phone, f"phone:{new.phone}"),
        ("email", new.email, f"email:{new.email}"),
        ("external_id", new.external_id, f"ext:{new.external_id}"),
    ):
        if value is not None and _lookup(connection, program_id, ref) is not None:
            raise Duplicate(f"{field} {value} is already a member's")


def _free_card(connection: Connection, program_id: int) -> str:
    while True:
        body = CARD_PREFIX + "".join(secrets.choice("0123456789") for _ in range(CARD_DIGITS - 2))
        card = body + luhn_check_digit(body)
        if _lookup(connection, program_id, f"card:{card}") is None:
            return card


MEMBER_COLUMNS = (
    members.c.id,
    members.c.card,
    members.c.external_id,
    members.c.status,
    members.c.created_at,
    member_profiles.c.phone,
    member_profiles.c.email,
    member_profiles.c.name,
    member_profiles.c.birthday,
)


def member_condition(ref: str) -> ColumnElement[bool] | None:
    """The WHERE condition finding `ref` (over `members` joined to `member_profiles`)."""
    key = member_key(ref)
    return key[0] == key[1] if key is not None else None


def member_key(ref: str) -> tuple[ColumnElement[Any], object] | None:
    """The column that finds `ref` and the value it must have; None for no kind of ref."""
    kind, _, value = ref.partition(":")
    if not value:
        number = row_id(ref)
        return (members.c.id, number) if number is not None else None
    if kind == "card":
        return members.c.card, value
    if kind == "phone":
        return member_profiles.c.phone, normalise_phone(value) or value
    if kind == "email":
        return member_profiles.c.email, value.lower()
    if kind == "ext":
        return members.c.external_id, value
    return None


def _lookup(connection: Connection, program_id: int, ref: str) -> Row[Any] | None:
    condition = member_condition(ref)
    if condition is None:
        return None
    query = (
        select(*MEMBER_COLUMNS)
        .outerjoin(member_profiles, member_profiles.c.member_id == members.c.id)
        .where(members.c.program_id == program_id, condition)
    )
    return connection.execute(query).one_or_none()


def member_id_of(engine: Engine, program_code: str, ref: str) -> int | None:
    """The id of the member `ref` names — whichever of their references it is — or None:
    so that what is counted per member is counted once, however the member is named."""
    key = member_key(ref)
    if key is None:
        return None
    values = {"program_code": program_code, "member_key": key[1]}
    with reading(engine, one_snapshot=False) as connection:  # one query: program and member
        member_id = connection.execute(select(member_id_by(key[0])), values).scalar_one_or_none()
    return int(member_id) if member_id is not None else None


@cache
def member_id_by(column: ColumnElement[Any]) -> ScalarSelect[Any]:
    """The id of the member of the program `:program_code` whose `column` (`member_key`'s)
    holds `:member_key` — how one statement names a member by their reference without
    reading them first (the purchase's load, a mechanic's reads, a balance)."""
    return (
        select(members.c.id)
        .join(programs, programs.c.id == members.c.program_id)
        .outerjoin(member_profiles, member_profiles.c.member_id == members.c.id)
        .where(programs.c.code == bindparam("program_code"),
               column == bindparam("member_key", type_=column.type))
        .scalar_subquery()
    )  # fmt: skip


def find_member(connection: Connection, program_id: int, ref: str) -> Row[Any]:
    """A member by `{id}`, `card:…`, `phone:…`, `email:…` or `ext:…`; `NotFound` otherwise."""
    row = _lookup(connection, program_id, ref)
    if row is None:
        raise NotFound(f"member {ref!r} does not exist")
    return row


def member_refs(row: Row[Any]) -> frozenset[str]:
    """Every identity a rule's `members` condition may name."""
    refs = {str(row.id), f"card:{row.card}"}
    for prefix, value in (("phone", row.phone), ("email", row.email), ("ext", row.external_id)):
        if value:
            refs.add(f"{prefix}:{value}")
    return frozenset(refs)


def member_json(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "card": row.card,
        "phone": row.phone,
        "email": row.email,
        "external_id": row.external_id,
        "name": row.name,
        "birthday": row.birthday.isoformat() if row.birthday else None,
        "status": row.status,
    }


def member_document(
    connection: Connection, row: Row[Any], program: LoadedProgram, now: datetime
) -> dict[str, Any]:
    """A member as the API shows them: the profile, the consents in force, and the tier
    (`tier`, `next_tier` with what is `missing`, `privileges`)."""
    document = {
        **member_json(row),
        "consents": current_consents(connection, row.id),
        **tier_fields(connection, program.calculator.program, row.id, row.created_at, now),
    }
    for mechanic in mechanics():  # stamps, challenges and badges, a referral code …
        part = mechanic.member_part(connection, program, int(row.id), now)
        if part is not None:
            document[mechanic.name] = part
            # a mechanic's flags a till shows (a club's "vip-service") join the tier's
            if isinstance(part.get("privileges"), list):
                document["privileges"] = sorted({*document["privileges"], *part["privileges"]})
    return document


def erase_member(
    engine: Engine, program_code: str, member_ref: str, *, actor: str, now: datetime
) -> dict[str, Any]:
    """The right to erasure (152-FZ, GDPR): personal data deleted, the ledger left whole.

    The profile row (name, phone, email, birthday) is deleted and the external id
    cleared; the member's points leave the books by transfers of their own (available
    and pending points forfeit to `expired`, a debt or negative balance is written off),
    so the ledger stays balanced and verifiable with no personal data in it. Erasing an
    erased member again changes nothing.
    """

    def attempt(connection: Connection) -> dict[str, Any]:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, member_ref)
        if member.status == "erased":
            return member_json(member)
        wallet = Wallet.open(connection, program.program_id, program.calculator.program,
                             member.id, now)  # fmt: skip
        if wallet.balances[AccountCode.HELD]:
            raise Conflict(f"member {member_ref!r} has held points: confirm or cancel first")
        wallet.forfeit_all(f"{program_code}:erasure:{member.id}")
        wallet.flush(actor=actor, note="right to erasure")
        connection.execute(delete(member_profiles).where(member_profiles.c.member_id == member.id))
        connection.execute(delete(member_consents).where(member_consents.c.member_id == member.id))
        connection.execute(
            update(members)
            .where(members.c.id == member.id)
            .values(status="erased", external_id=None, erased_at=now)
        )
        connection.execute(  # their personal page's links end with them
            update(member_links)
            .where(member_links.c.member_id == member.id, member_links.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return member_json(find_member(connection, program.program_id, str(member.id)))

    return retrying(engine, attempt)


def read_member(
    engine: Engine, program_code: str, ref: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """A member's profile by any of their references; `NotFound` otherwise. `now`: the
    moment the tier's progress is counted at (default: the clock)."""
    with reading(engine) as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, ref)
        return member_document(connection, member, program, now or datetime.now(UTC))


PROFILE_KEYS = ("phone", "email", "name", "birthday", "consents")


def update_member(
    engine: Engine, program_code: str, ref: str, data: object, *, now: datetime
) -> dict[str, Any]:
    """Change a member's profile (`phone`, `email`, `name`, `birthday`; null clears one)
    and consents (`{channel: true|false}`, each change kept with its time). Cards, ids,
    balances and status are not profile: they are refused by name."""
    problems: list[Problem] = []
    body = Reader(data, "", problems, PROFILE_KEYS)
    given = set(data) if isinstance(data, dict) else set()
    changes: dict[str, Any] = {}
    for name, read in (("phone", _phone), ("email", _email), ("name", lambda b: b.text("name")),
                       ("birthday", lambda b: b.day("birthday"))):  # fmt: skip
        value = read(body)
        if name in given:
            changes[name] = value
    consents = _consents(body)
    if problems:
        raise InvalidInput(problems)
    with engine.begin() as connection:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, ref)
        if member.status == "erased":
            raise Conflict(f"member {ref!r} was erased")
        for field in ("phone", "email"):
            value = changes.get(field)
            other = _lookup(connection, program.program_id, f"{field}:{value}") if value else None
            if other is not None and other.id != member.id:
                raise Duplicate(f"{field} {value} is already a member's")
        if changes:
            try:
                connection.execute(
                    update(member_profiles)
                    .where(member_profiles.c.member_id == member.id)
                    .values(**changes)
                )
            except IntegrityError:  # a concurrent registration took the phone or email
                raise Duplicate("this phone or email is already a member's") from None
        record_consents(connection, program.program_id, member.id, consents, source="profile",
                        now=now)  # fmt: skip
        return member_document(connection, find_member(connection, program.program_id,
                                                       str(member.id)), program, now)  # fmt: skip


def set_member_status(
    engine: Engine, program_code: str, ref: str, status: str, *, now: datetime,
    idempotency_key: str | None = None, after: AfterWrite | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Block a member (their card earns and pays nothing) or make them active again."""
    assert status in ("active", "blocked")

    def attempt(connection: Connection) -> Answer:
        program = load_program(connection, program_code)
        member = find_member(connection, program.program_id, ref)
        if member.status == "erased":
            raise Conflict(f"member {ref!r} was erased")
        connection.execute(update(members).where(members.c.id == member.id).values(status=status))
        return member_json(find_member(connection, program.program_id, str(member.id))), True

    request = {"member": ref, "status": status}
    return idempotent(engine, program_code, idempotency_key, "member.status", request, now,
                      followed(attempt, after))[0]  # fmt: skip
