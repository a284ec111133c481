"""The serving worker's libpq pipeline (`api.serving.wire`) against a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from psycopg import errors
from sqlalchemy.engine import make_url

from api.serving import pg, wire
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.postgres

ODD_ITEMS = ["plain", 'quote"d', "back\\slash", "comma,brace{}", "空 格", "NULL", ""]
# Without quotes or backslashes: these take the one-join path, which must quote them the same.
QUOTELESS_ITEMS = ["plain", "comma,brace{}", "空 格", "NULL", "", " lead", "a\x1fb"]


def _run(work: Any) -> Any:
    async def main() -> Any:
        assert POSTGRES_URL is not None
        conn = await pg.connect(make_url(POSTGRES_URL))
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("sql", "value", "expected"),
    [
        ("SELECT %b::text", "贷前审查", "贷前审查"),
        ("SELECT %b::text IS NULL", None, "t"),
        ("SELECT %b::int + 1", 41, "42"),
        ("SELECT %b::date + 1", dt.date(2026, 12, 31), "2027-01-01"),
        ("SELECT %b::boolean", True, "t"),
        ("SELECT array_to_json(%b::text[])", ODD_ITEMS, None),
        ("SELECT array_to_json(%b::text[])", QUOTELESS_ITEMS, None),
        ("SELECT array_to_json(%b::text[])", [], None),
        ("SELECT array_to_json(%b::text[])", [""], None),
    ],
)
def test_a_parameter_reaches_postgresql_as_sent(sql: str, value: Any, expected: str | None) -> None:
    async def work(conn: wire.WireConnection) -> list[wire.TextRows]:
        return await conn.round([(sql, [value])])

    ((row,),) = _run(work)
    if expected is None:  # the array: every element back as it was, in order
        import json

        assert json.loads(row[0] or "") == value
    else:
        assert row == (expected,)


def test_a_round_answers_each_query_in_order_and_skips_statements_without_rows() -> None:
    async def work(conn: wire.WireConnection) -> list[wire.TextRows]:
        return await conn.round(
            [
                ("BEGIN", ()),
                ("SELECT g FROM generate_series(1, %b) g", [3]),
                ("SELECT %b::text || 'b'", ["a"]),
                ("COMMIT", ()),
            ]
        )

    assert _run(work) == [[], [("1",), ("2",), ("3",)], [("ab",)], []]


def test_a_failing_statement_raises_its_error_and_skips_the_rest() -> None:
    async def work(conn: wire.WireConnection) -> list[wire.TextRows]:
        return await conn.round([("SELECT %b::int", ["not a number"]), ("SELECT 1", ())])

    with pytest.raises(errors.InvalidTextRepresentation):
        _run(work)


def test_a_round_queued_behind_another_runs_after_it_and_is_received_after_it() -> None:
    """The serving worker queues a batch's first reads behind the COMMIT of the one before:
    they run in that order on the server, and each round's rows come back to its own caller."""

    async def work(conn: wire.WireConnection) -> tuple[list[wire.TextRows], list[wire.TextRows]]:
        await conn.round([("CREATE TEMP TABLE counter (n int)", ())])
        first = conn.send([("BEGIN", ()), ("INSERT INTO counter VALUES (%b)", [7]), ("COMMIT", ())])
        second = conn.send([("SELECT sum(n) + %b FROM counter", [1])])
        await conn.flush()
        return await conn.receive(first), await conn.receive(second)

    assert _run(work) == ([[], [], []], [[("8",)]])


def test_a_round_with_a_parameter_it_cannot_send_queues_nothing() -> None:
    """An unsendable parameter is refused before anything is queued: the next round runs."""

    async def work(conn: wire.WireConnection) -> list[wire.TextRows]:
        with pytest.raises(TypeError):
            conn.send([("BEGIN", ()), ("SELECT %b::text", [object()])])
        return await conn.round([("SELECT 1", ())])

    assert _run(work) == [[("1",)]]


def test_statements_beyond_the_prepared_limit_are_released_and_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wire, "MAX_PREPARED", 3)

    async def work(conn: wire.WireConnection) -> tuple[list[str], int]:
        answers = []
        for k in [*range(6), 0, 1]:  # the first ones were released, then prepared again
            ((row,),) = await conn.round([(f"SELECT %b::int + {k}", [100])])
            answers.append(row[0] or "")
        ((held,),) = await conn.round([("SELECT count(*) FROM pg_prepared_statements", ())])
        return answers, int(held[0] or 0)

    answers, held = _run(work)
    assert answers == ["100", "101", "102", "103", "104", "105", "100", "101"]
    assert held <= 3


@pytest.mark.parametrize("items", [[1, "a"], ["a", None], [b"bytes"]])
def test_only_lists_of_strings_are_sent_as_arrays(items: list[Any]) -> None:
    with pytest.raises(TypeError, match="only lists of strings"):
        wire.encoded(items)
