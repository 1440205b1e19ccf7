"""Database round trips per purchase on PostgreSQL, counted on the wire.

Run:  .venv/bin/python bench/round_trips.py              (~1 minute)
      .venv/bin/python bench/round_trips.py --purchases 200 --members 100

Needs PostgreSQL at $KOPILKA_BENCH_PG (default the local `test` database; the bench
works in a schema of its own, dropped afterwards).

How: a small TCP proxy (asyncio, in a thread of this process) sits between the server
and PostgreSQL and counts, per connection, how many times the traffic turns from
client→server to server→client — each turn is one round trip, however many statements
the client sent together (a pipeline is one). It also reads the client's side of the
protocol (TLS is off on the local server) to name what each round trip carried: the
statements' verbs and tables, `[prepared]` for a named prepared statement.

The server is `kopilka serve --workers 1` as a subprocess, its database URL pointing at
the proxy; everything is driven through the command line (`migrate`, `program apply`,
`keys create`) and the HTTP API, so nothing here depends on how Kopilka's modules are
laid out. The café program of examples/zerno/program.yaml, `--members` members with
1,000,000 points each, purchases from a pos key at the kiosk, one at a time:

- phase 1, the program as shipped: `quote` (POST …/purchases/quote), `accrual` (a 2-line
  receipt, no redemption), `redeem` (the same, paying 1.00 with points);
- phase 2, the program with a cashback campaign (1 % / 3 % from 1000.00, paid by card,
  with a budget) applied as its next version, and a unique coupon campaign (10 % off
  the receipt, single-use codes generated in one batch): `accrual` again, `cashback` (paid
  by card), `coupon` (a fresh code, not by card), `coupon+cashback` (both);
- phase 3, the program with discounts that read the member's past (an accumulative
  discount by lifetime spend, a first-purchase one, a cross-discount for a purchase at a
  partner in the last 7 days): `accrual` again — what a mechanic's reads cost;
- phase 4 (issue 18), the program as shipped with three stamp cards and two challenges:
  `accrual` again (every purchase earns stamps and progress, and now and then a reward)
  — what engagement mechanics cost a purchase, beside phase 1's `accrual`.

Each case is warmed up first (`--warm` purchases, at least one per member: program
caches, prepared statements, pooled connections, each member's first cashback), then
`--purchases` purchases are measured. A purchase's figure is the round trips between
sending its request and the wire falling quiet afterwards (so what the server sends after
answering, e.g. returning a connection to the pool, counts too). Reported per case:
median, min, max, mean and the histogram, the connections opened while measuring (a new
connection's start-up is round trips too), and what the round trips of one median
purchase — and of the one with the most — carried. `(messages PS)` is a Parse and a Sync
alone: the driver preparing a statement in a round trip of its own before executing it.
Before the cases the wire is watched idle for `--idle` seconds: pool pings, keep-alives
or background work would show there (a pool pre-ping would also show in every purchase's
list, as a round trip of its own before `BEGIN`).

The median is the steady state. The higher values of a histogram are what happens now
and then: at 77233f8, the server remembers a checked key for about a second, and the
purchase after that looks the key up again (a read-only transaction ending in ROLLBACK,
after which psycopg deallocates every prepared statement of the connection, and the next
purchases prepare theirs again). The mean includes these at this bench's request rate
(one request at a time, ~20-40/s), so it is not a figure of a loaded server.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import importlib.util
import json
import os
import platform
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "examples" / "zerno" / "program.yaml"
PG_URL = os.environ.get("KOPILKA_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LINES = [
    [{"sku": "CAP-300", "qty": 1}, {"sku": "CRS-1", "qty": 1}],
    [{"sku": "TEA-400", "qty": 2}, {"sku": "CRS-1", "qty": 1}],
    [{"sku": "LUNCH-1", "qty": 1}, {"sku": "ESP-60", "qty": 1}],
    [{"sku": "SOUP-1", "qty": 1}, {"sku": "TEA-400", "qty": 1}],
]
CASHBACK: dict[str, Any] = {
    "pending_days": 14,
    "campaigns": [
        {"code": "bench-card", "name": "Кэшбэк по карте",
         "bands": [{"min": "0.00", "percent": 1}, {"min": "1000.00", "percent": 3}],
         "payment": {"methods": ["card"]}, "budget": "100000000.00"},
    ],
}  # fmt: skip
COUPONS = {"code": "bench-10", "kind": "unique", "effect": {"percent": 10}}
CARD = {"method": "card", "bin": "22001234"}
# issue 18: three stamp cards (per receipt, per unit, per amount; one fills every few
# purchases, so rewards are given while measuring) and two challenges (visits a month with
# a points reward; spend a quarter)
STAMP_CARDS = [
    {"code": "any-visit", "stamps": 3, "per": "receipt", "reward": {"points": "10"}},
    {"code": "bakery", "stamps": 10, "per": "unit", "categories": ["bakery"],
     "reward": {"points": "50"}},
    {"code": "spend", "stamps": 100, "per": "amount", "amount": "100.00",
     "reward": {"points": "100"}},
]  # fmt: skip
CHALLENGES = [
    {"code": "visits", "goal": {"visits": 5}, "period": "month", "reward": {"points": "20"}},
    {"code": "quarter", "goal": {"spend": "100000.00"}, "period": "quarter",
     "reward": {"points": "500"}},
]  # fmt: skip
HISTORY_DISCOUNTS = [
    {"code": "loyal", "accumulative": [{"spend": "0.00", "percent": 1},
                                       {"spend": "100000.00", "percent": 2}]},
    {"code": "welcome", "amount": "1.00", "when": {"first_purchase": True}},
    {"code": "after-visit", "percent": 1,
     "when": {"bought_at": {"partners": ["zerno"], "days": 7}}},
]  # fmt: skip

# — the wire —

SSL_REQUEST, GSS_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
TABLE = re.compile(
    r"\b(INSERT INTO|(?<!FOR )(?<!KEY )UPDATE|DELETE FROM|FROM|JOIN)\s+\"?(\w+)", re.IGNORECASE
)


def summary(sql: str) -> str:
    """A statement in a few words: its first keyword, what it writes, what it reads."""
    text = " ".join(sql.split())
    if not text:
        return "(empty query)"
    first = text.split(" ", 1)[0].upper()
    if first not in ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE"):
        return text[:60]
    writes: list[str] = []
    reads: list[str] = []
    for verb, table in TABLE.findall(text):
        verb = verb.split()[0].lower()
        target, name = (reads, table) if verb in ("from", "join") else (writes, f"{verb} {table}")
        if name not in target and name.lower() not in ("select", "lateral"):
            target.append(name)
    words = [first]
    if writes:
        words.append(", ".join(writes))
    if reads:
        words.append("reads " + ",".join(reads))
    if re.search(r"\bFOR (NO KEY )?UPDATE\b", text, re.IGNORECASE):
        words.append("FOR UPDATE")
    return " ".join(words)


class Link:
    """One proxied connection: counts its turns and reads what the client sends."""

    def __init__(self, number: int, turned: Callable[[Link, list[str]], None]) -> None:
        self.number, self.turned = number, turned
        self.client_spoke_last = False
        self.started = False  # past the start-up packet: messages are typed from here
        self.opaque = False  # TLS or GSS encryption: nothing more can be read
        self.answer_due = False  # an SSL/GSS request waits for its one-byte answer
        self.buffer = bytearray()
        self.statements: dict[str, str] = {}  # prepared statement name → SQL
        self.said: list[str] = []  # what the client sent since the server last answered
        self.kinds: list[str] = []  # the message types, when nothing in them was named

    def from_client(self, data: bytes) -> None:
        self.client_spoke_last = True
        if not self.opaque:
            self.buffer += data
            self._read()

    def from_server(self, data: bytes) -> None:
        if self.answer_due:
            self.answer_due = False
            self.opaque = data[:1] in (b"S", b"G")
        if self.client_spoke_last:
            self.client_spoke_last = False
            said = self.said or [f"(messages {''.join(self.kinds)})" if self.kinds else "(unread)"]
            self.said, self.kinds = [], []
            self.turned(self, said)

    def _read(self) -> None:
        buffer = self.buffer
        while True:
            if not self.started:  # untyped: length, code
                if len(buffer) < 8:
                    return
                length, code = struct.unpack("!ii", buffer[:8])
                if len(buffer) < length:
                    return
                del buffer[:length]
                if code in (SSL_REQUEST, GSS_REQUEST):
                    self.answer_due = True
                    self.said.append("SSLRequest" if code == SSL_REQUEST else "GSSENCRequest")
                elif code == CANCEL_REQUEST:
                    self.said.append("CancelRequest")
                else:
                    self.started = True
                    self.said.append("(start-up)")
                continue
            if len(buffer) < 5:
                return
            length = struct.unpack("!i", buffer[1:5])[0]
            if len(buffer) < 1 + length:
                return
            kind, body = chr(buffer[0]), bytes(buffer[5 : 1 + length])
            del buffer[: 1 + length]
            self._message(kind, body)

    def _message(self, kind: str, body: bytes) -> None:
        self.kinds.append(kind)
        if kind == "Q":  # a simple query
            self.said.append(summary(body.split(b"\0", 1)[0].decode(errors="replace")))
        elif kind == "P":  # Parse: name, SQL
            name, sql = (part.decode(errors="replace") for part in body.split(b"\0", 2)[:2])
            self.statements[name] = sql
        elif kind == "B":  # Bind: portal, statement — what is executed
            statement = body.split(b"\0", 2)[1].decode(errors="replace")
            said = summary(self.statements.get(statement, "?"))
            self.said.append(f"{said} [prepared]" if statement else said)
        elif kind == "p":
            self.said.append("(authentication)")
        elif kind == "X":
            self.said.append("(terminate)")
        elif kind in "dcf":
            self.said.append("(COPY)")
        # S (Sync), H (Flush), D (Describe), E (Execute), C (Close) name nothing new


@dataclass
class Mark:
    round_trips: int
    connections: int
    logged: int


@dataclass
class Wire:
    """A TCP proxy to PostgreSQL counting round trips, run on its own event loop thread."""

    host: str
    port: int
    round_trips: int = 0
    connections: int = 0
    last_traffic: float = field(default_factory=time.monotonic)
    log: list[tuple[int, str]] = field(default_factory=list)  # (connection, what a turn carried)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> int:
        """Listen on a free local port, returned."""
        self.loop = asyncio.new_event_loop()
        started: list[int] = []
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            started.append(server.sockets[0].getsockname()[1])
            ready.set()
            self.loop.run_forever()

        threading.Thread(target=run, name="wire", daemon=True).start()
        ready.wait(10)
        return started[0]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    def mark(self) -> Mark:
        with self.lock:
            return Mark(self.round_trips, self.connections, len(self.log))

    def since(self, mark: Mark) -> tuple[int, int, list[tuple[int, str]]]:
        """Round trips, connections opened and what the turns carried since `mark`."""
        with self.lock:
            return (self.round_trips - mark.round_trips, self.connections - mark.connections,
                    self.log[mark.logged :])  # fmt: skip

    def settle(self, quiet: float = 0.02, timeout: float = 5.0) -> None:
        """Wait until no byte has passed for `quiet` seconds."""
        stop_at = time.monotonic() + timeout
        while time.monotonic() < stop_at:
            idle = time.monotonic() - self.last_traffic
            if idle >= quiet:
                return
            time.sleep(quiet - idle)

    def _turned(self, link: Link, said: list[str]) -> None:
        with self.lock:
            self.round_trips += 1
            self.log.append((link.number, " + ".join(said)))

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(self.host, self.port)
        except OSError:
            client_w.close()
            return
        with self.lock:
            self.connections += 1
            link = Link(self.connections, self._turned)
        await asyncio.gather(
            self._pump(client_r, server_w, link.from_client),
            self._pump(server_r, client_w, link.from_server),
        )

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        seen: Callable[[bytes], None],
    ) -> None:
        try:
            while data := await source.read(65536):
                self.last_traffic = time.monotonic()
                seen(data)  # counted before it is forwarded: the answer can't come first
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()


# — setting up —


def with_options(url: str, schema: str) -> str:
    """`url` with the schema as the connections' search_path."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def proxied(url: str, port: int) -> str:
    """`url` pointed at the proxy on 127.0.0.1:`port`, user and password kept."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def schema_of_its_own(url: str) -> Iterator[str]:
    schema = f"bench_rt_{uuid.uuid4().hex[:8]}"
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def kopilka_command(explicit: str | None) -> list[str]:
    """The `kopilka` command beside this Python (a venv's), else the one on PATH."""
    if explicit:
        return explicit.split()
    beside = Path(sys.executable).with_name("kopilka")
    found = str(beside) if beside.exists() else shutil.which("kopilka")
    if found is None:
        sys.exit("no `kopilka` command: install the package (pip install -e .) or pass --kopilka")
    return [found]


def cli(kopilka: list[str], *args: str) -> str:
    done = subprocess.run([*kopilka, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"kopilka {' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def server(kopilka: list[str], url: str, log: Path) -> Iterator[str]:
    """`kopilka serve --workers 1` over `url`; yields its base URL."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*kopilka, "serve", "--db", url, "--port", str(port), "--workers", "1"],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if process.poll() is not None:
                break
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            process.kill()
        if process.poll() is not None:
            sys.exit(f"the server did not start:\n{log.read_text()}")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def call(client: httpx.Client, method: str, path: str, key: str, body: Any = None) -> Any:
    answer = client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
    if answer.status_code >= 300:
        sys.exit(f"{method} {path} answered {answer.status_code}: {answer.text}")
    return answer.json()


# — the cases —


@dataclass
class Case:
    name: str
    path: str  # under /v1/programs/zerno
    body: Callable[[int], dict[str, Any]]  # the n-th request's body
    holds: Callable[[dict[str, Any]], bool] = lambda _: True  # the answer did what was meant


@dataclass
class Result:
    name: str
    counts: list[int]
    connections: int
    example: list[tuple[int, str]]  # what one median purchase's round trips carried
    most: list[tuple[int, str]]  # and the purchase with the most

    def figures(self) -> dict[str, Any]:
        return {
            "median": statistics.median(self.counts),
            "min": min(self.counts),
            "max": max(self.counts),
            "mean": round(statistics.fmean(self.counts), 2),
            "histogram": dict(sorted(Counter(self.counts).items())),
            "purchases": len(self.counts),
            "connections_opened": self.connections,
        }


def receipt(run: str, n: int, members: int, **more: Any) -> dict[str, Any]:
    return {"receipt_id": f"{run}-{n}", "location": "kiosk",
            "member": f"card:{200000 + (n * 7919) % members}",
            "lines": LINES[n % len(LINES)], **more}  # fmt: skip


def accrues(answer: dict[str, Any]) -> bool:
    return bool(answer["status"] == "completed" and float(answer["accrued"]) > 0)


def cashback(answer: dict[str, Any]) -> bool:
    return answer["cashback"] is not None and float(answer["cashback"]["amount"]) > 0


def loyal(answer: dict[str, Any]) -> bool:
    return any(discount["code"] == "loyal" for discount in answer["discounts"])


def engaged(answer: dict[str, Any]) -> bool:
    return accrues(answer) and len(answer.get("stamps", [])) >= 2 and "challenges" in answer


def applied(answer: dict[str, Any]) -> bool:
    return [c["applied"] for c in answer["coupons"]] == [True]


def measure(
    wire: Wire, client: httpx.Client, key: str, case: Case, warm: int, purchases: int
) -> Result:
    path = f"/v1/programs/zerno{case.path}"
    for n in range(warm):
        answer = call(client, "POST", path, key, case.body(n))
        if not case.holds(answer):
            sys.exit(f"{case.name}: not the answer meant: {json.dumps(answer)}")
    wire.settle()
    counts: list[int] = []
    logs: list[list[tuple[int, str]]] = []
    opened = 0
    for n in range(warm, warm + purchases):
        body = case.body(n)
        mark = wire.mark()
        answer = call(client, "POST", path, key, body)
        wire.settle()
        trips, connections, log = wire.since(mark)
        if not case.holds(answer):
            sys.exit(f"{case.name}: not the answer meant: {json.dumps(answer)}")
        counts.append(trips)
        logs.append(log)
        opened += connections
    median = statistics.median_low(counts)
    example = next(log for count, log in zip(counts, logs, strict=True) if count == median)
    return Result(case.name, counts, opened, example, logs[counts.index(max(counts))])


def report(result: Result) -> None:
    figures = result.figures()
    histogram = ", ".join(f"{k}×{v}" for k, v in figures["histogram"].items())
    print(f"  {result.name:<22} median {figures['median']:>4}  min {figures['min']:>2}  "
          f"max {figures['max']:>2}  mean {figures['mean']:>5}  [{histogram}]"
          f"  new connections {figures['connections_opened']}", flush=True)  # fmt: skip
    for connection, carried in result.example:
        print(f"      conn {connection}: {carried}")
    if figures["max"] > figures["median"]:
        print(f"    the purchase with {figures['max']}:")
        for connection, carried in result.most:
            print(f"      conn {connection}: {carried}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--purchases", type=int, default=50, help="measured, per case")
    parser.add_argument("--warm", type=int, default=50,
                        help="warm-up purchases per case (at least one per member)")  # fmt: skip
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds the idle wire is watched")
    parser.add_argument("--kopilka", help="the kopilka command (default: beside this Python)")
    options = parser.parse_args()
    options.warm = max(options.warm, options.members)  # each member's first-time work done
    kopilka = kopilka_command(options.kopilka)
    spec = importlib.util.find_spec("kopilka")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}; kopilka from "
          f"{spec.origin if spec else '?'}", flush=True)  # fmt: skip
    target = urlsplit(PG_URL)
    wire = Wire(target.hostname or "127.0.0.1", target.port or 5432)
    wire_port = wire.start()
    results: list[Result] = []
    with schema_of_its_own(PG_URL) as schema, tempfile.TemporaryDirectory() as folder:
        direct = with_options(PG_URL, schema)
        cli(kopilka, "migrate", "--db", direct)
        cli(kopilka, "program", "apply", str(PROGRAM), "--db", direct)
        admin = cli(kopilka, "keys", "create", "--program", "zerno", "--role", "admin",
                    "--db", direct).strip().splitlines()[-1]  # fmt: skip
        pos = cli(kopilka, "keys", "create", "--program", "zerno", "--role", "pos",
                  "--location", "kiosk", "--db", direct).strip().splitlines()[-1]  # fmt: skip
        url = with_options(proxied(PG_URL, wire_port), schema)
        with (
            server(kopilka, url, Path(folder) / "server.log") as base,
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            results = run(wire, client, admin, pos, options)
    wire.stop()
    print(json.dumps({r.name: r.figures() for r in results}, indent=2, ensure_ascii=False))


def run(wire: Wire, client: httpx.Client, admin: str, pos: str, options: Any) -> list[Result]:
    members = options.members
    for n in range(members):
        member = call(client, "POST", "/v1/programs/zerno/members", admin,
                      {"card": str(200000 + n)})  # fmt: skip
        call(client, "POST", f"/v1/programs/zerno/members/{member['id']}/adjustments", admin,
             {"points": "1000000", "reason": "bench"})  # fmt: skip
    wire.settle()
    mark = wire.mark()
    time.sleep(options.idle)
    trips, connections, log = wire.since(mark)
    print(
        f"idle wire for {options.idle:g} s (nothing asked): {trips} round trips, "
        f"{connections} connections opened" + "".join(f"\n      conn {c}: {s}" for c, s in log)
    )
    run_id = uuid.uuid4().hex[:6]
    results: list[Result] = []

    def go(case: Case) -> None:
        results.append(measure(wire, client, pos, case, options.warm, options.purchases))
        report(results[-1])

    print("\nphase 1: the café program as shipped (round trips per purchase)")
    go(Case("quote", "/purchases/quote", lambda n: receipt(f"{run_id}q", n, members),
            lambda a: a["status"] == "quote"))  # fmt: skip
    go(Case("accrual", "/purchases", lambda n: receipt(f"{run_id}a", n, members), accrues))
    go(Case("redeem", "/purchases", lambda n: receipt(f"{run_id}r", n, members, redeem="1.00"),
            lambda a: accrues(a) and a["redeemed"] == "1.00"))  # fmt: skip

    document = call(client, "GET", "/v1/programs/zerno", admin)["document"]
    document["cashback"] = copy.deepcopy(CASHBACK)
    call(client, "PUT", "/v1/programs/zerno", admin, document)
    call(client, "POST", "/v1/programs/zerno/coupon-campaigns", admin, COUPONS)
    needed = 2 * (options.warm + options.purchases)
    call(client, "POST", f"/v1/programs/zerno/coupon-campaigns/{COUPONS['code']}/batches", admin,
         {"count": needed})  # fmt: skip
    codes = [item["code"] for item in call(
        client, "GET", f"/v1/programs/zerno/coupon-campaigns/{COUPONS['code']}/codes"
        f"?format=json&limit={needed}", admin)["items"]]  # fmt: skip
    coupon, both = iter(codes[: needed // 2]), iter(codes[needed // 2 :])

    print("\nphase 2: + a cashback campaign (paid by card) and a coupon campaign")
    go(Case("accrual (phase 2)", "/purchases", lambda n: receipt(f"{run_id}A", n, members),
            lambda a: accrues(a) and a["cashback"] is None))  # fmt: skip
    go(Case("cashback", "/purchases",
            lambda n: receipt(f"{run_id}c", n, members, payment=CARD),
            lambda a: accrues(a) and cashback(a)))  # fmt: skip
    go(Case("coupon", "/purchases",
            lambda n: receipt(f"{run_id}k", n, members, coupons=[next(coupon)]),
            lambda a: accrues(a) and applied(a) and a["cashback"] is None))  # fmt: skip
    go(Case("coupon+cashback", "/purchases",
            lambda n: receipt(f"{run_id}b", n, members, coupons=[next(both)], payment=CARD),
            lambda a: accrues(a) and applied(a) and cashback(a)))  # fmt: skip

    document = call(client, "GET", "/v1/programs/zerno", admin)["document"]
    document["discounts"] = copy.deepcopy(HISTORY_DISCOUNTS)
    call(client, "PUT", "/v1/programs/zerno", admin, document)
    print("\nphase 3: + discounts that read the member's past (lifetime spend, first purchase,"
          " a recent purchase at a partner)")  # fmt: skip
    go(Case("accrual (phase 3)", "/purchases", lambda n: receipt(f"{run_id}h", n, members),
            lambda a: accrues(a) and loyal(a)))  # fmt: skip

    document = call(client, "GET", "/v1/programs/zerno", admin)["document"]
    for section in ("cashback", "discounts"):
        document.pop(section, None)
    document["stamp_cards"] = copy.deepcopy(STAMP_CARDS)
    document["challenges"] = copy.deepcopy(CHALLENGES)
    call(client, "PUT", "/v1/programs/zerno", admin, document)
    print("\nphase 4: the program as shipped + 3 stamp cards and 2 challenges (issue 18)")
    go(
        Case(
            "accrual (phase 4)", "/purchases", lambda n: receipt(f"{run_id}s", n, members), engaged
        )
    )
    return results


if __name__ == "__main__":
    main()
