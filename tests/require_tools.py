"""A pytest plugin: skips for a missing PyTorch or browser become failures when CI asks for them.

``CONVLENS_REQUIRE_TORCH=1``: any test or module skipped because ``torch`` cannot be imported fails.
``CONVLENS_REQUIRE_BROWSER=1``: the same for Playwright or Chromium, and for Node (the page's shapes.js
is run under Node by tests/test_shapes_js.py). ``.ci/run`` sets both, so CI cannot
go green with the PyTorch comparisons or the browser tests skipped; a plain ``make test`` sets neither.
Registered by ``tests/conftest.py``; usable alone as ``pytest -p require_tools``.
"""

from __future__ import annotations

import os

import pytest

# (environment variable, words that mark a skip as "the tool is missing", what to install)
REQUIRED_TOOLS = (
    (
        "CONVLENS_REQUIRE_TORCH",
        ("'torch'", "torch"),
        "install the reference extra: pip install -e '.[reference]'",
    ),
    (
        "CONVLENS_REQUIRE_BROWSER",
        ("playwright", "chromium", "node is not installed"),
        "install the test extra and a browser (make browser); the shapes.js comparison needs node",
    ),
)


def skip_reason(report) -> str:
    """The message of a skipped test or collection report (its longrepr is ``(path, line, reason)``)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def fail_if_required(report) -> None:
    """Turn a skip for a missing required tool into a failure that says which variable asked for it."""
    if not report.skipped:
        return
    reason = skip_reason(report)
    for variable, words, remedy in REQUIRED_TOOLS:
        if os.environ.get(variable) == "1" and any(word in reason.lower() for word in words):
            report.outcome = "failed"
            report.longrepr = f"{variable}=1 but this was skipped: {reason}; {remedy}"
            return


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    fail_if_required(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    fail_if_required(outcome.get_result())
