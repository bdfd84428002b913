"""Logging in to the development identity provider the way a browser does, without a browser.

`log_in` runs the OpenID Connect authorization-code flow with PKCE (S256) over plain HTTP requests: the
authorization request, Keycloak's login form, the redirect back with a code (read, not followed), and the code's
exchange at the token endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tooling.embedded_keycloak import development_realm

REDIRECT_URI = "http://127.0.0.1:49152/callback"  # nothing listens there: the code is read from the redirect


class LoginRefused(Exception):
    """The provider gave no code: a wrong password, a refused request, or an error page."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response


class _LoginForm(HTMLParser):
    """The action of Keycloak's login form (`<form id="kc-form-login" ... action="...">`)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and found.get("id") == "kc-form-login" and found.get("action"):
            self.action = found["action"]  # HTMLParser has unescaped it (`&amp;` between the query's fields)


def login_form_action(page: str) -> str | None:
    parser = _LoginForm()
    parser.feed(page)
    return parser.action


def pkce_pair() -> tuple[str, str]:
    """A code verifier (43 URL-safe characters) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def discovery(issuer: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.get(f"{issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document


@dataclass(frozen=True)
class Authorization:
    """What the browser brings back to the client: the code, and what the client kept to exchange it."""

    code: str
    verifier: str
    client_id: str
    redirect_uri: str
    token_endpoint: str


async def authorize(
    issuer: str,
    username: str,
    password: str,
    *,
    client_id: str = "iomki-console",
    redirect_uri: str = REDIRECT_URI,
    pkce: bool = True,
) -> Authorization:
    """The front channel: the authorization request, the login form filled in, the code from the redirect."""
    endpoints = await discovery(issuer)
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": "openid", "state": state, "nonce": nonce}
    if pkce:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    async with httpx.AsyncClient(timeout=30.0, follow_redirects=False) as client:
        page = await client.get(endpoints["authorization_endpoint"], params=params)
        if page.status_code != 200:
            raise LoginRefused(f"the authorization request was refused ({page.status_code})", page)
        action = login_form_action(page.text)
        if action is None:
            raise LoginRefused("no login form in the provider's page", page)
        # Keycloak's session cookies are `Secure`: a browser sends them to a loopback address over plain HTTP (a
        # secure context), Python's cookie jar only over HTTPS, so they go back as a browser would send them.
        cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in client.cookies.jar)
        submitted = await client.post(urljoin(str(page.url), action), headers={"Cookie": cookies},
                                      data={"username": username, "password": password, "credentialId": ""})
    code = _code_from(submitted, redirect_uri, state)
    return Authorization(code, verifier, client_id, redirect_uri, endpoints["token_endpoint"])


async def exchange(authorization: Authorization, *, verifier: str | None = None) -> dict[str, Any]:
    """The back channel: the code and its PKCE verifier (another one, to see it refused) for the tokens."""
    async with httpx.AsyncClient(timeout=30.0) as client:
        exchanged = await client.post(authorization.token_endpoint, data={
            "grant_type": "authorization_code", "code": authorization.code,
            "redirect_uri": authorization.redirect_uri, "client_id": authorization.client_id,
            "code_verifier": verifier or authorization.verifier,
        })
    if exchanged.status_code != 200:
        raise LoginRefused(f"the code exchange was refused: {exchanged.text}", exchanged)
    tokens: dict[str, Any] = exchanged.json()
    return tokens


async def log_in(issuer: str, username: str, password: str, **options: Any) -> dict[str, Any]:
    """The token response (access_token, id_token, refresh_token, expires_in, ...) of a real login; `options` as
    `authorize` takes them."""
    return await exchange(await authorize(issuer, username, password, **options))


def sample_password(username: str) -> str:
    """The password of one of the development realm's sample users."""
    user = next(user for user in development_realm()["users"] if user["username"] == username)
    password: str = user["credentials"][0]["value"]
    return password


def _code_from(response: httpx.Response, redirect_uri: str, state: str) -> str:
    """The code in the redirect back to the client, which must carry our `state`."""
    location = response.headers.get("location", "")
    if response.status_code not in (302, 303) or not location.startswith(redirect_uri.split("?")[0]):
        raise LoginRefused(f"the login gave no redirect to the client ({response.status_code})", response)
    query = parse_qs(urlsplit(location).query)
    if query.get("state") != [state]:
        raise LoginRefused("the redirect's state is not the one sent", response)
    if "code" not in query:
        raise LoginRefused(f"the redirect carries no code: {query.get('error')}", response)
    return query["code"][0]


def claims(token: str) -> dict[str, Any]:
    """A JWT's payload, not verified: for a test's assertions on what the provider issued."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def header(token: str) -> dict[str, Any]:
    """A JWT's header (its `kid`), not verified."""
    part = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded
