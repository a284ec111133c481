"""The one registration list of PRC recognizers, so analyzer and tests agree on what is found."""

from __future__ import annotations

from typing import Protocol

from presidio_analyzer import EntityRecognizer, RecognizerRegistry

from pdo.privacy.recognizers.address import AddressRecognizer
from pdo.privacy.recognizers.bank_card import BankCardRecognizer
from pdo.privacy.recognizers.email import EmailRecognizer
from pdo.privacy.recognizers.ip_address import IpAddressRecognizer
from pdo.privacy.recognizers.landline import LandlineRecognizer
from pdo.privacy.recognizers.mobile import MobileRecognizer
from pdo.privacy.recognizers.org_code import OrgCodeRecognizer
from pdo.privacy.recognizers.organization import OrganizationRecognizer
from pdo.privacy.recognizers.passport import PassportRecognizer
from pdo.privacy.recognizers.person_name import PersonNameRecognizer
from pdo.privacy.recognizers.plate import PlateRecognizer
from pdo.privacy.recognizers.resident_id import ResidentIdRecognizer
from pdo.privacy.recognizers.travel_permit import TravelPermitRecognizer
from pdo.privacy.recognizers.uscc import UsccRecognizer
from pdo.privacy.recognizers.uscc_individual import IndividualUsccRecognizer

LANGUAGE = "zh"


class RecognizerClass(Protocol):
    """A registered recognizer class: its entity name and a language-only constructor."""

    ENTITY: str

    def __call__(self, supported_language: str = ...) -> EntityRecognizer: ...


RECOGNIZERS: tuple[RecognizerClass, ...] = (
    ResidentIdRecognizer,
    UsccRecognizer,
    IndividualUsccRecognizer,
    MobileRecognizer,
    OrgCodeRecognizer,
    LandlineRecognizer,
    BankCardRecognizer,
    PlateRecognizer,
    PassportRecognizer,
    TravelPermitRecognizer,
    EmailRecognizer,
    IpAddressRecognizer,
    PersonNameRecognizer,  # NER-backed (pdo.privacy.ner): names, addresses, organisations
    AddressRecognizer,
    OrganizationRecognizer,
)


def build_registry() -> RecognizerRegistry:
    """A zh-only registry holding exactly RECOGNIZERS (never Presidio's English defaults)."""
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    for recognizer_cls in RECOGNIZERS:
        registry.add_recognizer(recognizer_cls(supported_language=LANGUAGE))
    return registry


__all__ = [
    "RECOGNIZERS",
    "AddressRecognizer",
    "BankCardRecognizer",
    "EmailRecognizer",
    "IndividualUsccRecognizer",
    "IpAddressRecognizer",
    "LandlineRecognizer",
    "MobileRecognizer",
    "OrgCodeRecognizer",
    "OrganizationRecognizer",
    "PassportRecognizer",
    "PersonNameRecognizer",
    "PlateRecognizer",
    "RecognizerClass",
    "ResidentIdRecognizer",
    "TravelPermitRecognizer",
    "UsccRecognizer",
    "build_registry",
]
