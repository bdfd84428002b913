"""`python -m bench.instructions`: the HTTP path of POST /reports in CPU instructions, next to the bare endpoint's.

A shared 2-core VM runs the same code 15-40% faster or slower from one minute to the next, more than most changes
to a request path move it, so `bench.ingestion`'s rates cannot tell whether such a change helped. valgrind's
callgrind counts the instructions a process executes: the same count from run to run, whatever else the machine
does. Each app serves requests in-process, through ASGI (no sockets, no database):

- the reports service's real app, each request a distinct report with a new company token, its transaction (the
  group commit, measured with the database by `bench.ingestion`) answered at once;
- the bare reference endpoint of `bench.ingestion`, its INSERT answered at once.

Each app runs twice under callgrind, with `REQUESTS` and with three times as many; the difference divided by the
extra requests is one request's count, start-up (imports, building the app, minting tokens) cancelled out.
Needs valgrind (Debian's package); takes about two minutes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rich.table import Table

from bench.platform import JWT_SECRET, ROOT, console, run_as_deployed

REQUESTS = 500
WARMUP = 100
APPS = ("reports", "bare")


def report_body() -> bytes:
    return json.dumps({
        "permit_id": str(uuid.uuid4()), "period_id": str(uuid.uuid4()),
        "workforce": {"total": 400, "on_site_per_shift": [133, 100]}, "odp": 1, "pdp": 0, "new_positives": 0,
        "tests": {"pcr": 10, "antigen": 20}, "vaccinated": {"dose1": 300, "dose2": 200, "booster": 10},
        "transport_modes": ["company bus", "motorcycle"],
        "protocol_checklist": dict.fromkeys(["temperature_screening", "masks", "distancing", "ventilation",
                                             "disinfection", "handwash_stations", "pedulilindungi_scan"], True),
        "case_handling": "", "declared_true": True,
    }, separators=(",", ":")).encode()


def in_process_app(name: str) -> Any:
    """The app to count, its database work answered at once."""
    if name == "bare":
        from bench.ingestion import reference_app

        async def no_insert(report_id: uuid.UUID, payload: str) -> None:
            return None

        return reference_app(no_insert)
    from services.reports.app import create_app
    from services.reports.handlers import Accepted, ReportHandlers
    from shared.settings import PlatformSettings

    async def accepted_at_once(self: ReportHandlers, report: Any, access: Any) -> Accepted:
        return Accepted(uuid.uuid4(), False, None)

    ReportHandlers.submit = accepted_at_once  # type: ignore[method-assign]
    return create_app(PlatformSettings())


async def serve(name: str, requests: int) -> None:
    """Child process: serve WARMUP + `requests` POST /reports; tokens and bodies for the longest run are made
    whatever `requests` is, so that both runs do the same start-up work."""
    from shared.web.access import Role, mint

    app = in_process_app(name)
    made = [(mint(JWT_SECRET, role=Role.COMPANY, nib=f"81{index:011d}").encode(), report_body())
            for index in range(WARMUP + 3 * REQUESTS)]
    for token, body in made[:WARMUP + requests]:
        answered = await post(app, token, body)
        if answered != 201:
            raise RuntimeError(f"{name}: POST /reports answered {answered}")


async def post(app: Any, token: bytes, body: bytes) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/reports", "raw_path": b"/reports", "root_path": "",
             "query_string": b"", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "state": {},
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                         (b"authorization", b"Bearer " + token), (b"content-length", str(len(body)).encode())]}
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:  # the body is whole: the app only listens for a disconnect, which never comes
            await asyncio.Event().wait()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def counted(name: str, requests: int) -> int:
    """Instructions the child executed in all, as callgrind reports them."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise RuntimeError("valgrind is not installed (Debian package `valgrind`)")
    env = {**os.environ, "IOMKI_JWT_SECRET": JWT_SECRET, "IOMKI_LOG_FORMAT": "json"}
    # valgrind, running this interpreter on the bench's own module.
    run = subprocess.run(  # noqa: S603
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", "bench.instructions",
         "serve", name, str(requests)],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise RuntimeError(f"{name} under callgrind failed: {run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    console().print(f"POST /reports in-process under callgrind: {REQUESTS:,} and {3 * REQUESTS:,} requests, each "
                    "app (about two minutes)…")
    runs = [(name, requests) for name in APPS for requests in (REQUESTS, 3 * REQUESTS)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = dict(zip(runs, pool.map(lambda run: counted(*run), runs), strict=True))
    per_request = {name: (totals[name, 3 * REQUESTS] - totals[name, REQUESTS]) / (2 * REQUESTS) for name in APPS}
    table = Table(title="POST /reports in-process, CPU instructions a request (callgrind)")
    table.add_column("measure")
    table.add_column("figure", justify="right")
    table.add_column("reference", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row("the reports service (validation, access, logging, metrics; transaction answered at once) "
                  "against the bare endpoint (INSERT answered at once)", f"{per_request['reports']:,.0f}",
                  f"{per_request['bare']:,.0f}", f"{per_request['reports'] / per_request['bare']:.2f}")
    console().print(table)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        run_as_deployed(serve(sys.argv[2], int(sys.argv[3])))
    else:
        main()
