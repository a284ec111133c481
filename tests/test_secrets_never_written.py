"""Secrets never written: a whole run, then a grep of everything it wrote (issue 11, item 5).

One run goes through the real CLI, the Prefect engine, the API over HTTP and the Streamlit console.
Then the pseudonym key (in every encoding it could leak as), the API keys and their secret parts,
the console passwords and the webhook secret are searched for in the CLI outputs, Python logging,
Prefect's logs and flow runs, the API's answers, every file under PDO_HOME but the key files, the
ledger dumped row by row, the Parquet datasets as text and the rendered console pages.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import sqlite3
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import polars as pl
import pytest
from google.protobuf import text_format
from google.protobuf.message import Message
from sqlmodel import col, select
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Dataframe
from typer.testing import CliRunner

from dashboard.registry import pages_for
from pdo.cli import app
from pdo.ledger.db import session_scope
from pdo.ledger.models import ServedScore
from pdo.settings import Settings
from pdo.users import Role
from pdo.workspace import Workspace
from tests.live_api import serve_api

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
BANK = "测试银行"
USERS = {
    "alice": (Role.OPERATOR, "alice-Op3rator-pw-58Qz"),
    "rita": (Role.REVIEWER, "rita-Rev1ewer-pw-K7wd"),
    "rick": (Role.REVIEWER, "rick-Rev2ewer-pw-Hx4m"),
    "regina": (Role.REGULATOR, "regina-Regul8tor-pw-Tn2v"),
}
REFUSED_USER_PASSWORD = "dup-user-pw-never-stored-9Jk3"  # `user add` refuses the duplicate name
MISTYPED_PASSWORD = USERS["regina"][1] + "-typo"  # a failed console login
CONSOLE_ROLE = Role.REGULATOR.value  # the role that may open every console page

# Each secret shown once by design, and where. The scan must find it there (the control that
# proves the grep works), and only that (artifact, secret) pair is left out of the
# must-not-appear set: the same secret anywhere else, or another secret there, is a leak.
SHOWN_ONCE = {
    "API key from `subscriber add`": "cli: subscriber add",
    "secret part of the key from `subscriber add`": "cli: subscriber add",
    "API key from `key issue` (later revoked)": "cli: key issue",
    "secret part of the key from `key issue` (later revoked)": "cli: key issue",
    "webhook secret": "api: POST /v1/watchlists",
}


@dataclass
class WrittenRun:
    """Everything one run wrote, by artifact name, and the secrets that must not be in it."""

    artifacts: dict[str, bytes] = field(default_factory=dict)
    secrets: dict[str, list[bytes]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)  # API call label -> HTTP status
    key_file: bytes = b""
    run_id: str = ""

    def add(self, name: str, content: str | bytes) -> None:
        assert name not in self.artifacts, f"artifact {name} captured twice"
        self.artifacts[name] = content.encode() if isinstance(content, str) else content


def encodings(value: bytes) -> list[bytes]:
    """The forms a byte string could be written in: as is, hex (both cases) and base64 (both
    alphabets, padded or not)."""
    b64, url = base64.b64encode(value), base64.urlsafe_b64encode(value)
    forms = [value, value.hex().encode(), value.hex().upper().encode()]
    forms += [b64, url, b64.rstrip(b"="), url.rstrip(b"=")]
    return list(dict.fromkeys(forms))


def pseudonym_key_forms(key: bytes) -> list[bytes]:
    """The key as pseudonymization uses it and, when it is hex text, the random bytes it spells."""
    forms = encodings(key)
    with contextlib.suppress(ValueError):  # a key set in PDO_PSEUDONYM_KEY may be any text
        forms += encodings(bytes.fromhex(key.decode()))
    return list(dict.fromkeys(forms))


def find_secrets(
    artifacts: Mapping[str, bytes], needles: Mapping[str, Sequence[bytes]]
) -> set[tuple[str, str]]:
    """(artifact, secret name) for every secret found in an artifact, in any of its forms."""
    return {
        (artifact, name)
        for artifact, content in artifacts.items()
        for name, forms in needles.items()
        if any(form in content for form in forms)
    }


class LogCapture:
    """Every log record at INFO and above into one file, once: through root, and directly from
    the loggers that do not propagate (some of Prefect's, uvicorn's)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.saved: list[tuple[logging.Logger, int]] = []

    def include(self, *names: str) -> None:
        for name in names:
            logger = logging.getLogger(name)
            self.saved.append((logger, logger.level))
            logger.setLevel(logging.INFO)
            if logger is logging.root or not logger.propagate:
                logger.addHandler(self.handler)

    def close(self) -> None:
        for logger, level in reversed(self.saved):
            logger.setLevel(level)
            logger.removeHandler(self.handler)
        self.handler.close()


