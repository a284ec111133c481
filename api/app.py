"""The subscriber delivery API: app factory with every router listed in one place."""

from __future__ import annotations

from fastapi import FastAPI

from api import errors
from api.routers import health, scores
from pdo.privacy.pseudonym import Pseudonymizer
from pdo.settings import Settings
from pdo.workspace import Workspace

ROUTERS = (health.router, scores.router)


def create_app(settings: Settings) -> FastAPI:
    """Build the API for one pdo home (ledger + serving store)."""
    app = FastAPI(
        title="pdo delivery API",
        version="0.1.0",
        description="公共数据授权运营 — 数据产品交付接口 for subscribed banks",
    )
    app.state.engine = Workspace.open(settings).engine
    app.state.pseudonymizer = Pseudonymizer.from_settings(settings)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
