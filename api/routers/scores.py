"""Per-enterprise score lookups for subscribed banks (贷前审查 / 贷后管理)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ApiKeyDep, PseudonymizerDep, SessionDep
from api.metering import ScoreAnswer, serve_score
from pdo.privacy.entity_key import entity_key

router = APIRouter(prefix="/v1/products", tags=["scores"])

USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{18}$"


@router.get("/{product}/scores/{uscc}", response_model=ScoreAnswer)
def get_score(
    product: str,
    uscc: Annotated[str, Path(pattern=USCC_PATTERN, description="统一社会信用代码")],
    purpose: Annotated[str, Query(min_length=1, description="declared purpose, e.g. 贷前审查")],
    key: ApiKeyDep,
    session: SessionDep,
    pseudo: PseudonymizerDep,
) -> ScoreAnswer:
    """The enterprise's score, grade and product version; every answer is metered once."""
    return serve_score(session, key, product, uscc, purpose, entity_key(uscc, pseudo))
