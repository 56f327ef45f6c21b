"""``translated()``: the one boundary where database errors become the library's."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tenancy.errors import Conflict, translated


def unique_violation() -> asyncpg.UniqueViolationError:
    error = asyncpg.UniqueViolationError("duplicate key")
    error.sqlstate = "23505"
    return error


def test_a_database_error_leaves_as_its_translation_from_the_original() -> None:
    original = unique_violation()
    with pytest.raises(Conflict) as caught, translated():
        raise original
    assert caught.value.__cause__ is original


def test_an_error_without_a_translation_passes_unchanged() -> None:
    with pytest.raises(KeyError), translated():
        raise KeyError("x")


def test_cancellation_passes_unchanged() -> None:
    with pytest.raises(asyncio.CancelledError), translated():
        raise asyncio.CancelledError
