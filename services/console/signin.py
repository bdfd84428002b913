"""Signing in at the identity provider (authorization code with PKCE), signing out there too, and the language."""

from __future__ import annotations

import secrets
from typing import Annotated

import httpx
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.console.backend import Refused
from services.console.i18n import LOCALE_COOKIE, LOCALES
from services.console.oidc import Pkce, SignInFailed
from services.console.sessions import SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_SECONDS
from services.console.vocabulary import N_
from services.console.web import checked_form, console_of, locale_of, own_path, redirect, render, session_of
from shared.web.http import Problem

CALLBACK = "/auth/callback"
YEAR = 365 * 24 * 3600


def router() -> APIRouter:
    routes = APIRouter()

    @routes.get("/login")
    async def login(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
        console = console_of(request)
        if console.provider is None:
            return render(request, "message.html", status=503, heading=N_("Sign-in is not available"),
                          message=N_("No identity provider is configured for this console."))
        pkce = Pkce.new()
        sign_in = console.sessions.begin_sign_in(nonce=secrets.token_urlsafe(24), verifier=pkce.verifier,
                                                 then=own_path(next))
        try:
            url = await console.provider.authorization_url(
                redirect_uri=console.settings.public_url + CALLBACK, state=sign_in.state, nonce=sign_in.nonce,
                pkce=pkce, locale=locale_of(request))
        except (httpx.HTTPError, SignInFailed):
            return render(request, "message.html", status=503, heading=N_("Sign-in is not available"),
                          message=N_("The identity provider cannot be reached. Please try again in a moment."))
        response = RedirectResponse(url, status_code=303)
        # The state rides in the browser too: a callback this browser did not start (login CSRF) is refused.
        response.set_cookie(SIGN_IN_COOKIE, sign_in.state, max_age=int(SIGN_IN_SECONDS), path=CALLBACK,
                            httponly=True, samesite="lax", secure=console.settings.secure_cookies)
        return response

    @routes.get(CALLBACK)
    async def callback(request: Request, code: Annotated[str | None, Query(max_length=4096)] = None,
                       state: Annotated[str | None, Query(max_length=200)] = None,
                       error: Annotated[str | None, Query(max_length=200)] = None) -> Response:
        console = console_of(request)
        started = request.cookies.get(SIGN_IN_COOKIE)
        if error or not code or not state or not started or not secrets.compare_digest(started, state):
            return render(request, "message.html", status=400, heading=N_("Sign-in did not complete"),
                          message=N_("The sign-in was cancelled, expired or began in another browser. Please sign in"
                                  " again."))
        sign_in = console.sessions.finish_sign_in(state)
        if sign_in is None or console.provider is None or console.verifier is None:
            return render(request, "message.html", status=400, heading=N_("Sign-in did not complete"),
                          message=N_("The sign-in was cancelled, expired or began in another browser. Please sign in"
                                  " again."))
        try:
            tokens = await console.provider.exchange(code=code, verifier=sign_in.verifier, nonce=sign_in.nonce,
                                                     redirect_uri=console.settings.public_url + CALLBACK)
            principal = await console.verifier.verify(tokens.access_token)
            claims = await console.provider.id_token_claims(tokens.id_token or "")
        except (SignInFailed, Problem, httpx.HTTPError):
            return render(request, "message.html", status=401, heading=N_("Sign-in did not complete"),
                          message=N_("The identity provider's answer could not be verified, or your account has no"
                                  " role on this platform. Please contact the ministry's help desk."))
        name = str(claims.get("name") or claims.get("preferred_username") or principal.sub)[:120]
        session = console.sessions.start(principal, name, tokens)
        response = redirect(sign_in.then)
        response.delete_cookie(SIGN_IN_COOKIE, path=CALLBACK)
        response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="lax",
                            secure=console.settings.secure_cookies)
        return response

    @routes.post("/logout")
    async def logout(request: Request) -> Response:
        console = console_of(request)
        session = session_of(request)
        if session is None:
            return redirect("/")
        try:
            await checked_form(request, session)
        except Refused:
            return redirect("/")
        console.sessions.end(session.id)
        target = None
        if console.provider is not None:
            try:
                target = await console.provider.end_session_url(id_token=session.tokens.id_token,
                                                                post_logout_redirect_uri=console.settings.public_url
                                                                + "/")
            except (httpx.HTTPError, SignInFailed):
                target = None  # the console's own session is over; the provider's ends with its own lifetime
        response = redirect(target or "/")
        response.delete_cookie(SESSION_COOKIE)
        return response

    @routes.get("/language/{locale}")
    async def language(request: Request, locale: str,
                       next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
        if locale not in LOCALES:
            return render(request, "message.html", status=404, heading=N_("Not found"),
                          message=N_("This language is not offered."))
        response = redirect(own_path(next))
        response.set_cookie(LOCALE_COOKIE, locale, max_age=YEAR, samesite="lax", httponly=True,
                            secure=console_of(request).settings.secure_cookies)
        return response

    return routes