def page_text(at: AppTest) -> str:
    """What a console run sends to the browser: every element's message, tables as CSV."""
    parts: list[str] = []
    for block in (at.main, at.sidebar):
        for node in block:
            proto = getattr(node, "proto", None)
            if isinstance(proto, Message):
                parts.append(text_format.MessageToString(proto, as_utf8=True))
            if isinstance(node, Dataframe):
                parts.append(node.value.to_csv())
    return "\n".join(parts)


def lake_text(path: Path) -> str:
    """A Parquet file's rows as JSON lines: every column, strings included, as plain text."""
    return pl.read_parquet(path).write_ndjson()


def ledger_dump(db: Path) -> str:
    """The SQLite ledger as SQL statements: every row of every table in plaintext."""
    with sqlite3.connect(db) as conn:
        return "\n".join(conn.iterdump())


def prefect_records() -> str:
    """What the Prefect API holds for the session's runs: flow runs, task runs and their logs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort, LogSort, TaskRunSort
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs are shipped in batches
    parts: list[str] = []
    with get_client(sync_client=True) as client:
        readers = (
            lambda offset: client.read_flow_runs(
                sort=FlowRunSort.ID_DESC, limit=200, offset=offset
            ),
            lambda offset: client.read_task_runs(
                sort=TaskRunSort.ID_DESC, limit=200, offset=offset
            ),
            lambda offset: client.read_logs(sort=LogSort.TIMESTAMP_ASC, limit=200, offset=offset),
        )
        for read in readers:
            offset = 0
            while batch := read(offset):
                parts += [item.model_dump_json() for item in batch]
                offset += len(batch)
    return "\n".join(parts)


@pytest.fixture(scope="module")
def written(
    prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WrittenRun]:
    """Run the whole loop once with every log captured, then gather what it wrote."""
    from pdo.gen import generate

    home = tmp_path_factory.mktemp("home")
    source = tmp_path_factory.mktemp("source") / "delivery"
    generate(source, enterprises=200, seed=7, progress=False)
    import prefect.main  # noqa: F401  (configures Prefect's loggers on import: before the capture)

    capture = LogCapture(tmp_path_factory.mktemp("logs") / "run.log")
    capture.include("", "prefect", "prefect.extra", "prefect._internal")
    try:
        record = _run(home, source, capture)
    finally:
        capture.close()
    record.add("log: python logging", capture.path.read_bytes())
    record.add("prefect: runs and logs", prefect_records())
    _gather_home(record, home)
    yield record


def _run(home: Path, source: Path, capture: LogCapture) -> WrittenRun:
    record = WrittenRun()
    env = {"PDO_HOME": str(home), "PDO_DATABASE_URL": None}
    runner = CliRunner()
    calls: dict[str, int] = {}

    def pdo(label: str, *args: str, input: str | None = None) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=env, input=input)
        calls[label] = calls.get(label, 0) + 1
        name = f"cli: {label}" + (f" #{calls[label]}" if calls[label] > 1 else "")
        text = result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            text += "\n" + "".join(traceback.format_exception(result.exception))
        record.add(name, text)
        return result.exit_code, result.output

    assert pdo("department register", "department", "register")[0] == 0
    for name, (role, password) in USERS.items():
        code, out = pdo("user add", "user", "add", name, "--role", role, input=password + "\n")
        assert code == 0, out
    code, out = pdo(
        "user add (refused)", "user", "add", "alice", "--role", "operator",
        input=REFUSED_USER_PASSWORD + "\n",
    )  # fmt: skip
    assert code != 0 and "already exists" in out
    code, out = pdo(
        "authorization grant", "authorization", "grant", "--reference", "数授〔2026〕S1号",
        "--as", "authority", "--product", "credit_risk", "--product", "operating_status",
    )  # fmt: skip
    assert code == 0, out
    code, out = pdo("run", "run", "--source", str(source), "--as", "alice", "--json")
    assert code == 0, out
    run_id = record.run_id = json.loads(out[out.index("{") :])["run_id"]
    for reviewer in ("rita", "rick"):
        code, out = pdo("signoff approve", "signoff", "approve", run_id, "--as", reviewer)
        assert code == 0, out
    assert "published credit_risk@1" in out

    code, out = pdo(
        "subscriber add", "subscriber", "add", BANK,
        "--products", "credit_risk,operating_status", "--json",
    )  # fmt: skip
    assert code == 0, out
    key = json.loads(out[out.index("{") :])["api_key"]
    code, out = pdo("key issue", "key", "issue", BANK, "--json")
    assert code == 0, out
    second_key = json.loads(out[out.index("{") :])["api_key"]
    key_id, second_key_id = key.split("_")[1], second_key.split("_")[1]
    wrong_key = f"pdo_{key_id}_{secrets.token_urlsafe(32)}"  # a known id, a guessed secret

    settings = Settings(home=home)
    with session_scope(Workspace.open(settings).engine) as s:
        company = s.exec(
            select(ServedScore.uscc).where(
                ServedScore.product_version_id == "credit_risk@1",
                ~col(ServedScore.uscc).startswith("p_"),
            )
        ).first()
    assert company is not None
    code, out = pdo(
        "consent add", "consent", "add", company, "--subscriber", BANK, "--reference", "C-1",
        "--purposes", "贷前审查", "--until", "2099-12-31",
    )  # fmt: skip
    assert code == 0, out

    with serve_api(settings) as base:
        capture.include("uvicorn", "uvicorn.error", "uvicorn.access")  # configured by the server
        score = f"{base}/v1/products/credit_risk/scores/{company}"
        lookup = {"purpose": "贷前审查", "consent": "C-1"}

        def call(
            label: str,
            method: str,
            url: str,
            api_key: str,
            params: dict[str, str] | None = None,
            body: dict[str, str] | None = None,
        ) -> httpx.Response:
            headers = {"X-API-Key": api_key}
            response = httpx.request(method, url, headers=headers, params=params, json=body)
            head = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
            record.add(f"api: {label}", f"{response.status_code}\n{head}\n\n{response.text}")
            record.statuses[label] = response.status_code
            return response

        call("lookup", "GET", score, key, params=lookup)
        call("lookup with the second key", "GET", score, second_key, params=lookup)
        call("lookup with a wrong secret", "GET", score, wrong_key, params=lookup)
        created = call(
            "POST /v1/watchlists", "POST", f"{base}/v1/watchlists", key,
            body={"name": "贷后组合", "product": "credit_risk"},
        )  # fmt: skip
        call("GET /v1/watchlists", "GET", f"{base}/v1/watchlists", key)
        code, out = pdo("key revoke", "key", "revoke", second_key_id)
        assert code == 0, out
        call("lookup with the revoked key", "GET", score, second_key, params=lookup)
        code, out = pdo("key revoke", "key", "revoke", second_key_id)  # twice: refused
        assert code != 0 and "already revoked" in out

    _console(record, home)

    pseudonym_key = settings.read_pseudonym_key()[1]
    record.key_file = (home / "secrets" / "pseudonym.key").read_bytes()
    record.secrets = {
        "pseudonym key": pseudonym_key_forms(pseudonym_key),
        "API key from `subscriber add`": [key.encode()],
        "secret part of the key from `subscriber add`": [key.split("_", 2)[2].encode()],
        "API key from `key issue` (later revoked)": [second_key.encode()],
        "secret part of the key from `key issue` (later revoked)": [
            second_key.split("_", 2)[2].encode()
        ],
        "presented wrong key": [wrong_key.encode(), wrong_key.split("_", 2)[2].encode()],
        "webhook secret": [created.json()["webhook_secret"].encode()],
        "refused user's password": [REFUSED_USER_PASSWORD.encode()],
        "mistyped console password": [MISTYPED_PASSWORD.encode()],
    }
    record.secrets |= {f"password of {name}": [pw.encode()] for name, (_, pw) in USERS.items()}
    return record


def _console(record: WrittenRun, home: Path) -> None:
    """A failed login, then a regulator's login and every page open to the role, rendered."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PDO_HOME", str(home))
        mp.delenv("PDO_DATABASE_URL", raising=False)
        mp.setenv("PDO_CONSOLE_CONTINUES_RUNS", "false")
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.run()
        for attempt, password in (
            ("failed login", MISTYPED_PASSWORD),
            ("login", USERS["regina"][1]),
        ):
            at.text_input(key="login_name").input("regina")
            at.text_input(key="login_password").input(password)
            at.button(key="login_submit").click().run()
            assert not at.exception, at.exception
            record.add(f"console: {attempt}", page_text(at))
        assert at.session_state["pdo_user"]["role"] == CONSOLE_ROLE
        # 质量报告 first: leaving it once its run selectbox held a run with Data Docs used to
        # raise (Streamlit compared options holding DataFrames); every later page checks that.
        for page in sorted(pages_for(CONSOLE_ROLE), key=lambda p: p.key != "quality"):
            at.switch_page(page.path).run()
            assert not at.exception, (page.key, at.exception)
            assert [t.value for t in at.title][:1] == [page.title_zh]
            record.add(f"console: {page.key}", page_text(at))


