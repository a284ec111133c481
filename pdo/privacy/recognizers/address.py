"""Specific PRC addresses (住址 / 住所): finer than a district, so they point at a household.

The backend also finds plain places (杭州市, 萧山区, 日本); those are not personal data and the
desensitized form of an address is exactly its district ("北京市朝阳区****"), so only spans
with a road, house number, building, room, village or community count as CN_ADDRESS.
"""

from __future__ import annotations

from pdo.privacy.ner import CN_ADDRESS
from pdo.privacy.ner.presidio import NerRecognizer


class AddressRecognizer(NerRecognizer):
    """CN_ADDRESS: "杭州市萧山区合山路361号23楼", "北京市朝阳区建国路88号3号楼1201室"."""

    ENTITY = "CN_ADDRESS"
    SPAN_ENTITY = CN_ADDRESS
    CONTEXT = ("住所", "住址", "地址", "家住", "位于", "经营场所")
