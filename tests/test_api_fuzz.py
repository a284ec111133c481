"""The delivery API against its own OpenAPI schema, and every endpoint's authorization, over HTTP.

Fuzzing: schemathesis generates requests for every operation of the schema the app serves
(`api.app.openapi_document()`, checked equal to the served `/openapi.json`), sends them to the
real app under uvicorn and checks each answer: no 5xx, a documented status, a body that matches
the documented schema and a documented content type. A hypothesis-drawn flag aims half of the
cases at resources that exist (bank A's watchlist, alert, batch, consent), so the fuzz reaches
the handlers' success and refusal paths, not only "not found"; another draws the credential.

Authorization: a table with a probe for every operation in the schema (a new endpoint without one
fails `test_every_operation_has_an_authorization_probe`), each run without a key, with an unknown
or malformed key, with a revoked key and, with bank A's key, against bank B's resources.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session, select

from api.app import openapi_document
from pdo.delivery.alerts import raise_alerts_for
from pdo.ledger.db import session_scope
from pdo.ledger.models import Authorization, RefusedCall
from pdo.registration import revoke_authorization
from pdo.subscribers import (
    add_subscriber,
    find_subscriber,
    issue_key,
    revoke_key,
    split_key,
    subscribe,
)
from tests.delivery_seed import BANKS, COMPANIES, VERSION, DeliveryLedger, seed_delivery
from tests.live_api import serve_api

A, B = BANKS
C = "丙银行"  # subscribed to credit_risk for 贷前审查 only, after it had set up its watchlist
PUBLIC = {
    # liveness for load balancers: answers without a key by design and shows nothing of a bank
    "GET /healthz",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
SCHEMA = schemathesis.openapi.from_dict(openapi_document())
UNKNOWN_KEY = "pdo_0123456789ab_" + "x" * 43  # well formed, never issued


# --- a ledger with three banks and their resources, served over HTTP ---------------------------


@dataclass
class Holdings:
    """What one bank set up through the API: the ids it may use and the data only it may see."""

    name: str
    key: str
    subscriber_id: str
    companies: tuple[str, str]  # on its watchlist; the first under its consent
    watchlist: str = ""
    watchlist_name: str = ""
    consent: str = ""
    consent_ref: str = ""
    alerts: list[str] = field(default_factory=list)
    batch: str = ""
    batch_sha256: str = ""

    def secrets(self) -> set[str]:
        """Strings that only this bank's answers may contain, to find them in another's."""
        # not its watchlist's name nor its consent reference: those are the bank's own namespace,
        # and another bank may well use the same (the probes below do, on purpose)
        return {
            self.subscriber_id,
            self.watchlist,
            self.consent,
            *self.alerts,
            self.batch,
            self.batch_sha256,
            *(f"{self.name}-LOAN-{i}" for i in range(2)),
        }


@dataclass
class World:
    """A served ledger: banks A and B with full holdings, C narrowed to 贷前审查, a revoked key."""

    base: str
    ledger: DeliveryLedger
    banks: dict[str, Holdings]
    revoked_key: str  # one of bank A's keys, revoked before the server started


def _call(world: World, bank: str, method: str, path: str, body: Any = None) -> httpx.Response:
    headers = {"X-API-Key": world.banks[bank].key}
    answer = httpx.request(method, world.base + path, headers=headers, json=body)
    assert answer.is_success, (method, path, answer.text)
    return answer


def _consent_body(uscc: str, reference: str) -> dict[str, Any]:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return {
        "uscc": uscc,
        "reference": reference,
        "purposes": ["贷前审查", "贷后管理"],
        "valid_from": start.isoformat(),
        "valid_until": (start + dt.timedelta(days=60)).isoformat(),
    }


def _set_up(world: World, bank: str) -> None:
    """The bank's watchlist with two members, a consent and a batch file, all through the API."""
    held = world.banks[bank]
    held.watchlist_name = f"{bank}贷后组合"
    made = _call(
        world,
        bank,
        "POST",
        "/v1/watchlists",
        {"name": held.watchlist_name, "product": "credit_risk"},
    )
    held.watchlist = made.json()["id"]
    members = [{"uscc": u, "reference": f"{bank}-LOAN-{i}"} for i, u in enumerate(held.companies)]
    _call(world, bank, "PUT", f"/v1/watchlists/{held.watchlist}/members", members)
    held.consent_ref = f"{bank}-SQ-0001"
    consent = _call(
        world, bank, "POST", "/v1/consents", _consent_body(held.companies[0], held.consent_ref)
    )
    held.consent = consent.json()["id"]
    batch = _call(
        world, bank, "POST", f"/v1/watchlists/{held.watchlist}/batches", {"format": "csv"}
    )
    held.batch, held.batch_sha256 = batch.json()["batch"], batch.json()["sha256"]


