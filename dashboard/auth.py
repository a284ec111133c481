"""Who is logged in to the console: checked against the ledger's users, kept in session state."""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st

from dashboard.i18n import t
from dashboard.registry import ConsolePage, page
from dashboard.state import settings, workspace
from pdo.ledger.db import session_scope
from pdo.users import Role, authenticate

_USER_KEY = "pdo_user"
_EXPIRED_KEY = "pdo_session_expired"

ROLE_ZH: dict[str, str] = {
    Role.OPERATOR.value: "操作员",
    Role.REVIEWER.value: "审核员",
    Role.REGULATOR.value: "监管员",
}
ROLE_EN: dict[str, str] = {
    Role.OPERATOR.value: "Operator",
    Role.REVIEWER.value: "Compliance reviewer",
    Role.REGULATOR.value: "Authority / regulator",
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
    def role_label(self) -> str:
        """The role in the session's language."""
        return t(self.role_zh, ROLE_EN.get(self.role, self.role))

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
        expires = time.time() + 60 * settings().console_session_minutes
        st.session_state[_USER_KEY] = {"name": account.name, "role": account.role, "exp": expires}
        st.session_state.pop(_EXPIRED_KEY, None)
    return account


def logout() -> None:
    st.session_state.pop(_USER_KEY, None)


def current_user() -> Account | None:
    """The logged-in user, or None — also once the session has expired (they log in again)."""
    stored = st.session_state.get(_USER_KEY)
    if not stored:
        return None
    if time.time() >= stored.get("exp", 0):
        st.session_state.pop(_USER_KEY, None)
        st.session_state[_EXPIRED_KEY] = True
        return None
    return Account(stored["name"], stored["role"])


def session_expired() -> bool:
    """Whether the last session ended by expiry (the login page says so)."""
    return bool(st.session_state.get(_EXPIRED_KEY))


def require_user() -> Account:
    """Stop a page's script when nobody is logged in (navigation already hides it)."""
    account = current_user()
    if account is None:
        st.warning(t("请先登录。", "Please log in."))
        st.stop()
    return account


def require_page(key: str) -> tuple[Account, ConsolePage]:
    """Stop the page unless the logged-in user's role may open it; every page starts here."""
    account = require_user()
    target = page(key)
    if account.role not in target.roles:
        allowed = "、".join(sorted(ROLE_ZH[r] for r in target.roles))
        allowed_en = ", ".join(sorted(ROLE_EN[r] for r in target.roles))
        st.title(t(target.title_zh, target.title_en))
        st.error(
            t(
                f"无权访问：「{target.title_zh}」仅对{allowed}开放（您的角色：{account.role_zh}）。",
                f"Access denied: {target.title_en} is open to {allowed_en} only "
                f"(your role: {ROLE_EN[account.role]}).",
            ),
            icon=":material/block:",
        )
        st.stop()
    return account, target
