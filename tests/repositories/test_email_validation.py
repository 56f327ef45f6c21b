"""Emails are checked and stored in one spelling: stripped, NFC-normalised, lower-cased."""

from __future__ import annotations

import unicodedata
import uuid

import pytest

from repositories.account import Accounts
from repositories.email_address import normalize_email
from repositories.models import Customer
from tenancy import Conflict, Database, InvalidData
from tests.repositories.members_support import new_user

MALFORMED = [
    "no-at-sign",
    "two@@example.com",
    "a@b@example.com",
    "@example.com",
    "local@",
    "local@localhost",
    "with space@example.com",
    "nul\x00@example.com",
    "zero\u200bwidth@example.com",
    "local@exa_mple.com",
    "local@-example.com",
    "local@example..com",
    "local@example.com.",
    "local@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",  # full-width letters
    "local@192.0.2.1",
    f"{'l' * 65}@example.com",
    f"local@{'d' * 63}.{'d' * 63}.{'d' * 63}.{'d' * 60}.com",
]

BLANK = ["", "   ", "\t\n"]

#: 'josé' spelt with one code point (NFC) and with 'e' plus a combining accent (NFD).
NFC = unicodedata.normalize("NFC", "José@Example.com")
NFD = unicodedata.normalize("NFD", "José@Example.com")


async def customer_count(db: Database, org_id: uuid.UUID) -> int:
    async with db.unit_of_work(org_id) as uow:
        return await uow.customers.count()


@pytest.mark.parametrize("email", MALFORMED, ids=repr)
async def test_add_refuses_a_malformed_email(db: Database, org_a: uuid.UUID, email: str) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="email"):
            await uow.customers.add(Customer(email=email))


@pytest.mark.parametrize("email", BLANK, ids=repr)
async def test_add_refuses_a_blank_email(db: Database, org_a: uuid.UUID, email: str) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="email must not be blank"):
            await uow.customers.add(Customer(email=email))


async def test_refused_add_leaves_the_customer_count_unchanged(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        for email in ["no-at-sign", "   "]:
            with pytest.raises(InvalidData):
                await uow.customers.add(Customer(email=email))
        await uow.commit()
    assert await customer_count(db, org_a) == 0


async def test_email_is_stored_nfc_and_lower_case(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email=f"  {NFD}  "))
        await uow.commit()
    assert customer.email == "josé@example.com"
    assert unicodedata.is_normalized("NFC", customer.email)


async def test_nfd_spelling_of_an_existing_customer_is_a_conflict(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        await uow.customers.add(Customer(email=NFC))
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(Conflict):
            await uow.customers.add(Customer(email=NFD))
    assert await customer_count(db, org_a) == 1


async def test_find_by_email_matches_the_other_normal_form(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email=NFC))
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        found = await uow.customers.find_by_email(NFD)
    assert found is not None
    assert found.id == customer.id


async def test_internationalised_domain_is_accepted(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email="Kunde@Bücher.example"))
    assert customer.email == "kunde@bücher.example"


async def test_add_many_inserts_nothing_when_one_email_is_refused(
    db: Database, org_a: uuid.UUID
) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData):
            await uow.customers.add_many([Customer(email="ok@example.com"), Customer(email="")])
        await uow.commit()
    assert await customer_count(db, org_a) == 0


async def test_upsert_refuses_a_blank_email(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="email must not be blank"):
            await uow.customers.upsert({"email": "   ", "name": "x"})


async def test_update_refuses_a_malformed_email(db: Database, org_a: uuid.UUID) -> None:
    async with db.unit_of_work(org_a) as uow:
        customer = await uow.customers.add(Customer(email="before@example.com"))
        with pytest.raises(InvalidData):
            await uow.customers.update(customer.id, {"email": "no-at-sign"})
        assert customer.email == "before@example.com"


async def test_register_member_refuses_a_malformed_email(db: Database, org_a: uuid.UUID) -> None:
    user = new_user()
    user.email = "no-at-sign"
    async with db.unit_of_work(org_a) as uow:
        with pytest.raises(InvalidData, match="exactly one '@'"):
            await uow.organizations.register_member(user)


async def test_register_member_stores_the_nfc_spelling(db: Database, org_a: uuid.UUID) -> None:
    user = new_user()
    user.email = unicodedata.normalize("NFD", f"Zoë-{user.username}@Example.com")
    async with db.unit_of_work(org_a) as uow:
        await uow.organizations.register_member(user)
        await uow.commit()
    async with db.unit_of_work(org_a) as uow:
        found = await uow.users.find_by_email(unicodedata.normalize("NFC", user.email))
    assert found is not None
    assert found.email == f"zoë-{user.username}@example.com"


async def test_sign_up_refuses_a_blank_email(db: Database) -> None:
    with pytest.raises(InvalidData, match="email must not be blank"):
        await Accounts(db.engine).register("   ", "blank", None)


def test_refusal_does_not_repeat_the_address() -> None:
    # Refusals are logged; an address is personal data.
    with pytest.raises(InvalidData) as refused:
        normalize_email("secret.person@@example.com")
    assert "secret" not in str(refused.value)


def test_address_of_254_octets_is_accepted_and_255_refused() -> None:
    domain = f"{'d' * 63}.{'d' * 63}.{'d' * 63}.com"  # 194 octets
    local = "l" * (254 - 1 - len(domain))
    assert len(normalize_email(f"{local}@{domain}")) == 254
    with pytest.raises(InvalidData, match="at most 254 octets"):
        normalize_email(f"{local}l@{domain}")


def refusal(address: str) -> str | None:
    """Return why ``normalize_email`` refuses ``address``, or ``None``."""
    try:
        normalize_email(address)
    except InvalidData as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("code", range(128))
def test_an_ascii_character_is_refused_exactly_when_it_is_a_space_or_control(code: int) -> None:
    # Other checks may refuse some characters too (a second '@'); this one must
    # name exactly categories Z* and C*, as it does beyond ASCII.
    reason = refusal(f"a{chr(code)}b@example.com") or ""
    space_or_control = unicodedata.category(chr(code))[0] in "CZ"

    assert ("whitespace or control" in reason) == space_or_control