@contextmanager
def served_world(home: Path) -> Iterator[World]:
    """Seed the ledger, start the API, let each bank set itself up, raise its alerts."""
    ledger = seed_delivery(home)
    with session_scope(ledger.engine) as s:
        subscriber, c_key = add_subscriber(
            s, C, "operator", ["credit_risk"], rate_limit_per_second=10_000
        )
        revoked = issue_key(s, find_subscriber(s, A), "operator")
        revoke_key(s, (split_key(revoked) or ("", ""))[0], "operator")
        banks = {
            A: Holdings(A, ledger.keys[A], ledger.subscriber_ids[A], (COMPANIES[0], COMPANIES[1])),
            B: Holdings(B, ledger.keys[B], ledger.subscriber_ids[B], (COMPANIES[2], COMPANIES[3])),
            C: Holdings(C, c_key, subscriber.id, (COMPANIES[4], COMPANIES[5])),
        }
    try:
        with serve_api(ledger.settings) as base:
            world = World(base, ledger, banks, revoked)
            for bank in banks:
                _set_up(world, bank)
            with session_scope(ledger.engine) as s:
                for held in banks.values():
                    for uscc in held.companies:  # one alert per member, in member order
                        (alert,) = raise_alerts_for(
                            s,
                            product_name="credit_risk",
                            uscc=ledger.entity(uscc),
                            kind="new_version",
                            event_key=VERSION,
                            product_version_id=VERSION,
                        )
                        held.alerts.append(alert.id)
                narrowed = find_subscriber(s, C)
                subscribe(s, narrowed, "credit_risk/standard", "operator", purposes=["贷前审查"])
            yield world
    finally:
        ledger.engine.dispose()


def _json_text(answer: httpx.Response) -> str:
    """The body as text, JSON re-encoded without escapes so that names compare as written."""
    try:
        return json.dumps(answer.json(), ensure_ascii=False)
    except ValueError:
        return answer.text


def _assert_error(answer: httpx.Response, status: int, code: str) -> None:
    """A refusal: this status and the one error shape, with this code and a message."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body


# --- 1. fuzzing every operation of the schema --------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with served_world(tmp_path_factory.mktemp("fuzz")) as world:
        yield world


# bank A's own key most of the time; otherwise none, an unknown one, its revoked one, bank B's
CREDENTIALS = st.sampled_from(("A", "A", "A", "none", "unknown", "revoked", "B"))
FUZZ_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}


def _aim(case: Case, held: Holdings) -> None:
    """Point the case's ids at resources that exist, so the handlers go past "not found"."""
    lookup = "/scores/" in case.operation.path
    in_path: dict[str, Any] = {
        "product": "credit_risk",
        "uscc": held.companies[0] if lookup else held.companies[1],  # alerts[0] is companies[0]'s
        "watchlist_id": held.watchlist,
        "alert_id": held.alerts[0],
        "batch_id": held.batch,
        "consent_id": held.consent,
    }
    in_query = {
        "watchlist": held.watchlist,
        "watchlist_id": held.watchlist,
        "after": held.alerts[0],
        "purpose": "贷前审查",
        "consent": held.consent_ref,
    }
    in_body: dict[str, Any] = {
        "product": "credit_risk",
        "purposes": ["贷前审查"],
        "valid_until": "2099-12-31T16:00:00Z",
    }
    if isinstance(case.path_parameters, dict):
        case.path_parameters = {k: in_path.get(k, v) for k, v in case.path_parameters.items()}
    if isinstance(case.query, dict):
        case.query = {k: in_query.get(k, v) for k, v in case.query.items()}
    if isinstance(case.body, dict):
        case.body = {k: in_body.get(k, v) for k, v in case.body.items()}


