"""Shared post-processing: a backend's tokens (word, tag, offsets) → merged entity spans."""

from __future__ import annotations

from typing import NamedTuple

from pdo.privacy.ner.addresses import (
    address_spans,
    facility_spans,
    split_org_addresses,
    street_addresses,
)
from pdo.privacy.ner.base import (
    CN_ADDRESS,
    LOCATION,
    ORGANIZATION,
    PERSON,
    Span,
    resolve_overlaps,
)
from pdo.privacy.ner.rules import (
    alias_spans,
    bracketed_org_spans,
    drop_non_names,
    misread_places,
    named_places,
    org_suffix_spans,
    overlay,
    person_rule_spans,
    places_by_context,
    propagate_names,
    venues_to_places,
    whole_compound_names,
)


class Token(NamedTuple):
    word: str
    tag: str  # PER / LOC / ORG for entities, else the backend's part of speech
    start: int
    end: int


ENTITY_OF_TAG = {"PER": PERSON, "LOC": LOCATION, "ORG": ORGANIZATION}
MODEL_SCORE = 0.85
_NAME_JOINERS = frozenset("·•・.")


def model_spans(tokens: list[Token]) -> list[Span]:
    """Entity tokens as spans; adjacent parts of one entity merge (北京市+朝阳区, 乔什·杜梅尔)."""
    spans: list[Span] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        entity = ENTITY_OF_TAG.get(token.tag)
        if entity is None or not token.word.strip():
            i += 1
            continue
        start, end = token.start, token.end
        j = i + 1
        while j < len(tokens) and tokens[j].start == end:
            nxt = tokens[j]
            if ENTITY_OF_TAG.get(nxt.tag) == entity and entity != ORGANIZATION:
                end, j = nxt.end, j + 1
            elif (
                entity == PERSON
                and nxt.word in _NAME_JOINERS
                and j + 1 < len(tokens)
                and tokens[j + 1].tag == "PER"
                and tokens[j + 1].start == nxt.end
            ):
                end, j = tokens[j + 1].end, j + 2
            else:
                break
        spans.append(Span(entity, start, end, MODEL_SCORE))
        i = j
    return spans


def spans_from_tokens(text: str, tokens: list[Token], rules: bool = True) -> list[Span]:
    """Non-overlapping PERSON / LOCATION / CN_ADDRESS / ORGANIZATION spans, by position.

    Without rules: the model's entities, adjacent parts merged. With rules: venues become
    places, organisation names extend to their suffix, place chains grow into addresses
    (CN_ADDRESS when finer than a district), and names are added from their context.
    """
    spans = model_spans(tokens)
    if not rules:
        return resolve_overlaps(spans)
    spans = places_by_context(text, misread_places(text, spans))
    spans = overlay(venues_to_places(text, spans), named_places(text, spans))
    spans = overlay(spans, org_suffix_spans(text, tokens, spans))
    spans = split_org_addresses(text, spans)
    spans = overlay(spans, facility_spans(tokens))
    places = [s for s in spans if s.entity in (LOCATION, CN_ADDRESS)]
    others = [s for s in spans if s.entity not in (LOCATION, CN_ADDRESS)]
    spans = overlay(others, address_spans(text, tokens, places))
    spans = overlay(spans, street_addresses(text, tokens, spans))
    spans = overlay(spans, bracketed_org_spans(text, tokens))
    spans = overlay(spans, person_rule_spans(text, tokens))
    spans = overlay(spans, propagate_names(text, spans))
    spans = overlay(spans, alias_spans(text, spans))
    spans = whole_compound_names(text, spans, tokens)
    return resolve_overlaps(drop_non_names(text, spans))
