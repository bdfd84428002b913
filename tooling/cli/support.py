"""What every `iomki` command group shares: service URLs, the bearer token, HTTP calls with readable errors,
Kafka connection options, and output either as rich tables (people) or JSON on stdout (scripts).

A failure is rendered once, here: a problem+json response as its title, detail and field errors; a refused
connection as a hint to start the platform. Both exit with code 1.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, NoReturn
from uuid import UUID

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shared.messaging.bus import connection_options
from shared.settings import PlatformSettings, service_url
from shared.web.access import Role, mint
from tooling.launcher import development_secret

# Library chatter (aiokafka's connection retries) would drown the one message that explains a failure.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

err = Console(stderr=True)
out = Console(highlight=False)

# The options every command takes, spelled once.
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (for scripts) instead of tables")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar="IOMKI_TOKEN", show_envvar=True,
    help="Bearer token; default: a development operator token minted with the platform's development secret")]


class CliFailure(typer.Exit):
    """A failure already explained to the user: the command exits 1, without a traceback."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(1)
        self.message = message


def bearer_token(token: str | None) -> str:
    if token:
        return token
    # Only valid against services sharing this machine's development secret (what `iomki up` starts).
    return mint(development_secret(PlatformSettings()), role=Role.OPERATOR, sub="cli-operator", ttl_seconds=600)


def kafka_options() -> dict[str, Any]:
    """aiokafka keyword arguments for the platform's broker (KAFKA_BOOTSTRAP and its security settings)."""
    return connection_options(PlatformSettings())


class Api:
    """Thin synchronous calls to one service, turning every failure into a readable message."""

    def __init__(self, service: str, token: str | None, *, as_json: bool, authenticated: bool = True,
                 base: str | None = None) -> None:
        self.service = service
        self.base = base.rstrip("/") if base else service_url(service)
        self.as_json = as_json
        self._headers = {"Authorization": f"Bearer {bearer_token(token)}"} if authenticated else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, body=body)

    def post_bytes(self, path: str, content: bytes, content_type: str) -> Any:
        """A raw body (a photo, a document) rather than JSON."""
        return self.call("POST", path, content=content, headers={"Content-Type": content_type})

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
             content: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        try:
            with httpx.Client(base_url=self.base, headers=self._headers, timeout=15) as client:
                response = client.request(method, path, params=params, json=body, content=content, headers=headers)
        except httpx.ConnectError:
            fail(f"cannot reach {shown(self.service)} at {shown(self.base)}: is the platform running?"
                 f" try [bold]make run[/bold] (or set IOMKI_{self.service.upper()}_URL)", as_json=self.as_json,
                 document={"title": "Service unreachable", "service": self.service, "url": self.base})
        except httpx.HTTPError as exc:
            fail(f"{shown(self.service)} at {shown(self.base)}: {type(exc).__name__}: {shown(exc)}",
                 as_json=self.as_json,
                 document={"title": "HTTP error", "service": self.service, "detail": str(exc)})
        if response.is_success:
            return response.json() if response.content else None
        problem(response, as_json=self.as_json)


def problem(response: httpx.Response, *, as_json: bool) -> NoReturn:
    """Render an RFC 9457 problem (or whatever else came back) and exit 1."""
    try:
        body = response.json()
    except ValueError:
        body = {"title": response.reason_phrase, "status": response.status_code, "detail": response.text[:500]}
    if not isinstance(body, dict):
        body = {"title": response.reason_phrase, "status": response.status_code, "detail": body}
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, default=str))
        raise CliFailure(body.get("title"))
    err.print(f"[bold red]{shown(body.get('title') or response.reason_phrase)}[/bold red]"
              f" [dim]({shown(body.get('status', response.status_code))})[/dim]")
    if body.get("detail"):
        err.print(f"  {shown(body['detail'])}")
    for error in body.get("errors") or []:
        if not isinstance(error, dict):
            error = {"message": error}
        err.print(f"  [yellow]{shown(error.get('field', '?'))}[/yellow]: {shown(error.get('message', error))}")
    extensions = {k: v for k, v in body.items()
                  if k not in ("type", "title", "status", "detail", "instance", "errors")}
    for name, value in extensions.items():
        err.print(f"  [dim]{shown(name)}[/dim]: {shown(value)}")
    if response.status_code == 401:
        err.print("  [dim]pass --token or set IOMKI_TOKEN (mint one with `iomki token --role …`)[/dim]")
    raise CliFailure(body.get("title"))


def fail(message: str, *, as_json: bool, document: dict[str, Any] | None = None) -> NoReturn:
    """`message` is console markup: a value from data in it goes through `shown`."""
    if as_json:
        typer.echo(json.dumps(document or {"title": "Error", "detail": message}, ensure_ascii=False))
    else:
        err.print(f"[bold red]error[/bold red]: {message}")
    raise CliFailure(message)


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """JSON on stdout for scripts, or the command's own rich rendering for people."""
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, default=_jsonable))
    else:
        render(data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (UUID, bytes)):
        return value.hex() if isinstance(value, bytes) else str(value)
    return str(value)


# Line breaks, tabs and terminal escape sequences in a value would break a table's rows or drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPELLED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(value: Any) -> str:
    """A value as one line of plain text: control characters spelled out (`\\n`, `\\x1b`)."""
    return _CONTROL.sub(lambda m: _SPELLED.get(m[0]) or f"\\x{ord(m[0]):02x}", str(value))


def shown(value: Any) -> str:
    """A value from data, ready to sit inside console markup: printed as the text it is, on one line."""
    return escape(one_line(value))


def _cell(value: Any) -> Text:
    return Text(one_line(value))  # Text, not a string: rich never reads markup in it


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Titles, columns and cells are plain text: the titles often name a record (a permit number, a region)."""
    grid = Table(title=None if title is None else _cell(title), title_justify="left", header_style="bold")
    for position, column in enumerate(columns):
        grid.add_column(_cell(column), no_wrap=position == 0)  # the first column is an id to copy: never cut it
    for row in rows:
        grid.add_row(*(Text("") if cell is None else _cell(cell) for cell in row))
    out.print(grid)


def fields(title: str, values: dict[str, Any]) -> None:
    """A record as `name  value` lines; nested records indented."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    for name, value in values.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value) if value else "—"
        grid.add_row(_cell(name), _cell("—" if value is None else value))
    out.print(Text(one_line(title), style="bold"))
    out.print(grid)

