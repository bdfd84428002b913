"""The console's wiring: settings, the identity provider, sessions, the services' client, the pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from services.console import companies, dashboard, operators, public, signin, task_forces
from services.console.backend import Backend, Refused, ServiceDown, SignedOut
from services.console.oidc import Provider, SignInFailed
from services.console.sessions import SESSION_COOKIE, Sessions
from services.console.settings import ConsoleSettings
from services.console.vocabulary import N_
from services.console.web import Console, NotSignedIn, WrongRole, render, session_of, worded_problem
from shared.observability import configure_logging
from shared.runtime import serve
from shared.settings import PlatformSettings, port_of
from shared.web.access import TokenVerifier
from shared.web.http import BoundedBodies

STATIC = Path(__file__).parent / "static"


def create_app(settings: PlatformSettings | None = None, own: ConsoleSettings | None = None) -> FastAPI:
    platform = settings or PlatformSettings()
    own = own or ConsoleSettings()
    http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0), follow_redirects=False,
                             limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
    provider = Provider(platform.oidc_issuer, own.client_id, http) if platform.oidc_issuer else None
    verifier = TokenVerifier.from_settings(platform) if platform.oidc_issuer else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await http.aclose()

    app = FastAPI(title="iomki console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.console = Console(
        settings=own,
        sessions=Sessions(idle=own.session_idle.total_seconds(), lifetime=own.session_lifetime.total_seconds(),
                          limit=own.max_sessions),
        backend=Backend(http, provider), provider=provider, verifier=verifier,
        environments=Console.environments_for())
    install_errors(app)
    install_headers(app, platform.oidc_issuer)
    app.add_middleware(BoundedBodies, limit=platform.max_request_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/")
    async def home(request: Request) -> Response:
        return render(request, "home.html")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        """Ready when people can sign in: the identity provider's discovery document is at hand."""
        if provider is not None:
            try:
                await provider.document()
            except (httpx.HTTPError, SignInFailed, ValueError):
                return Response('{"status": "identity provider unreachable"}', status_code=503,
                                media_type="application/json")
        return Response('{"status": "ready"}', media_type="application/json")

    for pages in (signin.router(), public.router(), companies.router(), operators.router(),
                  task_forces.router(), dashboard.router()):
        app.include_router(pages)
    return app


def install_errors(app: FastAPI) -> None:
    """What a person sees when a page cannot go on: never a stack trace, always what to do next."""

    @app.exception_handler(NotSignedIn)
    async def to_sign_in(request: Request, _: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Response(status_code=303, headers={"Location": f"/login?next={quote(target, safe='')}"})

    @app.exception_handler(SignedOut)
    async def signed_out(request: Request, _: Exception) -> Response:
        session = session_of(request)
        if session is not None:
            request.app.state.console.sessions.end(session.id)
        response = render(request, "message.html", status=401, session=None, heading=N_("Your session has ended"),
                          message=N_("Please sign in again."), sign_in=True)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.exception_handler(WrongRole)
    async def wrong_role(request: Request, _: Exception) -> Response:
        return render(request, "message.html", status=403, heading=N_("Not for your role"),
                      message=N_("This page is for other users of the platform."))

    @app.exception_handler(ServiceDown)
    async def service_down(request: Request, _: Exception) -> Response:
        return render(request, "message.html", status=503, heading=N_("Temporarily unavailable"),
                      message=N_("Part of the platform cannot be reached. Please try again in a moment."))

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Exception) -> Response:
        status, message = ((exc.status, worded_problem(request, exc, with_fields=True)) if isinstance(exc, Refused)
                           else (400, str(exc)))
        return render(request, "message.html", status=status, heading=N_("Refused"), message=message)


def install_headers(app: FastAPI, issuer: str | None) -> None:
    # Everything the pages load is the console's own; forms post here, and signing out redirects to the provider.
    provider = f" {urlsplit(issuer).scheme}://{urlsplit(issuer).netloc}" if issuer else ""
    policy = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none';"
              f" base-uri 'none'; frame-ancestors 'none'; form-action 'self'{provider}")

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def main() -> None:
    settings = PlatformSettings()
    configure_logging("console", settings.log_format)
    serve(create_app(settings), port_of("console"))
