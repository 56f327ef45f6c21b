"""Reading what a partition accepts from its bound, as Postgres renders it."""

from __future__ import annotations

import pytest

from tenancy.testing.partition_values import literals, routable_rows

pytestmark = pytest.mark.security


def test_a_list_partition_gives_one_row_per_value() -> None:
    rows = routable_rows(["region"], ["FOR VALUES IN ('eu', 'it''s')"])

    assert rows == [{"region": "eu"}, {"region": "it's"}]


def test_a_range_partition_gives_its_inclusive_lower_bound() -> None:
    rows = routable_rows(["day", "n"], ["FOR VALUES FROM ('2030-01-01', 5) TO ('2030-02-01', 0)"])

    assert rows == [{"day": "2030-01-01", "n": "5"}]


@pytest.mark.parametrize(
    "bound",
    [
        "DEFAULT",
        "FOR VALUES WITH (modulus 4, remainder 1)",
        "FOR VALUES FROM (MINVALUE) TO ('2030-01-01')",
        "FOR VALUES IN (NULL)",
    ],
)
def test_partitions_that_take_anything_or_no_usable_value_add_nothing(bound: str) -> None:
    assert routable_rows(["k"], [bound]) == []


def test_negative_numbers_and_keywords_are_literals() -> None:
    assert literals("-5, 2.5, TRUE, NULL") == ["-5", "2.5", "TRUE", None]
