"""Who is logged in to the console: checked against the ledger's users, kept in session state."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from dashboard.state import workspace
from pdo.ledger.db import session_scope
from pdo.users import Role, authenticate

_USER_KEY = "pdo_user"

ROLE_ZH: dict[str, str] = {
    Role.OPERATOR.value: "操作员",
    Role.REVIEWER.value: "审核员",
    Role.REGULATOR.value: "监管员",
}


@dataclass(frozen=True)
class Account:
    """The logged-in user: a name and a role, never the password hash."""

    name: str
    role: str

    @property
    def role_zh(self) -> str:
        return ROLE_ZH.get(self.role, self.role)

    @property
    def is_reviewer(self) -> bool:
        return self.role == Role.REVIEWER.value


def login(name: str, password: str) -> Account | None:
    """Check the password with `pdo.users.authenticate`; remember the user on success."""
    if not name.strip() or not password:
        return None
    with session_scope(workspace().engine) as s:
        user = authenticate(s, name.strip(), password)
        account = Account(user.name, user.role) if user is not None else None
    if account is not None:
        st.session_state[_USER_KEY] = {"name": account.name, "role": account.role}
    return account


def logout() -> None:
    st.session_state.pop(_USER_KEY, None)


def current_user() -> Account | None:
    stored = st.session_state.get(_USER_KEY)
    return Account(stored["name"], stored["role"]) if stored else None


def require_user() -> Account:
    """Stop a page's script when nobody is logged in (navigation already hides it)."""
    account = current_user()
    if account is None:
        st.warning("请先登录。")
        st.stop()
    return account
