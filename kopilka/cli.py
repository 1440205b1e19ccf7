"""The `kopilka` command line."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import OperationalError

from kopilka.checkout.calculator import Calculator
from kopilka.checkout.quoting import QuoteRequest, quote_receipt
from kopilka.checkout.wire import quote_json
from kopilka.imports.handlers import (
    CannotImport,
    ImportReport,
    import_members,
    import_receipts,
    write_rejects,
)
from kopilka.kernel.errors import InvalidInput, KopilkaError, Problem, Unavailable
from kopilka.kernel.program import Program
from kopilka.kernel.program_parser import parse_program
from kopilka.ledger.verify import verify as verify_ledger
from kopilka.members.links import member_link
from kopilka.operators.handlers import create_operator
from kopilka.operators.keys import create_key, list_keys, revoke_key
from kopilka.platform.db import make_engine
from kopilka.platform.files import load_document
from kopilka.platform.migrate import upgrade
from kopilka.platform.problems import problem_json
from kopilka.platform.secret import shared_secret
from kopilka.platform.worker import run_due_work
from kopilka.programs.handlers import apply_program

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)  # progress bars: stdout keeps the results
app = typer.Typer(
    name="kopilka",
    help="Kopilka — an open-source loyalty platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
program_app = typer.Typer(help="Check and apply program files.", no_args_is_help=True)
app.add_typer(program_app, name="program")
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
members_app = typer.Typer(help="Members.", no_args_is_help=True)
app.add_typer(members_app, name="members")
operators_app = typer.Typer(help="Operator accounts of the console.", no_args_is_help=True)
app.add_typer(operators_app, name="operators")
import_app = typer.Typer(
    help="Import members and historical receipts from CSV files (docs/import.md).",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def _fail(error: KopilkaError) -> typer.Exit:
    """Print the problem JSON on stdout (the document, status and all, the API would
    answer) and a one-line summary on stderr; exit 1, whatever the error."""
    _print_json(problem_json(error))
    sys.stderr.write(f"kopilka: {error.code}: {error.detail}\n")
    return typer.Exit(code=1)


def load_program(path: Path) -> Program:
    return parse_program(load_document(path))


@app.command()
def quote(
    program_file: Annotated[Path, typer.Argument(help="Program file (YAML or JSON).")],
    receipt_file: Annotated[Path, typer.Argument(help="Purchase request body (JSON or YAML).")],
    member: Annotated[str | None, typer.Option(help="The member, e.g. card:100001.")] = None,
    tier: Annotated[str | None, typer.Option(help="The member's tier code.")] = None,
    segment: Annotated[
        list[str] | None, typer.Option(help="A segment of the member (repeat).")
    ] = None,
    balance: Annotated[str | None, typer.Option(help="Points available to the member.")] = None,
    now: Annotated[
        str | None, typer.Option(help="The time for a receipt without 'at' (ISO 8601).")
    ] = None,
) -> None:
    """Price a receipt against a program file with no database and print the JSON answer."""
    try:
        calculator = Calculator(load_program(program_file))
        request = QuoteRequest(
            load_document(receipt_file), member, tier, frozenset(segment or ()), balance
        )
        result = quote_receipt(calculator, request, now=_now(now))
    except KopilkaError as error:
        raise _fail(error) from None
    _print_json(
        quote_json(result.quote, calculator.program, status="quote", balance=result.balance)
    )


DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $KOPILKA_DB or sqlite:///kopilka.sqlite3)."),
]


@app.command()
def migrate(db: DbOption = None) -> None:
    """Create or upgrade the database schema to the newest version."""
    engine = make_engine(db)
    upgrade(engine)
    console.print(f"[green]migrated[/green] {engine.url.render_as_string(hide_password=True)}")


@program_app.command("apply")
def program_apply(
    program_file: Annotated[Path, typer.Argument(help="Program file (YAML or JSON).")],
    db: DbOption = None,
) -> None:
    """Validate a program file and store it as the program's next version."""
    engine = make_engine(db)
    upgrade(engine)
    try:
        applied = apply_program(
            engine, load_document(program_file), actor="cli", now=datetime.now(UTC)
        )
    except KopilkaError as error:
        raise _fail(error) from None
    _print_json({"code": applied.code, "version": applied.version, "created": applied.created})


