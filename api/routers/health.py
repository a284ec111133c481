"""Liveness for load balancers and the demo script."""

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import ReadSessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(session: ReadSessionDep) -> dict[str, str]:
    """Answers when the API can read the ledger, even while a writer holds it (a busy ledger is
    not a dead API: a load balancer must not take it out of service for a long settlement)."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}