def _present(case: Case, world: World, credential: str) -> None:
    """Replace whatever X-API-Key was generated by the drawn credential."""
    case.headers.pop("X-API-Key", None)  # case-insensitive, like HTTP
    keys = {
        "A": world.banks[A].key,
        "B": world.banks[B].key,
        "revoked": world.revoked_key,
        "unknown": UNKNOWN_KEY,
    }
    if credential in keys:
        case.headers["X-API-Key"] = keys[credential]


def _fuzz(case: Case, world: World, credential: str, aimed: bool) -> None:
    """One generated request, aimed and keyed as drawn, sent over HTTP and checked."""
    if aimed:
        _aim(case, world.banks[A])
    _present(case, world, credential)
    case.call_and_validate(base_url=world.base, checks=CHECKS)


@SCHEMA.parametrize()
@SCHEMA.given(credential=CREDENTIALS, aimed=st.booleans())
@settings(max_examples=25, **FUZZ_SETTINGS)
def test_every_operation_answers_as_documented(
    case: Case, credential: str, aimed: bool, fuzz_world: World
) -> None:
    """No 5xx, no undocumented status, body or content type, whatever a bank sends."""
    _fuzz(case, fuzz_world, credential, aimed)


@pytest.mark.slow
@SCHEMA.parametrize()
@SCHEMA.given(credential=CREDENTIALS, aimed=st.booleans())
@settings(max_examples=250, **FUZZ_SETTINGS)
def test_every_operation_answers_as_documented_at_length(
    case: Case, credential: str, aimed: bool, fuzz_world: World
) -> None:
    """The same fuzz with ten times the examples, for CI."""
    _fuzz(case, fuzz_world, credential, aimed)


# --- 2. authorization for every endpoint -------------------------------------------------------


@dataclass(frozen=True)
class Req:
    """A request on one bank's own resources, valid but for the key it is sent with."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None

    def send(self, world: World, key: str | None) -> httpx.Response:
        headers = {"X-API-Key": key} if key is not None else {}
        return httpx.request(
            self.method,
            world.base + self.path,
            params=self.params,
            json=self.body,
            headers=headers,
        )

    def text(self) -> str:
        """Everything the request itself says, which its answer may echo."""
        return self.path + json.dumps([self.params, self.body], ensure_ascii=False)


@dataclass(frozen=True)
class Refused:
    """Bank A asking for bank B's resource: refused like an unknown one, and recorded."""

    status: int
    code: str


@dataclass(frozen=True)
class Listed:
    """A list: bank A sees none of bank B's entries, bank B sees its own."""


@dataclass(frozen=True)
class Created:
    """Creation under a name bank B already uses: allowed for A, refused for B (its own clash)."""

    status: int
    code: str


@dataclass(frozen=True)
class Probe:
    """How to call one operation on a bank's own resources, and what bank A gets with B's."""

    operation: str  # "METHOD /path" exactly as in the OpenAPI schema
    request: Callable[[Holdings], Req]
    foreign: Refused | Listed | Created
    name: str = ""

    @property
    def id(self) -> str:
        return f"{self.operation} {self.name}".strip()


