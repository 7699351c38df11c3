"""Random ledgers: a backfill rolled forward period by period equals the definition and the full read."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from frontier_provider.storage import Staging
from tests.sap_ledgers import expected_balances, extract, full_read, random_lines, sap_system


@settings(max_examples=8)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    documents=st.integers(min_value=1, max_value=80),
    page_size=st.integers(min_value=2, max_value=60),
    reruns=st.lists(st.integers(min_value=1, max_value=16), max_size=3),
)
def test_a_rolled_forward_backfill_equals_the_definition_and_the_full_read(
    seed: int, documents: int, page_size: int, reruns: list[int]
) -> None:
    lines = random_lines(random.Random(seed), documents)
    with tempfile.TemporaryDirectory() as scratch:
        system = sap_system(Path(scratch) / "sap.sqlite", lines)
        staging = Staging(Path(scratch) / "staging")
        for number in [*range(1, 17), *reruns]:
            expected = expected_balances(lines, number)
            if not expected:
                continue  # a period without balances is refused; its own tests cover that
            balances, record = extract(system, staging, number, page_size=page_size)
            assert balances == expected, number
            if number > 1 and expected_balances(lines, number - 1):
                assert record["rolled_forward_from"] == f"2024-{number - 1:02d}"
        assert full_read(system, 16, page_size=page_size) == expected_balances(lines, 16)
