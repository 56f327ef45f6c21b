"""A session needs a valid tenant, and refuses before any SQL reaches the database.

``traffic`` records every statement sent and every connection taken from the
pool; a refused session must leave both untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import text

from tenancy import Database, InvalidTenant, TenantContextRequired
from tenancy.context import parse_tenant_id
from tenancy.db.session import set_local_statement
from tests.core.traffic import Traffic

pytestmark = pytest.mark.security

INVALID_TENANT_IDS = [
    pytest.param("not-a-uuid", id="not a uuid"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("x'; DROP TABLE customers; --", id="sql injection"),
    pytest.param(
        "00000000-0000-0000-0000-000000000000'; SET app.org_id = '", id="uuid + injection"
    ),
    pytest.param("0" * 31 + "g", id="not hex"),
    pytest.param(12345, id="an integer"),
    pytest.param(b"\x00" * 16, id="raw bytes"),
]


async def test_valid_session_is_seen_by_the_traffic_recorder(
    db: Database, traffic: Traffic
) -> None:
    async with db.session(uuid.uuid4()) as session:
        await session.execute(text("SELECT 1"))

    assert traffic.checkouts == 1
    assert traffic.statements == ["SELECT 1"]


async def test_session_without_tenant_is_refused_before_any_sql(
    db: Database, traffic: Traffic
) -> None:
    with pytest.raises(TenantContextRequired):
        async with db.session():
            pass

    assert traffic.statements == []
    assert traffic.checkouts == 0


@pytest.mark.parametrize("org_id", INVALID_TENANT_IDS)
async def test_session_with_invalid_tenant_is_refused_before_any_sql(
    db: Database, traffic: Traffic, org_id: object
) -> None:
    with pytest.raises(InvalidTenant):
        async with db.session(org_id):
            pass

    assert traffic.statements == []
    assert traffic.checkouts == 0


@pytest.mark.parametrize("org_id", INVALID_TENANT_IDS)
async def test_binding_an_invalid_tenant_is_refused_before_any_sql(
    db: Database, traffic: Traffic, org_id: object
) -> None:
    with pytest.raises(InvalidTenant):
        async with db.tenant(org_id):
            pass

    assert traffic.statements == []
    assert traffic.checkouts == 0


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(str.upper, id="upper case"),
        pytest.param(lambda s: "{" + s + "}", id="braces"),
        pytest.param(lambda s: s.replace("-", ""), id="no dashes"),
        pytest.param(lambda s: "urn:uuid:" + s, id="urn"),
    ],
)
async def test_other_spellings_of_a_uuid_set_its_canonical_form(
    db: Database, spelling: Callable[[str], str]
) -> None:
    org_id = uuid.uuid4()

    async with db.session(spelling(str(org_id))) as session:
        setting = (await session.execute(text("SELECT current_setting('app.org_id')"))).scalar()

    assert setting == str(org_id)


class _Forged(uuid.UUID):
    """A UUID subclass whose text is SQL, as a hostile or buggy caller could pass."""

    def __str__(self) -> str:
        return "00000000-0000-0000-0000-000000000000'; RESET ROLE; --"


def test_uuid_subclass_reaches_the_set_local_statement_only_as_its_value() -> None:
    forged = _Forged(int=7)
    parsed = parse_tenant_id(forged)
    assert type(parsed) is uuid.UUID
    assert set_local_statement(forged) == set_local_statement(parsed)
    assert "RESET" not in set_local_statement(forged)
