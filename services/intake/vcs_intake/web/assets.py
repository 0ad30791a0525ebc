"""Everything a page needs, served by the intake itself: offices' networks reach no CDN.

* ``/assets/``: the intake's own CSS and JavaScript (``static/``, in the repo);
* ``/assets/vendor/sarabun/``, ``/assets/vendor/swagger-ui/``, ``/assets/vendor/redoc/``:
  files of npm packages (``@fontsource/sarabun``, ``swagger-ui-dist``, ``redoc``) that
  ``scripts/ensure-web-assets.sh`` installs from the committed lock file into
  ``services/intake/web-assets/node_modules`` (the Docker image copies them in and sets
  ``VCS_WEB_ASSETS_DIR``);
* ``/docs`` and ``/redoc``: FastAPI's documentation pages pointed at those files.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

log = structlog.get_logger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
# services/intake/web-assets/node_modules, beside the package in the repo (editable install).
DEFAULT_NODE_MODULES = Path(__file__).resolve().parents[2] / "web-assets" / "node_modules"
VENDOR = {
    "sarabun": ("@fontsource/sarabun", "400.css"),
    "swagger-ui": ("swagger-ui-dist", "swagger-ui-bundle.js"),
    "redoc": ("redoc/bundles", "redoc.standalone.js"),
}


def mount_assets(app: FastAPI, node_modules: Path | None) -> None:
    app.mount("/assets/vendor", _vendor(node_modules or DEFAULT_NODE_MODULES), name="vendor")
    app.mount("/assets", StaticFiles(directory=STATIC_DIR), name="assets")
    _documentation(app)


def _vendor(node_modules: Path) -> FastAPI:
    """One small app of read-only mounts, one per package (nothing else of node_modules)."""
    vendor = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for name, (package, probe) in VENDOR.items():
        folder = node_modules / package
        if not (folder / probe).exists():
            log.warning(
                "web_assets.missing",
                package=package,
                folder=str(folder),
                fix="scripts/ensure-web-assets.sh (make run / make test run it)",
            )
        vendor.mount(f"/{name}", StaticFiles(directory=folder, check_dir=False), name=name)
    return vendor


# The documentation pages load nothing from elsewhere, even what their libraries would
# (ReDoc's sidebar shows a logo from its vendor's CDN): the browser does not even ask.
DOCS_POLICY = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; "
        "font-src 'self' data:; connect-src 'self'"
    )
}


def _documentation(app: FastAPI) -> None:
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} · API",
            swagger_js_url="/assets/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/assets/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/assets/vendor/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from an outside validator
        )
        page.headers.update(DOCS_POLICY)
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} · API",
            redoc_js_url="/assets/vendor/redoc/redoc.standalone.js",
            redoc_favicon_url="/assets/vendor/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
        page.headers.update(DOCS_POLICY)
        return page
