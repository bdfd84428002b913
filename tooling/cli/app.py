"""The `iomki` command: bring the platform up, mint development tokens, and operate it.

Each command group lives in its own module (shared/cli_<group>.py) and is wired here.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from typing import Annotated

import typer
from rich.console import Console

from shared import regions
from shared.contract import NIB_PATTERN
from shared.observability import configure_logging
from shared.settings import PlatformSettings, local_url
from shared.web.access import COMPANY_ROLES, REGIONAL_ROLES, SUB_MAX_LENGTH, Role, mint
from tooling.cli import (
    alerts, casework, cases, dlq, estates, events, permits, ppkm, regimes, reports, sectors, supervision,
)
from tooling.cli.status import status
from tooling.cli.verify import verify_token
from tooling.demo.runner import demo
from tooling.launcher import PROCESSES, Platform, development_secret

app = typer.Typer(help="iomki: industrial operating permits for a health emergency.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def up() -> None:
    """Start the whole platform on this machine (embedded PostgreSQL and broker unless configured)."""
    settings = PlatformSettings()
    configure_logging("launcher", settings.log_format)
    platform = Platform(settings)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started where SIGINT was ignored (a background job)
    try:
        console.print("[bold]iomki[/bold]: preparing database, broker, topics and migrations…")
        asyncio.run(platform.prepare())
        for service in PROCESSES:
            platform.start_service(service)
        ready = asyncio.run(platform.wait_ready())
        _print_welcome(settings, platform, ready)
        while True:
            for service, process in list(platform.processes.items()):
                if process.poll() is not None:
                    console.print(f"[yellow]{service} exited with {process.returncode}; restarting[/yellow]")
                    time.sleep(1.0)
                    platform.start_service(service)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        console.print("iomki: stopping services, broker and database…")
        platform.stop()
        console.print("iomki: stopped.")


def _print_welcome(settings: PlatformSettings, platform: Platform, ready: dict[str, bool]) -> None:
    console.print()
    width = max(map(len, PROCESSES))
    for service in PROCESSES:
        state = "[green]ready[/green]" if ready.get(service) else "[red]not ready[/red]"
        base = local_url(service)
        docs = "" if service == "console" else f"   docs {base}/docs"
        console.print(f"  {service:<{width}} {base}{docs}   {state}")
    if platform.identity_provider is not None:
        console.print(f"  {'keycloak':<{width}} {platform.identity_provider.issuer}   (development identity"
                      " provider: sample users and passwords in deploy/keycloak/README.md)")
    token = mint(development_secret(settings), role=Role.OPERATOR, sub="dev-operator", ttl_seconds=12 * 3600)
    console.print()
    console.print("Development operator token (12 h):")
    typer.echo(token)
    console.print("Operators' dashboard (sign in as operator / operator-dev):")
    typer.echo(f"{local_url('console')}/dashboard")
    console.print("Mint others with: [bold]iomki token --role task_force --region 32.16[/bold]"
                  " | --role company --nib 8120000123456 | --role agency | --role regional_office --region 32.16"
                  " | --role estate --nib 8120000700001 | --role health_office --region 32.16")
    console.print("Ctrl-C stops everything.")


@app.command()
def token(
    role: Annotated[Role, typer.Option(help=" | ".join(role.value for role in Role))],
    region: Annotated[str | None, typer.Option(
        help="A task force's or an office's province or regency code, or ID for national")] = None,
    nib: Annotated[str | None, typer.Option(help="A company's or an estate company's 13-digit NIB")] = None,
    sub: Annotated[str | None, typer.Option(help="Subject (who); generated when omitted")] = None,
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds", min=1, max=12 * 3600)] = 3600,
) -> None:
    """Mint a bearer token for development and tests (production tokens come from the identity provider)."""
    if role in REGIONAL_ROLES and not region:
        raise typer.BadParameter(f"a {role.value} token needs --region (a province or regency code)",
                                 param_hint="--region")
    if region is not None and not regions.is_region(region):
        raise typer.BadParameter(
            f"{region!r} is not a province code (32), a regency code (32.16) or {regions.NATIONAL}",
            param_hint="--region")
    if role in COMPANY_ROLES and not nib:
        raise typer.BadParameter(f"a {role.value} token needs --nib", param_hint="--nib")
    # What the services' verifier takes (shared/web/access.py): a token it would refuse is of no use.
    if nib is not None and not re.fullmatch(NIB_PATTERN, nib):
        raise typer.BadParameter(f"{nib!r} is not a 13-digit NIB", param_hint="--nib")
    if sub is not None and len(sub) > SUB_MAX_LENGTH:
        raise typer.BadParameter(f"at most {SUB_MAX_LENGTH} characters", param_hint="--sub")
    typer.echo(mint(development_secret(PlatformSettings()), role=role, sub=sub, region=region, nib=nib,
                    ttl_seconds=ttl))

app.command("status")(status)
app.command("verify")(verify_token)
app.command("demo")(demo)
app.add_typer(permits.app, name="permits")
app.command("worklists")(casework.worklists)
app.add_typer(casework.reactivations, name="reactivations")
app.add_typer(casework.objections, name="objections")
app.add_typer(sectors.app, name="sectors")
app.add_typer(estates.app, name="estates")
app.command("worklist")(supervision.worklist)
app.add_typer(supervision.complaints, name="complaints")
app.add_typer(supervision.inspections, name="inspections")
app.add_typer(supervision.sanction_requests, name="sanction-requests")
app.add_typer(reports.app, name="reports")
app.add_typer(regimes.app, name="regimes")
app.add_typer(ppkm.app, name="ppkm")
app.add_typer(ppkm.plants, name="plants")
app.add_typer(cases.app, name="cases")
app.add_typer(cases.contacts, name="contacts")
app.add_typer(alerts.app, name="alerts")
app.add_typer(events.app, name="events")
app.add_typer(dlq.app, name="dlq")
