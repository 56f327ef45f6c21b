"""Properties of the input checks: amounts, currency codes, email spellings, messages.

Pure functions, no database: the repository tests show that the checks run on
every write path; these show that the checks themselves hold for any input.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repositories.currency import ACTIVE_CURRENCY_CODES, normalize_currency
from repositories.email_address import email_key, normalize_email
from repositories.validation import BIGINT_MAX, require_amount, shown_values
from tenancy import InvalidData

#: More examples than the stateful machines: each example costs microseconds.
FAST = settings(max_examples=300, deadline=None)

#: Characters an address may hold, including composed and combining ones.
LOCAL_CHARS = st.characters(
    categories=["Ll", "Lu", "Lo", "Mn", "Nd"], include_characters="._+-", exclude_characters="@"
)
LABEL = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?", fullmatch=True) | st.text(
    st.characters(categories=["Ll", "Lu", "Mn"]), min_size=1, max_size=12
)
EMAILS = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    st.text(LOCAL_CHARS, min_size=1, max_size=20),
    st.lists(LABEL, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,6}", fullmatch=True),
)
NOT_INTS = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.text(max_size=5)
    | st.none()
)


def outcome(function: object, value: object) -> object:
    """Return what ``function(value)`` returns, or the type of InvalidData it raises."""
    try:
        return function(value)  # type: ignore[operator]
    except InvalidData:
        return InvalidData


@FAST
@given(NOT_INTS)
def test_any_value_that_is_not_an_int_is_refused_as_an_amount(value: object) -> None:
    with pytest.raises(InvalidData, match=r"^amount must be an int"):
        require_amount(value, "amount")


@FAST
@given(st.integers(min_value=0, max_value=BIGINT_MAX))
def test_any_int_in_range_is_returned_unchanged(value: int) -> None:
    assert require_amount(value, "amount") == value


@FAST
@given(st.decimals(allow_nan=False, allow_infinity=False, places=0))
def test_an_integral_decimal_is_refused_too(value: Decimal) -> None:
    with pytest.raises(InvalidData):
        require_amount(value, "amount")


@FAST
@given(st.text(max_size=6))
def test_a_currency_is_refused_or_an_active_ascii_code(text: str) -> None:
    result = outcome(normalize_currency, text)
    assert result is InvalidData or result in ACTIVE_CURRENCY_CODES


@FAST
@given(st.text(min_size=3, max_size=3).filter(lambda s: not s.isascii()))
def test_a_currency_with_a_non_ascii_character_is_refused(text: str) -> None:
    with pytest.raises(InvalidData):
        normalize_currency(text)


@FAST
@given(st.sampled_from(sorted(ACTIVE_CURRENCY_CODES)))
def test_every_active_code_is_accepted_in_any_ascii_case(code: str) -> None:
    assert normalize_currency(code.lower()) == normalize_currency(code) == code


@FAST
@given(EMAILS | st.text(max_size=30))
def test_nfc_and_nfd_spellings_have_one_outcome(email: str) -> None:
    nfc, nfd = (unicodedata.normalize(form, email) for form in ("NFC", "NFD"))
    assert outcome(normalize_email, nfc) == outcome(normalize_email, nfd)


@FAST
@given(EMAILS)
def test_normalising_an_accepted_email_again_changes_nothing(email: str) -> None:
    normalized = outcome(normalize_email, email)
    if normalized is not InvalidData:
        assert normalize_email(normalized) == normalized


@FAST
@given(st.text())
def test_the_stored_spelling_is_idempotent_and_nfc(text: str) -> None:
    key = email_key(text)
    assert email_key(key) == key
    assert unicodedata.is_normalized("NFC", key)


@FAST
@given(EMAILS)
def test_an_accepted_email_has_no_blank_or_control_character(email: str) -> None:
    normalized = outcome(normalize_email, email)
    if normalized is not InvalidData:
        assert isinstance(normalized, str)
        assert normalized.count("@") == 1
        assert not any(unicodedata.category(c)[0] in "CZ" for c in normalized)


@FAST
@given(st.lists(st.text(max_size=1000), max_size=2000))
def test_a_listed_value_set_stays_short(values: list[str]) -> None:
    assert len(shown_values(values)) < 5 * 45 + 30
