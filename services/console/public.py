"""The field officer's check at a plant's gate: no sign-in, a small page on a slow connection.

The officer scans the permit's QR (the camera, where the phone offers it) or types its number. A scanned code is a
registry token: its signature is checked against the registry's published key before anything is shown. A typed
number is looked up in the live registry, whose answer carries the same signed token, checked the same way; so a
page that says "valid" always rests on the registry's signature, and on the live status.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.console.backend import Refused, ServiceDown
from services.console.vocabulary import N_
from services.console.web import console_of, render
from shared import registry_tokens
from shared.contract import PERMIT_NUMBER_PATTERN

_NUMBER = re.compile(PERMIT_NUMBER_PATTERN)
KEYS_LIFESPAN = 3600.0  # the registry's key is fetched again after this long, or at once for an unknown key id


class RegistryKeys:
    def __init__(self) -> None:
        self._keys: dict[str, Any] = {}
        self._fetched = 0.0

    async def key(self, request: Request, kid: str | None) -> Any:
        if kid not in self._keys or time.monotonic() - self._fetched > KEYS_LIFESPAN:
            published = await console_of(request).backend.call(None, "permits", "GET", "/registry/keys")
            self._keys = {key["kid"]: registry_tokens.public_key_from_text(key["x"])
                          for key in published.get("keys", []) if isinstance(key, dict) and key.get("kid")}
            self._fetched = time.monotonic()
        return self._keys.get(kid or "")


def router() -> APIRouter:
    routes = APIRouter()
    keys = RegistryKeys()

    @routes.get("/verify")
    async def verify(request: Request, code: Annotated[str, Query(max_length=2000)] = "") -> Response:
        code = code.strip()
        if not code:
            return render(request, "verify.html", result=None, code="", problem=None)
        try:
            result = await _checked(request, keys, code)
        except ServiceDown:
            return render(request, "verify.html", status=503, result=None, code=code,
                          problem=N_("The registry cannot be reached. Please try again in a moment."))
        if isinstance(result, str):
            return render(request, "verify.html", status=404 if result.startswith("No permit") else 422,
                          result=None, code=code, problem=result)
        return render(request, "verify.html", result=result, code=code, problem=None)

    return routes


async def _checked(request: Request, keys: RegistryKeys, code: str) -> dict[str, Any] | str:
    """The live entry, with `scanned` when the officer's code was a signed token; or what is wrong with the code."""
    scanned = code.startswith(registry_tokens.PREFIX + ".")
    if scanned:
        key = await keys.key(request, registry_tokens.named_key_id(code))
        try:
            claims = registry_tokens.verify(code, key) if key is not None else None
        except registry_tokens.InvalidRegistryToken:
            claims = None
        if claims is None:
            return N_("This code was not signed by the IOMKI registry: the permit it shows is not genuine.")
        number = claims.permit_number
    else:
        number = code.upper()
        if not _NUMBER.fullmatch(number):
            return N_("A permit number looks like IOMKI-2021-000123.")
    try:
        entry = await console_of(request).backend.call(None, "permits", "GET", f"/registry/{number}")
    except Refused as refused:
        if refused.status == 404:
            return N_("No permit has this number in the IOMKI registry.")
        raise ServiceDown("permits") from None
    key = await keys.key(request, registry_tokens.named_key_id(str(entry.get("token", ""))))
    try:
        signed = registry_tokens.verify(str(entry.get("token", "")), key) if key is not None else None
    except registry_tokens.InvalidRegistryToken:
        signed = None
    if signed is None or signed.permit_number != entry.get("permit_number"):
        return N_("The registry's answer did not carry a valid signature. Do not rely on it; report this page.")
    return entry | {"scanned": scanned, "signed": signed}
