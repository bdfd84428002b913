"""`iomki verify <qr-token>`: is a permit's QR code genuine? Checked offline with the registry's public key
(shared/registry_tokens.py, pure), then — when the key came from the registry — the permit's live status,
because a genuine token proves only that the permit was issued, not that it is still valid.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.registry_tokens import InvalidRegistryToken, public_key_from_text, verify
from tooling.cli.support import Api, JsonOption, emit, fail, fields, out, shown


def verify_token(
    token: Annotated[str, typer.Argument(help="The token read from the permit's QR code (IOMKI1.…)")],
    public_key: Annotated[Path | None, typer.Option(
        help="The registry public key (PEM, or base64 of its 32 raw bytes): verify fully offline")] = None,
    registry_url: Annotated[str | None, typer.Option(
        help="Where /registry/keys is published; default the permits service (IOMKI_PERMITS_URL)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a permit's QR token; exits 1 when it is not genuine."""
    registry = None
    if public_key is not None:
        try:
            keys = [public_key_from_text(public_key.read_text())]
        except (OSError, ValueError) as exc:
            fail(f"cannot use {shown(public_key)} as the registry key: {shown(exc)}", as_json=as_json)
    else:
        registry = Api("permits", None, as_json=as_json, authenticated=False, base=registry_url)
        keys = [public_key_from_text(jwk["x"]) for jwk in registry.get("/registry/keys")["keys"]]
    claims, reasons = None, []
    for key in keys:
        try:
            claims = verify(token, key)
            break
        except InvalidRegistryToken as exc:
            reasons.append(str(exc))
    if claims is None:
        fail(f"INVALID: {shown('; '.join(dict.fromkeys(reasons)) or 'no registry key')}", as_json=as_json,
             document={"valid_signature": False, "reasons": list(dict.fromkeys(reasons))})
    result: dict[str, Any] = {"valid_signature": True, "claims": asdict(claims)}
    if registry is not None:
        live = registry.get(f"/registry/{claims.permit_number}")
        result["live"] = {"status": live["status"], "operating_allowed": live["validity"]["operating_allowed"],
                          "valid_until": live["validity"]["valid_until"]}

    def render(body: dict[str, Any]) -> None:
        out.print("[bold green]GENUINE[/bold green]: signed by the iomki registry")
        fields("Claims", body["claims"])
        if "live" in body:
            allowed = body["live"]["operating_allowed"]
            out.print(f"Live status: [bold {'green' if allowed else 'red'}]{shown(body['live']['status'])}[/]"
                      f" — operating {'allowed' if allowed else 'NOT allowed'}")
        else:
            out.print("[dim]offline check only: ask the registry for the live status[/dim]")

    emit(result, as_json, render)
