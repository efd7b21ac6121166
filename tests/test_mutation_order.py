"""``make mutate``'s test order (tests/mutation_order.py) and selection (setup.cfg) agree with the tests."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from mutation_order import FIRST, mutation_rank, pytest_collection_modifyitems

TESTS = Path(__file__).resolve().parent


def selected_files() -> list[str]:
    """The test files ``setup.cfg`` hands mutmut (``pytest_add_cli_args_test_selection``)."""
    config = configparser.ConfigParser()
    config.read(TESTS.parent / "setup.cfg")
    words = config["mutmut"]["pytest_add_cli_args_test_selection"].split()
    return [Path(word).name for word in words if word.startswith("tests/")]


def test_every_selected_file_is_ordered_and_exists():
    selected = selected_files()
    assert sorted(selected) == sorted(FIRST)
    for name in FIRST:
        assert (TESTS / name).is_file(), name


def test_rank_follows_first_and_puts_unlisted_files_last():
    assert mutation_rank("tests/test_shapes.py::test_a[1]") == 0
    assert mutation_rank("tests/test_security_headers.py::test_b") == len(FIRST) - 1
    assert mutation_rank("tests/test_not_listed.py::test_c") == len(FIRST)


class FakeItem:
    def __init__(self, path: str, line: int) -> None:
        self.nodeid = f"{path}::test_{line}"
        self.location = (path, line, f"test_{line}")


@pytest.mark.parametrize("mutant", ["", "core.shapes.x_pool_output_size__mutmut_1"])
def test_items_are_sorted_only_under_mutmut(monkeypatch, mutant):
    monkeypatch.setenv("MUTANT_UNDER_TEST", mutant)
    given = [
        FakeItem("tests/test_api_conv.py", 9),
        FakeItem("tests/test_shapes.py", 40),
        FakeItem("tests/test_api_conv.py", 3),
        FakeItem("tests/test_other.py", 1),
        FakeItem("tests/test_shapes.py", 2),
    ]
    items = list(given)
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    if not mutant:
        assert items == given
    else:
        assert [(i.location[0], i.location[1]) for i in items] == [
            ("tests/test_shapes.py", 2),
            ("tests/test_shapes.py", 40),
            ("tests/test_api_conv.py", 3),
            ("tests/test_api_conv.py", 9),
            ("tests/test_other.py", 1),
        ]
