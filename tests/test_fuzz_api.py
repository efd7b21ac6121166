"""schemathesis over /openapi.json: generated requests to every operation; no 5xx, responses match the schema.

``CONVLENS_FUZZ_EXAMPLES`` is the total number of generated requests, spread over the operations (default 150
for CI; ``make fuzz`` sets 1000). The seed is fixed (``derandomize``) so a CI failure reproduces.
"""

from __future__ import annotations

import os
import tempfile

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


@schema.parametrize()
@settings(
    max_examples=PER_OPERATION,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_its_schema(case):
    case.call_and_validate(checks=CHECKS)
