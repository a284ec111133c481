"""Console and CLI users with roles; passwords stored as scrypt hashes only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from enum import StrEnum

from sqlmodel import Session

from pdo import audit
from pdo.ledger.models import User
from pdo.names import checked_name


class Role(StrEnum):
    """Who may do what: operators run pipelines, reviewers decide, regulators audit."""

    OPERATOR = "operator"
    REVIEWER = "reviewer"
    REGULATOR = "regulator"


_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=_N, r=_R, p=_P)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def add_user(session: Session, name: str, role: Role, password: str, actor: str) -> User:
    """Create a user (or refuse a duplicate name) and audit it."""
    checked_name("user", name)
    if len(password) < 8:
        raise ValueError("password must have at least 8 characters")
    if session.get(User, name) is not None:
        raise ValueError(f"user {name!r} already exists")
    user = User(name=name, role=role.value, password_hash=hash_password(password))
    session.add(user)
    audit.record(session, actor, "user.add", name, role=role.value)
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    user = session.get(User, name)
    if user is None or not check_password(password, user.password_hash):
        return None
    return user
