"""Decoding JSON column values: exactly what ``json.loads`` returns or raises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenancy.db.json_codec import decode_json

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_decodes_what_postgres_sends_like_json_loads(value: Any) -> None:
    # Postgres renders jsonb with ", " and ": " separators; json renders json as stored.
    for text in (json.dumps(value), json.dumps(value, separators=(",", ":"))):
        assert decode_json(text) == json.loads(text)


@given(st.text(max_size=30))
def test_any_text_decodes_or_fails_exactly_like_json_loads(text: str) -> None:
    try:
        expected = json.loads(text)
    except json.JSONDecodeError:
        with pytest.raises(json.JSONDecodeError):
            decode_json(text)
    else:
        assert repr(decode_json(text)) == repr(expected)  # repr: NaN equals itself


@pytest.mark.parametrize("text", ["{} x", "{", "", "[1,]", "nul"])
def test_malformed_document_raises_json_decode_error(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        decode_json(text)