def _gather_home(record: WrittenRun, home: Path) -> None:
    """Every file under PDO_HOME as bytes (the key files aside), plus the ledger and the
    datasets as text, since SQLite pages and Parquet columns may hold values unreadably."""
    secret_dir = home / "secrets"
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        if path.is_relative_to(secret_dir):
            continue
        relative = path.relative_to(home).as_posix()
        record.add(f"file: {relative}", path.read_bytes())
        if path.suffix == ".parquet":
            record.add(f"parquet: {relative}", lake_text(path))
    record.add("ledger: iterdump", ledger_dump(home / "ledger.db"))


# --- the scan ----------------------------------------------------------------------------


def test_the_run_exercised_every_place_a_secret_could_leak(written: WrittenRun) -> None:
    """A scan of too little proves nothing: each kind of artifact was written and captured."""
    assert written.statuses == {
        "lookup": 200,
        "lookup with the second key": 200,
        "lookup with a wrong secret": 401,
        "POST /v1/watchlists": 201,
        "GET /v1/watchlists": 200,
        "lookup with the revoked key": 401,
    }
    names = set(written.artifacts)
    kinds = {name.split(":")[0] for name in names}
    assert kinds == {"cli", "api", "log", "prefect", "file", "parquet", "ledger", "console"}
    logs = written.artifacts["log: python logging"].decode()
    assert "HTTP Request: GET" in logs  # our own HTTP calls, through root
    assert "GET /v1/products/credit_risk/scores/" in logs  # the API server's access log
    prefect = written.artifacts["prefect: runs and logs"].decode()
    assert written.run_id in prefect and "Finished in state" in prefect
    ledger = written.artifacts["ledger: iterdump"].decode()
    assert all(a in ledger for a in ("user.add", "apikey.issue", "apikey.revoke"))
    assert len([n for n in names if n.startswith("parquet:")]) >= 8
    assert len([n for n in names if n.startswith("console:")]) == 2 + len(pages_for(CONSOLE_ROLE))
    assert "登录失败" in written.artifacts["console: failed login"].decode()


def test_the_scan_finds_each_secret_where_it_is_shown_once_by_design(written: WrittenRun) -> None:
    """The control: the scanner does see a secret where it is printed, and the key in its file."""
    hits = find_secrets(written.artifacts, written.secrets)
    shown = {(artifact, secret) for secret, artifact in SHOWN_ONCE.items()}
    assert shown <= hits, sorted(shown - hits)
    in_key_file = find_secrets({"secrets/pseudonym.key": written.key_file}, written.secrets)
    assert in_key_file == {("secrets/pseudonym.key", "pseudonym key")}


def test_no_secret_appears_in_anything_the_run_wrote(written: WrittenRun) -> None:
    """Keys, passwords and the pseudonym key stay out of logs, ledger, lake, pages and errors."""
    shown = {(artifact, secret) for secret, artifact in SHOWN_ONCE.items()}
    leaks = sorted(find_secrets(written.artifacts, written.secrets) - shown)
    assert leaks == [], "\n".join(f"{secret} found in {artifact}" for artifact, secret in leaks)
