"""Liveness for load balancers and the demo script."""

from fastapi import APIRouter

from api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, str]:
    """Answers when the API can reach the ledger."""
    session.connection()
    return {"status": "ok"}
