"""Running the API under uvicorn, in one process or several sharing one port.

`kopilka serve --workers N` runs N processes (one per core is the usual choice): each
has its own event loop and database pool, and the kernel spreads connections over them.

A fix rides along: uvicorn binds the shared socket of `--workers N` with `proto` 0, its
accepted connections inherit that, and asyncio turns TCP_NODELAY on only for sockets
that say IPPROTO_TCP — so every keep-alive answer after the first waited ~40 ms for the
client's delayed ACK (uvicorn issue #3149, open as of uvicorn 0.54: 365 requests/s
instead of ~5,500 for a trivial endpoint on two workers). The socket is re-wrapped here
as TCP before the workers receive it.
"""

from __future__ import annotations

import gc
import os
import secrets
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from kopilka.platform.db import make_engine
from kopilka.platform.http.app import create_app

FACTORY = "kopilka.platform.http.serving:app_from_environment"


def app_from_environment() -> FastAPI:
    """The app over the database `KOPILKA_DB` names, with `KOPILKA_POOL` connections
    (default 16): what each worker process builds."""
    size = int(os.environ.get("KOPILKA_POOL") or 16)
    app = create_app(
        make_engine(asynchronous=True, pool_size=size, max_overflow=0, pool_timeout=10)
    )
    # What is loaded by now lives as long as the process: out of the collector's sight,
    # full collections stay short (the slowest 1 % of purchases: ~60 → ~45 ms, bench/README.md)
    gc.collect()
    gc.freeze()
    return app


def proxy_options() -> dict[str, Any]:
    """Whose word to take for the client's address: `X-Forwarded-For` and `-Proto` are read
    only from the proxies `KOPILKA_TRUSTED_PROXIES` lists (addresses or networks, separated
    by commas), and from nobody when it is unset. uvicorn's own default believes any caller
    on 127.0.0.1, so a client on the same host could name a new address with every request
    and never meet the failed-authentication limit."""
    trusted = os.environ.get("KOPILKA_TRUSTED_PROXIES", "").strip()
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


class _Config(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        bound = super().bind_socket()
        if bound.family not in (socket.AF_INET, socket.AF_INET6) or bound.proto:
            return bound
        tcp = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, bound.detach())
        tcp.set_inheritable(True)
        return tcp


def serve(
    db: str | None, *, host: str, port: int, workers: int = 1, factory: str = FACTORY,
    **options: Any,
) -> None:  # fmt: skip
    """Serve `factory` (an import string) on host:port in `workers` processes."""
    if db:  # each worker opens the database itself: it reads the URL from the environment
        os.environ["KOPILKA_DB"] = db
    # the console's sessions are signed with one secret: every worker process must share
    # it (a sign-in answered by one worker is read by another); set KOPILKA_SECRET to keep
    # sessions across restarts
    os.environ.setdefault("KOPILKA_SECRET", secrets.token_urlsafe(32))
    options = {**proxy_options(), **options}
    config = _Config(factory, factory=True, host=host, port=port, workers=workers,
                     log_level="warning", access_log=False, **options)  # fmt: skip
    if workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