LOOKUP = "/v1/products/{product}/scores/{uscc}"
PROBES = [
    Probe(
        f"GET {LOOKUP}",
        lambda h: Req(
            "GET",
            f"/v1/products/credit_risk/scores/{h.companies[0]}",
            {"purpose": "贷前审查", "consent": h.consent_ref},
        ),
        Refused(403, "consent_not_found"),
    ),
    Probe(
        "POST /v1/consents",
        lambda h: Req("POST", "/v1/consents", body=_consent_body(h.companies[0], h.consent_ref)),
        Created(422, "invalid_consent"),
    ),
    Probe("GET /v1/consents", lambda h: Req("GET", "/v1/consents"), Listed()),
    Probe(
        "DELETE /v1/consents/{consent_id}",
        lambda h: Req("DELETE", f"/v1/consents/{h.consent}"),
        Refused(404, "unknown_consent"),
    ),
    Probe(
        "POST /v1/watchlists",
        lambda h: Req(
            "POST", "/v1/watchlists", body={"name": h.watchlist_name, "product": "credit_risk"}
        ),
        Created(409, "watchlist_exists"),
    ),
    Probe("GET /v1/watchlists", lambda h: Req("GET", "/v1/watchlists"), Listed()),
    Probe(
        "GET /v1/watchlists/{watchlist_id}",
        lambda h: Req("GET", f"/v1/watchlists/{h.watchlist}"),
        Refused(404, "watchlist_not_found"),
    ),
    Probe(
        "PUT /v1/watchlists/{watchlist_id}/members",
        lambda h: Req(
            "PUT",
            f"/v1/watchlists/{h.watchlist}/members",
            body=[{"uscc": h.companies[0], "reference": f"{h.name}-LOAN-0"}],  # as it is
        ),
        Refused(404, "watchlist_not_found"),
    ),
    Probe(
        "GET /v1/watchlists/{watchlist_id}/members",
        lambda h: Req("GET", f"/v1/watchlists/{h.watchlist}/members"),
        Refused(404, "watchlist_not_found"),
    ),
    Probe(
        "DELETE /v1/watchlists/{watchlist_id}/members/{uscc}",
        lambda h: Req("DELETE", f"/v1/watchlists/{h.watchlist}/members/{h.companies[1]}"),
        Refused(404, "watchlist_not_found"),
    ),
    Probe("GET /v1/alerts", lambda h: Req("GET", "/v1/alerts"), Listed()),
    Probe(
        "GET /v1/alerts",
        lambda h: Req("GET", "/v1/alerts", {"watchlist": h.watchlist}),
        Refused(404, "watchlist_not_found"),
        "of B's watchlist",
    ),
    Probe(
        "GET /v1/alerts",
        lambda h: Req("GET", "/v1/alerts", {"after": h.alerts[0]}),
        Refused(404, "alert_not_found"),
        "after B's alert",
    ),
    Probe(
        "POST /v1/alerts/{alert_id}/ack",
        lambda h: Req("POST", f"/v1/alerts/{h.alerts[0]}/ack"),
        Refused(404, "alert_not_found"),
    ),
    Probe(
        "POST /v1/watchlists/{watchlist_id}/batches",
        lambda h: Req("POST", f"/v1/watchlists/{h.watchlist}/batches", body={"format": "csv"}),
        Refused(404, "unknown_watchlist"),
    ),
    Probe("GET /v1/batches", lambda h: Req("GET", "/v1/batches"), Listed()),
    Probe(
        "GET /v1/batches",
        lambda h: Req("GET", "/v1/batches", {"watchlist_id": h.watchlist}),
        Listed(),
        "of B's watchlist",
    ),
    Probe(
        "GET /v1/batches/{batch_id}",
        lambda h: Req("GET", f"/v1/batches/{h.batch}"),
        Refused(404, "unknown_batch"),
    ),
    Probe(
        "GET /v1/batches/{batch_id}/file",
        lambda h: Req("GET", f"/v1/batches/{h.batch}/file"),
        Refused(404, "unknown_batch"),
    ),
]
FIRST_PROBES = [
    p for i, p in enumerate(PROBES) if p.operation not in {q.operation for q in PROBES[:i]}
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with served_world(tmp_path_factory.mktemp("auth")) as world:
        yield world


def test_every_operation_has_an_authorization_probe(world: World) -> None:
    """A new endpoint fails here until it has a probe below or is public by design."""
    served = httpx.get(f"{world.base}/openapi.json").json()
    assert served == openapi_document()  # what the fuzz generates from is what banks read
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    operations = {
        f"{method.upper()} {path}"
        for path, item in served["paths"].items()
        for method in item
        if method in methods
    }
    assert operations >= PUBLIC
    assert {p.operation for p in PROBES} == operations - PUBLIC


@pytest.mark.parametrize("operation", sorted(PUBLIC))
def test_public_operations_answer_without_a_key_and_show_no_bank(
    world: World, operation: str
) -> None:
    """The allow-list above stays honest: these really need no key and tell nothing."""
    method, path = operation.split(" ", 1)
    answer = httpx.request(method, world.base + path)
    assert answer.status_code == 200
    assert not any(s in answer.text for h in world.banks.values() for s in h.secrets())


BAD_KEYS = {
    "missing": (None, "missing_api_key"),
    "unknown": (UNKNOWN_KEY, "invalid_api_key"),
    "malformed": ("Bearer not-a-pdo-key", "invalid_api_key"),
    "revoked": ("revoked", "invalid_api_key"),
}


@pytest.mark.parametrize("credential", list(BAD_KEYS))
@pytest.mark.parametrize("probe", FIRST_PROBES, ids=lambda p: p.operation)
def test_every_operation_refuses_a_missing_unknown_or_revoked_key(
    world: World, probe: Probe, credential: str
) -> None:
    """401 with the one error shape, whatever else the request is right about."""
    key, code = BAD_KEYS[credential]
    if key == "revoked":
        key = world.revoked_key
    answer = probe.request(world.banks[A]).send(world, key)
    _assert_error(answer, 401, code)


def _refusals(world: World, bank: str, code: str) -> int:
    with Session(world.ledger.engine) as s:
        rows = s.exec(
            select(RefusedCall.id).where(
                RefusedCall.subscriber_id == world.banks[bank].subscriber_id,
                RefusedCall.code == code,
            )
        ).all()
    return len(rows)


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.id)
def test_another_banks_resources_stay_out_of_reach(world: World, probe: Probe) -> None:
    """Bank A with bank B's ids, names and references: refused or empty, never B's data."""
    request = probe.request(world.banks[B])
    hidden = {s for s in world.banks[B].secrets() if s not in request.text()}
    refused = probe.foreign.code if isinstance(probe.foreign, Refused) else ""
    before = _refusals(world, A, refused)

    asked = request.send(world, world.banks[A].key)
    leaked = sorted(s for s in hidden if s in _json_text(asked))
    assert not leaked, (leaked, asked.text)
    owner = request.send(world, world.banks[B].key)  # after A's attempt, which changed nothing

    match probe.foreign:
        case Refused(status, code):
            _assert_error(asked, status, code)
            assert _refusals(world, A, refused) == before + 1  # recorded against bank A
            assert owner.is_success, owner.text
        case Listed():
            assert asked.status_code == 200 and isinstance(asked.json(), list), asked.text
            assert owner.status_code == 200 and any(s in _json_text(owner) for s in hidden)
        case Created(status, code):
            assert asked.is_success, asked.text
            _assert_error(owner, status, code)


