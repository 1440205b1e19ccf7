"""The server the HTTP benchmark loads: Kopilka's app, plus one trivial endpoint.

`POST /bench/echo` parses the same JSON body a purchase sends (with the app's own body
reader) and answers a small document: the ceiling of this server on this machine, in
the same processes, with the same middleware, against which purchases are compared.

Run by bench/http_bench.py as `python bench/http_server.py PORT WORKERS` with
KOPILKA_DB set; it serves exactly as `kopilka serve --workers N` does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from kopilka.platform.http.common import Body
from kopilka.platform.http.serving import app_from_environment, serve


def app_factory() -> FastAPI:
    app = app_from_environment()

    @app.post("/bench/echo", include_in_schema=False)
    async def echo(body: Body) -> dict[str, Any]:
        return {"ok": True, "fields": len(body)}

    return app


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` for workers
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    serve(None, host="127.0.0.1", port=port, workers=workers,
          factory="bench.http_server:app_factory")  # fmt: skip
