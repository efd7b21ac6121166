"""schemathesis over /openapi.json: generated requests to every operation; no 5xx, responses match the schema.

``CONVLENS_FUZZ_EXAMPLES`` is the total number of generated requests, spread over the operations (default 150
for CI; ``make fuzz`` sets 1000). The seed is fixed (``derandomize``) so a CI failure reproduces.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402

TOTAL = int(os.environ.get("CONVLENS_FUZZ_EXAMPLES", "150"))


def _app():
    store = tempfile.mkdtemp(prefix="convlens-fuzz-")
    # a small work budget keeps generated requests fast; the limits stay the real ones otherwise
    return create_app(Settings(store_dir=store, max_macs=50_000_000, max_im2col_bytes=64 * 1024 * 1024))


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())
OPERATIONS = sum(1 for result in schema.get_all_operations() if result.ok())
PER_OPERATION = max(2, TOTAL // max(OPERATIONS, 1))

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

STATUS_COUNTS: Counter[int] = Counter()
"""Status codes of every generated request, printed when the module ends (``make fuzz`` shows it)."""


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    total = sum(STATUS_COUNTS.values())
    server_errors = sum(n for code, n in STATUS_COUNTS.items() if code >= 500)
    print(
        f"\nschemathesis: {total} generated requests over {OPERATIONS} operations "
        f"({PER_OPERATION} per operation); status codes {dict(sorted(STATUS_COUNTS.items()))}; "
        f"{server_errors} server errors"
    )


@schema.parametrize()
@settings(
    max_examples=PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_its_schema(case):
    response = case.call_and_validate(checks=CHECKS)
    STATUS_COUNTS[response.status_code] += 1
