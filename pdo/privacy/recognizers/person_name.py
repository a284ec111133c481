"""Person names (姓名) in Chinese free text, found by the NER backend and its rule layer."""

from __future__ import annotations

from pdo.privacy.ner import PERSON
from pdo.privacy.ner.presidio import NerRecognizer


class PersonNameRecognizer(NerRecognizer):
    """PERSON: LAC person names plus names after role titles (法定代表人张伟, 经营者：由帅)."""

    ENTITY = "PERSON"
    SPAN_ENTITY = PERSON
    CONTEXT = ("法定代表人", "经营者", "负责人", "姓名", "当事人")
