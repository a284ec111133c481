"""Presidio's findings, fast: the registry's own patterns replayed exactly, NER in batches.

The scanner (:mod:`.scanner`) is the entry point; the other modules are its parts: reading
patterns (:mod:`.patterns`, :mod:`.alphabets`, :mod:`.programs`), scanning and scoring alphabet
runs (:mod:`.runs`), what decides a recognizer's outcome (:mod:`.plans`), Presidio's
post-processing (:mod:`.results`) and the anonymizer's replace operators (:mod:`.anonymize`).
"""

from pdo.privacy.fastscan.anonymize import anonymize, placeholder_for
from pdo.privacy.fastscan.results import Result, remove_duplicates
from pdo.privacy.fastscan.scanner import FastScanner, get_scanner

__all__ = [
    "FastScanner",
    "Result",
    "anonymize",
    "get_scanner",
    "placeholder_for",
    "remove_duplicates",
]