@app.command()
def verify(db: DbOption = None) -> None:
    """Prove the ledger's integrity from its rows; exit 1 on any discrepancy."""
    checks, found = verify_ledger(make_engine(db))
    for check in checks:
        failures = [d for d in found if d.check == check]
        mark = "[red]FAIL[/red]" if failures else "[green]ok[/green]  "
        console.print(f"{mark} {check}")
        for discrepancy in failures:
            console.print(f"       {discrepancy.detail}")
    if found:
        console.print(f"[red]{len(found)} discrepancies[/red]")
        raise typer.Exit(code=1)
    console.print("[green]the ledger is sound[/green]")


@program_app.command("check")
def program_check(
    program_file: Annotated[Path, typer.Argument(help="Program file (YAML or JSON).")],
) -> None:
    """Validate a program file and print a summary; every problem is named with its place."""
    try:
        program = load_program(program_file)
    except KopilkaError as error:
        raise _fail(error) from None
    _print_json(
        {
            "code": program.code,
            "name": program.name,
            "rules": len(program.rules),
            "locations": len(program.locations),
            "products": len(program.products),
        }
    )


@app.command()
def worker(
    db: DbOption = None,
    once: Annotated[bool, typer.Option("--once", help="Do what is due now, then exit.")] = False,
    now: Annotated[
        str | None, typer.Option("--now", help="The clock (ISO 8601), for tests and back-fills.")
    ] = None,
    every: Annotated[int, typer.Option("--every", help="Seconds between runs.", min=1)] = 60,
) -> None:
    """Run due work: holds, pending points, expiry and warnings, triggers, tier reviews.

    Several workers at once never do anything twice; a killed one loses nothing.
    """
    engine = make_engine(db)
    upgrade(engine)
    while True:
        try:
            moment = _now(now)
        except KopilkaError as error:
            raise _fail(error) from None
        done = run_due_work(engine, now=moment)
        _print_json({"now": moment.isoformat(), **done})
        if once:
            return
        time.sleep(every)


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Server processes (one per core is the usual choice).", min=1)
    ] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, interactive docs at /docs)."""
    from kopilka.platform.http.serving import serve as serve_api

    engine = make_engine(db)
    upgrade(engine)
    console.print(f"[green]serving[/green] http://{host}:{port}/docs "
                  f"on {engine.url.render_as_string(hide_password=True)}")  # fmt: skip
    engine.dispose()
    _share_secret(db)
    serve_api(db, host=host, port=port, workers=workers)


def _share_secret(db: str | None) -> None:
    """Give the server the secret the command line signs with (`kopilka.platform.secret`):
    its worker processes read it from the environment."""
    secret = _secret(db)
    if secret is not None:
        os.environ["KOPILKA_SECRET"] = secret


def _secret(db: str | None) -> str | None:
    """`shared_secret`, or None (said on stderr) when the file beside the database can't
    be read or written: the server then signs with a secret of its own, as on PostgreSQL."""
    try:
        return shared_secret(db)
    except OSError as error:
        sys.stderr.write(f"kopilka: no secret kept beside the database ({error}); set "
                         "KOPILKA_SECRET to keep sessions and links across restarts\n")  # fmt: skip
        return None


@app.command()
def demo(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    members: Annotated[int, typer.Option(help="Members to create.", min=1)] = 1000,
    receipts: Annotated[int, typer.Option(help="Receipts over the last 90 days.", min=0)] = 20000,
    serve_it: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the API when ready.")
    ] = True,
) -> None:
    """The seed-002 café chain with members and three months of receipts, then the server."""
    from rich.progress import Progress

    from kopilka.demo import PROGRAM, build_demo

    engine = make_engine(db)
    upgrade(engine)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("receipts", total=receipts)
        built = build_demo(
            engine, now=datetime.now(UTC), members_count=members, receipts_count=receipts,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    state = "created" if built.created else "found in place"
    console.print(f"demo {state}: program {PROGRAM}, {built.members} members, "
                  f"{built.receipts} purchases")  # fmt: skip
    console.print(f"API docs:   http://{host}:{port}/docs")
    console.print(f"admin key:  {built.admin_key}")
    console.print(f"kiosk key:  {built.pos_key}  (a pos key for location kiosk)")
    console_url = f"http://{host}:{port}/console/login"
    if built.operator is not None:
        email, password = built.operator
        console.print(f"console:    {console_url}  {email} / {password}  (shown once)  "
                      f"program {PROGRAM}", soft_wrap=True)  # fmt: skip
    else:
        console.print(f"console:    {console_url}  program {PROGRAM}  (the sign-in printed on "
                      "the first run, or `kopilka operators create`)", soft_wrap=True)  # fmt: skip
    balance_url = (
        f"http://{host}:{port}/v1/programs/{PROGRAM}/members/{built.sample_member}/balance"
    )
    console.print(f"try:        curl -H 'Authorization: Bearer {built.admin_key}' {balance_url}",
                  soft_wrap=True)  # fmt: skip
    if serve_it:
        from kopilka.platform.http.serving import serve as serve_api

        console.print("worker:     running beside the server, every minute")
        threading.Thread(target=_work_every, args=(engine, 60), daemon=True).start()
        _share_secret(db)
        serve_api(db, host=host, port=port)


def _work_every(engine: Any, seconds: float) -> None:
    """The worker's loop in a thread of the demo's process (a server in production runs
    `kopilka worker` on its own); a failed run is reported and tried again next time."""
    while True:
        try:
            run_due_work(engine, now=datetime.now(UTC))
        except Exception as error:  # the demo keeps serving; the next run tries again
            sys.stderr.write(f"kopilka demo: worker run failed: {error}\n")
        time.sleep(seconds)


@keys_app.command("create")
def keys_create(
    program: Annotated[str, typer.Option("--program", help="The program's code.")],
    role: Annotated[str, typer.Option("--role", help="admin|pos|partner|support|analyst")],
    location: Annotated[
        str | None, typer.Option("--location", help="A pos key's location.")
    ] = None,
    partner: Annotated[
        str | None, typer.Option("--partner", help="A partner key's coalition partner.")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="What the key is for.")] = None,
    db: DbOption = None,
) -> None:
    """Create a key; it is printed once, alone on the last line."""
    engine = make_engine(db)
    upgrade(engine)
    try:
        key, record = create_key(engine, program, role, location=location, partner=partner,
                                 label=label, now=datetime.now(UTC))  # fmt: skip
    except KopilkaError as error:
        raise _fail(error) from None
    console.print(f"key {record['id']} ({record['role']}) for program {program}; "
                  "store it now, it is not shown again:")  # fmt: skip
    sys.stdout.write(key + "\n")


@members_app.command("link")
def members_link(
    member: Annotated[str, typer.Argument(help="id, card:…, phone:…, email:… or ext:…")],
    program: Annotated[str, typer.Option("--program", help="The program's code.")],
    base_url: Annotated[
        str, typer.Option("--base-url", envvar="KOPILKA_PUBLIC_URL", help="The server's URL.")
    ],
    days: Annotated[int, typer.Option("--days", help="How long the link works.")] = 365,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="A link for good.")] = False,
    db: DbOption = None,
) -> None:
    """Print the member's personal link to their page (balance, card QR code, coupons).

    It is signed with `KOPILKA_SECRET`, or on SQLite with the secret kept beside the
    database, as the server signs and checks it."""
    secret = _secret(db)
    if not secret:
        sys.stderr.write("kopilka: set KOPILKA_SECRET as the server has it (only an "
                         "embedded SQLite database keeps one beside it)\n")  # fmt: skip
        raise typer.Exit(2)
    engine = make_engine(db)
    upgrade(engine)
    try:
        url = member_link(engine, program, member, base_url=base_url, secret=secret,
                          now=datetime.now(UTC), days=None if no_expiry else days)  # fmt: skip
    except KopilkaError as error:
        raise _fail(error) from None
    sys.stdout.write(url + "\n")


@operators_app.command("create")
def operators_create(
    program: Annotated[str, typer.Option("--program", help="The program's code.")],
    email: Annotated[str, typer.Option("--email", help="The operator's sign-in email.")],
    role: Annotated[str, typer.Option("--role", help="admin|support|analyst|marketer|partner")],
    partner: Annotated[
        str | None, typer.Option("--partner", help="A partner operator's partner.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Create an operator who signs in to the console at /console/login."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(db)
    upgrade(engine)
    try:
        operator = create_operator(engine, program, email, password, role, datetime.now(UTC),
                                   partner=partner)  # fmt: skip
    except KopilkaError as error:
        raise _fail(error) from None
    console.print(f"operator {operator.id} ({operator.role}) {operator.email} of {program}")


@keys_app.command("list")
def keys_list(
    program: Annotated[str, typer.Option("--program", help="The program's code.")],
    db: DbOption = None,
) -> None:
    """The program's keys, without their text."""
    engine = make_engine(db)
    upgrade(engine)
    _print_json({"items": list_keys(engine, program)})


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`).")],
    program: Annotated[str, typer.Option("--program", help="The program's code.")],
    db: DbOption = None,
) -> None:
    """Revoke a key: it stops working at once."""
    engine = make_engine(db)
    upgrade(engine)
    try:
        _print_json(revoke_key(engine, program, key_id, now=datetime.now(UTC)))
    except KopilkaError as error:
        raise _fail(error) from None


CsvArgument = Annotated[
    Path, typer.Argument(help="The CSV file: UTF-8, a header row naming the columns.")
]
ProgramOption = Annotated[str, typer.Option("--program", help="The program's code.")]
RejectsOption = Annotated[
    Path | None,
    typer.Option("--rejects", help="Write the rejected rows here, with a reason column."),
]
REJECTS_SHOWN = 50  # a table longer than a screen helps nobody; --rejects has them all


@import_app.command("members")
def import_members_command(
    csv_file: CsvArgument,
    program: ProgramOption,
    rejects: RejectsOption = None,
    db: DbOption = None,
) -> None:
    """Register the members of a CSV file; those already there are counted, not written again.

    Exit 0: none rejected; 1: some rejected; 2: the file can't be imported; 3: database lost.
    """
    importer = partial(import_members, now=datetime.now(UTC))
    _import(importer, csv_file, program, rejects, db, what="members", key="member")


@import_app.command("receipts")
def import_receipts_command(
    csv_file: CsvArgument,
    program: ProgramOption,
    rejects: RejectsOption = None,
    db: DbOption = None,
) -> None:
    """Process historical receipts of a CSV file (a row per line) in time order.

    Exit 0: none rejected; 1: some rejected; 2: the file can't be imported; 3: database lost.
    """
    _import(import_receipts, csv_file, program, rejects, db, what="receipts", key="receipt")


@import_app.command("card-transactions")
def import_card_transactions_command(
    jsonl_file: Annotated[
        Path,
        typer.Argument(
            help="a JSON Lines file: a card transaction message a line, as the API takes one"
        ),
    ],
    program: ProgramOption,
    rejects: RejectsOption = None,
    db: DbOption = None,
) -> None:
    """Take a bank's feed file (card-linked offers), a message a line, in the file's order;
    a message taken before is counted, not taken again.

    Exit 0: none rejected; 1: some rejected; 2: the file can't be read; 3: database lost.
    """
    from kopilka.mechanics.card_offers.files import import_card_transactions

    importer = partial(import_card_transactions, now=lambda: datetime.now(UTC))
    _import(importer, jsonl_file, program, rejects, db, what="card transactions",
            key="transaction")  # fmt: skip


@app.command("card-batch")
def card_batch(
    feed_file: Annotated[
        Path,
        typer.Argument(
            help="the day's feed: JSON Lines (a message a line) or Parquet (batch.FEED_SCHEMA)"
        ),
    ],
    program: ProgramOption,
    out: Annotated[Path, typer.Option(help="where the reward changes go (Parquet)")] = Path(
        "card-changes.parquet"
    ),
    scheduler: Annotated[
        str | None,
        typer.Option(help="a Dask scheduler's address (tcp://host:8786); default a local cluster"),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="the local cluster's worker processes")
    ] = 2,
    store: Annotated[
        bool,
        typer.Option(
            "--store", help="store the outcome as the online path would (JSON Lines only)"
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Match a day's card feed to the offers as a batch on Dask, against the database as
    it stands, with the online path's results; a summary to stdout. The reward changes go
    to --out and the database is not written; with --store, the outcome is stored
    instead, and the online path goes on from it.
    """
    from kopilka.mechanics.card_offers.files import batch_file

    engine = make_engine(db)
    try:
        summary = batch_file(engine, program, feed_file, out, scheduler=scheduler,
                             workers=workers, store=store)  # fmt: skip
    except CannotImport as error:
        sys.stderr.write(f"kopilka card-batch: {error}\n")
        raise typer.Exit(code=2) from None
    except KopilkaError as error:
        raise _fail(error) from None
    finally:
        engine.dispose()
    _print_json(summary)


def _import(
    importer: Callable[..., ImportReport],
    csv_file: Path,
    program: str,
    rejects: Path | None,
    db: str | None,
    *,
    what: str,
    key: str,
) -> None:
    if rejects is not None:
        _check_writable(rejects)
    engine = make_engine(db)
    try:
        upgrade(engine)
        with _progress_bar(f"importing {what}") as progress:
            report = importer(engine, program, csv_file, progress=progress)
    except CannotImport as error:
        sys.stderr.write(f"kopilka import: {error}\n")
        raise typer.Exit(code=2) from None
    except Unavailable as error:  # mid-way: the import says how far it got
        sys.stderr.write(f"kopilka import: {error.detail}\n")
        raise typer.Exit(code=3) from None
    except OperationalError as error:  # before the first row
        sys.stderr.write(f"kopilka import: the database is not reachable: {error.orig}\n")
        raise typer.Exit(code=3) from None
    finally:
        engine.dispose()
    _print_report(report, what=what, key=key)
    if rejects is not None:
        with rejects.open("w", encoding="utf-8-sig", newline="") as handle:
            write_rejects(handle, report)
    raise typer.Exit(code=1 if report.rejected else 0)


@contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A transient bar on stderr, and the callback (done, total) that moves it."""
    from rich.progress import Progress

    # no bar when stderr is a log file: it would only leave blank lines there
    with Progress(console=err_console, transient=True,
                  disable=not err_console.is_terminal) as bar:  # fmt: skip
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _check_writable(path: Path) -> None:
    """Refuse a rejects file that can't be written before importing, not after."""
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as error:
        sys.stderr.write(f"kopilka import: --rejects {path}: {error.strerror or error}\n")
        raise typer.Exit(code=2) from None


def _print_report(report: ImportReport, *, what: str, key: str) -> None:
    console.print(f"{what}: imported {report.imported}, already there {report.already_there}, "
                  f"rejected {len(report.rejected)}")  # fmt: skip
    if not report.rejected:
        return
    table = Table("line", key, "reason", title="rejected", title_justify="left")
    shown = sorted(report.rejected, key=lambda rejected: rejected.lines)[:REJECTS_SHOWN]
    for rejected in shown:
        first, last = rejected.lines[0], rejected.lines[-1]
        lines = str(first) if first == last else f"{first}–{last}"
        table.add_row(lines, Text(rejected.key), Text(rejected.reason))
    console.print(table)
    hidden = len(report.rejected) - len(shown)
    if hidden:
        console.print(f"… and {hidden} more; --rejects FILE writes every one of them")


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput([Problem("--now", f"{text!r} is not an ISO 8601 time")]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
