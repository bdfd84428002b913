"""`python -m services.permits.cli verify <token> --public-key key.pem`: check a registry QR token offline."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from shared.registry_tokens import InvalidRegistryToken, public_key_from_text, verify

app = typer.Typer(help="iomki permits: offline verification of registry tokens.", no_args_is_help=True)


@app.callback()
def permits_cli() -> None:
    """Keeps `verify` a named subcommand, so more can be added without breaking scripts."""


@app.command("verify")
def verify_token(
    token: Annotated[str, typer.Argument(help="The token read from the permit's QR code")],
    public_key: Annotated[Path, typer.Option(help="The registry public key: PEM, or base64 of its 32 raw bytes "
                                                  "(the `x` or `pem` of GET /registry/keys)")],
) -> None:
    """Print the permit's signed claims, or exit 1 if the token is not genuine."""
    try:
        claims = verify(token, public_key_from_text(public_key.read_text()))
    except (InvalidRegistryToken, ValueError) as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"valid_signature": True, **asdict(claims)}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    app()
