"""The CI guard (tests/require_tools.py): a skip for a missing PyTorch or browser fails when asked to."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).parent

INNER = """
import pytest

def test_needs_torch():
    pytest.importorskip("torch_that_is_not_installed_anywhere")

def test_needs_a_browser():
    pytest.skip("no Chromium could be launched: none here")

def test_skipped_for_another_reason():
    pytest.skip("a window of padding only")

def test_passes():
    pass
"""


@pytest.mark.parametrize(
    ("environment", "outcomes"),
    [
        ({}, {"passed": 1, "skipped": 3}),
        ({"CONVLENS_REQUIRE_TORCH": "1"}, {"passed": 1, "skipped": 2, "failed": 1}),
        ({"CONVLENS_REQUIRE_BROWSER": "1"}, {"passed": 1, "skipped": 2, "failed": 1}),
        (
            {"CONVLENS_REQUIRE_TORCH": "1", "CONVLENS_REQUIRE_BROWSER": "1"},
            {"passed": 1, "skipped": 1, "failed": 2},
        ),
        ({"CONVLENS_REQUIRE_TORCH": "0"}, {"passed": 1, "skipped": 3}),
    ],
)
def test_required_tool_skips_fail(pytester, monkeypatch, environment, outcomes):
    for name in ("CONVLENS_REQUIRE_TORCH", "CONVLENS_REQUIRE_BROWSER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(TESTS))
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_inprocess("-p", "require_tools", "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(**outcomes)
    for name, value in environment.items():
        if value == "1":
            result.stdout.fnmatch_lines([f"*{name}=1 but this was skipped*"])


def test_a_module_level_skip_fails_at_collection(pytester, monkeypatch):
    monkeypatch.setenv("CONVLENS_REQUIRE_TORCH", "1")
    monkeypatch.syspath_prepend(str(TESTS))
    pytester.makepyfile(
        test_module='import pytest\ntorch = pytest.importorskip("torch_missing")\n\ndef test_x():\n    pass\n'
    )
    result = pytester.runpytest_inprocess("-p", "require_tools", "-p", "no:cacheprovider")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*CONVLENS_REQUIRE_TORCH=1 but this was skipped*could not import*"])
