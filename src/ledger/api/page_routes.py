"""The web pages: HTML shells and their static assets, no data.

A page carries no data and needs no key. Its scripts ask the public JSON API
for everything they show, with the API key the user typed into the page
(kept in the browser's ``sessionStorage``, never in a URL or a cookie), so a
page shows exactly what its key may read through the API and nothing more
(docs/architecture.md, "Web pages"). Every page is sent with a strict
Content-Security-Policy: scripts, styles and connections only from this
server, no inline script or style.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ledger import __version__

WEB = Path(__file__).resolve().parent.parent / "web"
STATIC_PATH = "/static"
DOCS_ASSETS_PATH = "/static-docs"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

# Swagger UI and ReDoc pages carry inline script and styles of FastAPI's
# making; everything they load still comes from this server only. (ReDoc's
# side menu shows a logo from its vendor's CDN: this policy refuses it, and
# ReDoc then leaves it out.)
DOCS_HEADERS = PAGE_HEADERS | {
    "Content-Security-Policy": "; ".join(
        (
            "default-src 'none'",
            "script-src 'self' 'unsafe-inline'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )
}

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
templates = Jinja2Templates(directory=WEB / "templates")


def static_files() -> StaticFiles:
    """The CSS and JavaScript the pages load, from the installed package."""
    return StaticFiles(directory=WEB / "static")


class NotAnIdError(ValueError):
    """A page's path names no valid id (answered with a 404 page)."""


def docs_assets() -> StaticFiles:
    """Swagger UI's and ReDoc's scripts and styles, as the ``fastapi-offline``
    package installs them (never copied into this repository)."""
    return StaticFiles(directory=str(files("fastapi_offline") / "static"))


def page(request: Request, template: str, **context: Any) -> HTMLResponse:
    """``template`` rendered with the strict page headers."""
    return templates.TemplateResponse(
        request,
        template,
        {"version": __version__, "path": request.url.path, **context},
        headers=PAGE_HEADERS,
    )


def not_found(request: Request, _error: Exception) -> HTMLResponse:
    """The page for a path whose id is not an id: a 404 a person can read."""
    response = page(request, "not_found.html")
    response.status_code = 404
    return response


def _id(text: str) -> str:
    try:
        return str(UUID(text))
    except ValueError:
        raise NotAnIdError(text) from None


@router.get("/")
def home(request: Request) -> HTMLResponse:
    return page(request, "home.html")


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    """The API's interactive documentation, from assets on this server."""
    html = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="ledger - API",
        swagger_js_url=f"{DOCS_ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PATH}/favicon.svg",
    )
    html.headers.update(DOCS_HEADERS)
    return html


@router.get("/redoc")
def redoc() -> HTMLResponse:
    """The API's reference, from assets on this server."""
    html = get_redoc_html(
        openapi_url="/openapi.json",
        title="ledger - API reference",
        redoc_js_url=f"{DOCS_ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{STATIC_PATH}/favicon.svg",
        with_google_fonts=False,
    )
    html.headers.update(DOCS_HEADERS)
    return html


@router.get("/dashboard")
def dashboard(request: Request) -> HTMLResponse:
    """The creator dashboard: their goods (signed in with a creator key)."""
    return page(request, "dashboard.html")


@router.get("/dashboard/goods/{good_id}")
def dashboard_good(request: Request, good_id: str) -> HTMLResponse:
    """One good on the creator dashboard: stock, velocity, lineage, statement."""
    return page(request, "dashboard_good.html", good_id=_id(good_id))


@router.get("/explore")
def explore(request: Request) -> HTMLResponse:
    """The provenance explorer's search: a unit or good by id or receipt link."""
    return page(request, "explore.html")


@router.get("/explore/units/{unit_id}")
def explore_unit(request: Request, unit_id: str) -> HTMLResponse:
    """A unit's provenance, verifiable in the browser (a permalink)."""
    return page(request, "explore_unit.html", unit_id=_id(unit_id))


@router.get("/explore/goods/{good_id}")
def explore_good(request: Request, good_id: str) -> HTMLResponse:
    """A good's edition and units (a permalink)."""
    return page(request, "explore_good.html", good_id=_id(good_id))


@router.get("/auditor")
def auditor(request: Request) -> HTMLResponse:
    """The auditor console (signed in with an auditor key)."""
    return page(request, "auditor.html")
