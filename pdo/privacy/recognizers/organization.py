"""Organisation names (企业 / 机关名称): detected so that they are kept, not redacted."""

from __future__ import annotations

from pdo.privacy.ner import ORGANIZATION
from pdo.privacy.ner.presidio import NerRecognizer


class OrganizationRecognizer(NerRecognizer):
    """ORGANIZATION: "杭州宇万五金有限公司", "杭州市萧山区市场监督管理局"."""

    ENTITY = "ORGANIZATION"
    SPAN_ENTITY = ORGANIZATION
    CONTEXT = ("当事人", "公司", "单位")
