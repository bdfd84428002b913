"""The operators' dashboard: one static page the permits service serves, which reads the five services' APIs.

The page holds no data of its own: from the browser it calls each service's read endpoints with the operator's
bearer token (taken from the URL fragment `#token=…`, which never reaches a server log, and kept in
sessionStorage). So every figure it shows is what the services' own APIs answer, under their own access rules,
and the services allow those cross-origin GETs (CORS) from the dashboard's origins only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from shared.settings import SERVICES, service_url

REFRESH_SECONDS = 5
STATIC = Path(__file__).parent / "static"
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


def service_urls() -> dict[str, str]:
    """Where the browser finds each service: `IOMKI_<SERVICE>_URL`, or the local default port."""
    return {service: service_url(service)
            for service in SERVICES}


def router() -> APIRouter:
    # A page, not an API: kept out of the OpenAPI document.
    routes = APIRouter(tags=["dashboard"], include_in_schema=False)

    @routes.get("/dashboard")
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    @routes.get("/dashboard/config.json")
    async def config() -> dict:
        return {"services": service_urls(), "refresh_seconds": REFRESH_SECONDS}

    for name, media_type in _ASSETS.items():
        routes.add_api_route(f"/dashboard/{name}", _asset(STATIC / name, media_type), methods=["GET"])
    return routes


def _asset(path: Path, media_type: str):  # noqa: ANN202 - a route endpoint
    async def asset() -> FileResponse:
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})

    return asset
