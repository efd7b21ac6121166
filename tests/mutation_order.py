"""A pytest plugin for ``make mutate``: under mutmut, run the cheap, sharp tests first.

mutmut runs each mutant's tests with ``-x`` (stop at the first failure) in the order of a Python set,
so a mutant that a hand-worked shape test kills in a millisecond could first wait for seconds of API
tests. With ``MUTANT_UNDER_TEST`` set (mutmut sets it in every worker) the collected tests are put in
the order of ``FIRST`` (a file not listed goes last), each file's tests in their order in the file, so
that a module's fixtures are set up once, not once per interleaving. It changes no verdict, only how
soon a killed mutant is known. Outside mutmut it does nothing.
Registered by ``tests/conftest.py``.
"""

from __future__ import annotations

import os

import pytest

FIRST = (
    # hand-worked numbers and contracts, microseconds per test
    "test_shapes.py",
    "test_shapes_explain.py",
    "test_core_contracts.py",
    "test_im2col.py",
    "test_pool.py",
    "test_conv.py",
    "test_padding_modes.py",
    "test_core_torch.py",
    # properties (a few hundred examples), then the API through a TestClient, slowest last
    "test_core_properties.py",
    "test_limits_at_edges.py",
    "test_request_limits.py",
    "test_api_padding_modes.py",
    "test_api_conv.py",
    "test_api_compute.py",
    "test_api_hard_cases.py",
    "test_api_read.py",
    "test_shapes_js.py",
    "test_security_headers.py",
)
"""Test files in the order mutmut should try them: fastest per test first (``pytest --durations=0`` on
the selection, 2026-12-01)."""


def mutation_rank(nodeid: str) -> int:
    """Position of a test's file in ``FIRST``; ``len(FIRST)`` for a file not listed."""
    file_name = nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    return FIRST.index(file_name) if file_name in FIRST else len(FIRST)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("MUTANT_UNDER_TEST"):
        # stable sort: parametrized cases of one test keep their order
        items.sort(key=lambda item: (mutation_rank(item.nodeid), item.location[0], item.location[1] or 0))
