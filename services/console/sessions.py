"""Server-side sessions: the browser holds only a random identifier in an HttpOnly cookie; the tokens stay here.

Held in memory, bounded: a console process restarted signs everyone out (the provider's session remains, so
signing in again is one redirect). Sign-ins on their way (state, PKCE verifier, nonce) are bounded the same way.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from services.console.oidc import TokenSet
from shared.web.access import Principal

SESSION_COOKIE = "iomki_console"
SIGN_IN_COOKIE = "iomki_sign_in"
SIGN_IN_SECONDS = 600.0  # how long a person may take at the provider's login form
MAX_SIGN_INS = 10_000


@dataclass
class Session:
    id: str
    principal: Principal
    name: str  # what the provider calls the person, shown in the header
    tokens: TokenSet
    started: float
    seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def csrf_matches(self, offered: str | None) -> bool:
        return offered is not None and secrets.compare_digest(offered, self.csrf)


@dataclass(frozen=True)
class SignIn:
    state: str
    nonce: str
    verifier: str
    then: str  # the console's own path to return to
    started: float


class Sessions:
    def __init__(self, *, idle: float, lifetime: float, limit: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._idle, self._lifetime, self._limit = idle, lifetime, limit
        self._monotonic = monotonic
        self._held: OrderedDict[str, Session] = OrderedDict()  # least recently seen first
        self._signing_in: OrderedDict[str, SignIn] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def start(self, principal: Principal, name: str, tokens: TokenSet) -> Session:
        now = self._monotonic()
        while len(self._held) >= self._limit:
            self._held.popitem(last=False)
        session = Session(secrets.token_urlsafe(32), principal, name, tokens, now, now)
        self._held[session.id] = session
        return session

    def find(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._held.get(session_id)
        if session is None:
            return None
        now = self._monotonic()
        if now - session.seen > self._idle or now - session.started > self._lifetime:
            del self._held[session_id]
            return None
        session.seen = now
        self._held.move_to_end(session_id)
        return session

    def end(self, session_id: str) -> Session | None:
        return self._held.pop(session_id, None)

    def begin_sign_in(self, *, nonce: str, verifier: str, then: str) -> SignIn:
        now = self._monotonic()
        while self._signing_in and (len(self._signing_in) >= MAX_SIGN_INS
                                    or now - next(iter(self._signing_in.values())).started > SIGN_IN_SECONDS):
            self._signing_in.popitem(last=False)
        sign_in = SignIn(secrets.token_urlsafe(32), nonce, verifier, then, now)
        self._signing_in[sign_in.state] = sign_in
        return sign_in

    def finish_sign_in(self, state: str) -> SignIn | None:
        """The sign-in this state began, once: a replayed or stale callback finds nothing."""
        sign_in = self._signing_in.pop(state, None)
        if sign_in is None or self._monotonic() - sign_in.started > SIGN_IN_SECONDS:
            return None
        return sign_in