# --- what the fuzz found: requests the handlers did not expect ----------------------------------

ODD_REQUESTS = [
    pytest.param("GET", "/v1/nowhere", None, 404, "not_found", id="no such path"),
    pytest.param("PATCH", "/v1/watchlists", None, 405, "method_not_allowed", id="no such method"),
    pytest.param(
        "POST", "/v1/watchlists", b"\xff\xfe", 422, "invalid_request", id="body not UTF-8 JSON"
    ),
    pytest.param(
        "POST",
        "/v1/watchlists/nowhere/batches",
        b'{"format": "csv"}',
        404,
        "unknown_watchlist",
        id="batch of a watchlist that never was",  # a 500: the refusal read a detached key
    ),
    pytest.param(
        "GET",
        "/v1/watchlists/{watchlist}/members?offset=" + str(2**70),
        None,
        422,
        "invalid_request",
        id="offset past 64 bits",  # a 500: SQLite cannot bind it
    ),
]


@pytest.mark.parametrize(("method", "path", "content", "status", "code"), ODD_REQUESTS)
def test_odd_requests_get_the_one_error_shape(
    world: World, method: str, path: str, content: bytes | None, status: int, code: str
) -> None:
    """Found by the fuzz: each answered a 500 or FastAPI's own `{"detail"}` shape before."""
    held = world.banks[A]
    headers = {"X-API-Key": held.key, "Content-Type": "application/json"}
    url = world.base + path.format(watchlist=held.watchlist)
    _assert_error(httpx.request(method, url, content=content, headers=headers), status, code)


# --- consents and purposes: what the key alone does not settle ---------------------------------


def _not_yet_valid(world: World) -> Req:
    world.ledger.consent(A, COMPANIES[0], "A-SQ-LATER", starts_days_ago=-2)  # from the day after
    return Req(
        "GET",
        f"/v1/products/credit_risk/scores/{COMPANIES[0]}",
        {"purpose": "贷前审查", "consent": "A-SQ-LATER"},
    )


def _lookup_outside_scope(world: World) -> Req:
    held = world.banks[C]
    return Req(
        "GET",
        f"/v1/products/credit_risk/scores/{held.companies[0]}",
        {"purpose": "贷后管理", "consent": held.consent_ref},
    )


SCOPED = [
    pytest.param(A, _not_yet_valid, 403, "consent_expired", id="consent not yet in force"),
    pytest.param(
        C,
        _lookup_outside_scope,
        403,
        "purpose_not_subscribed",
        id="lookup for a purpose the subscription dropped",
    ),
    pytest.param(
        C,
        lambda w: Req(
            "POST",
            "/v1/watchlists",
            body={"name": "贷后二组", "product": "credit_risk", "purpose": "贷后管理"},
        ),
        403,
        "purpose_not_allowed",
        id="watchlist for a purpose the subscription dropped",
    ),
    pytest.param(
        C,
        lambda w: Req(
            "POST", f"/v1/watchlists/{w.banks[C].watchlist}/batches", body={"format": "csv"}
        ),
        403,
        "purpose_not_subscribed",
        id="batch of a watchlist whose purpose the subscription dropped",
    ),
    pytest.param(
        C,
        lambda w: Req("POST", f"/v1/alerts/{w.banks[C].alerts[0]}/ack"),
        403,
        "purpose_not_subscribed",
        id="alert ack on a watchlist whose purpose the subscription dropped",
    ),
]


@pytest.mark.parametrize(("bank", "request_for", "status", "code"), SCOPED)
def test_consent_dates_and_subscribed_purposes_are_enforced(
    world: World, bank: str, request_for: Callable[[World], Req], status: int, code: str
) -> None:
    """A valid key is not enough: the consent must be in force, the purpose subscribed."""
    answer = request_for(world).send(world, world.banks[bank].key)
    _assert_error(answer, status, code)


def test_a_revoked_grant_stops_alert_acks_like_batches(tmp_path: Path) -> None:
    """Delivery is suspended with the grant: an alert is not delivered nor billed either."""
    with served_world(tmp_path) as world:
        with session_scope(world.ledger.engine) as s:
            revoke_authorization(s, s.exec(select(Authorization)).one().id, "authority", "超范围")
        held = world.banks[A]
        batch = Req("POST", f"/v1/watchlists/{held.watchlist}/batches", body={"format": "parquet"})
        _assert_error(batch.send(world, held.key), 403, "authorization_revoked")
        ack = Req("POST", f"/v1/alerts/{held.alerts[0]}/ack").send(world, held.key)
        _assert_error(ack, 403, "authorization_revoked")
