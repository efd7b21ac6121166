"""The per-worker bound on concurrent work (app/admission.py): run, queue briefly, then 503 + Retry-After."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from app import admission, jobs
from app.admission import Busy, ClientGone, Gate, reset_gates
from app.main import create_app
from app.schemas import ConvRequest
from app.settings import Settings

T = TypeVar("T")


@pytest.fixture(autouse=True)
def fresh_gates() -> Iterator[None]:
    reset_gates()
    yield
    reset_gates()


def run_alone(scenario: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: a browser test run earlier in this process (pytest-xdist hands
    tests of every kind to one worker) leaves Playwright's event loop running in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario).result()


async def _blocked_job(gate: Gate, release: threading.Event, value: int) -> int:
    return await gate.run(None, lambda: (release.wait(10), value)[1])


def test_a_full_queue_is_refused_with_503_and_nothing_admitted_is_lost() -> None:
    """1 running + 1 waiting: the third is refused at once with Retry-After; the two admitted both finish."""

    async def scenario() -> tuple[list[int], Busy]:
        gate = Gate("computations", running=1, waiting=1, wait_seconds=10, retry_after=3)
        release = threading.Event()
        first = asyncio.create_task(_blocked_job(gate, release, 1))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(_blocked_job(gate, release, 2))
        await asyncio.sleep(0.05)
        assert (gate.active, gate.queued) == (1, 1)
        with pytest.raises(Busy) as refused:
            await _blocked_job(gate, release, 3)
        release.set()
        done = [await first, await second]
        assert (gate.active, gate.queued, gate.started, gate.refused) == (0, 0, 2, 1)
        return done, refused.value

    done, busy = run_alone(scenario())
    assert done == [1, 2]
    assert busy.status_code == 503
    assert busy.headers == {"Retry-After": "3"}
    assert "try again in 3 s" in busy.message


def test_a_wait_longer_than_allowed_is_a_503_and_frees_its_place() -> None:
    async def scenario() -> None:
        gate = Gate("computations", running=1, waiting=4, wait_seconds=0.1)
        release = threading.Event()
        first = asyncio.create_task(_blocked_job(gate, release, 1))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):
            await _blocked_job(gate, release, 2)
        assert gate.queued == 0
        release.set()
        assert await first == 1
        assert await gate.run(None, lambda: 5) == 5  # the slot came back
        assert gate.active == 0

    run_alone(scenario())


def test_waiters_are_served_in_order_and_never_more_than_running_at_once() -> None:
    async def scenario() -> list[int]:
        gate = Gate("computations", running=2, waiting=10, wait_seconds=10)
        lock = threading.Lock()
        state = {"now": 0, "most": 0}
        order: list[int] = []

        def job(i: int) -> int:
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            threading.Event().wait(0.02)
            with lock:
                state["now"] -= 1
                order.append(i)
            return i

        results = await asyncio.gather(*(gate.run(None, job, i) for i in range(8)))
        assert state["most"] == 2
        return list(results)

    assert run_alone(scenario()) == list(range(8))


class _GoneRequest:
    async def is_disconnected(self) -> bool:
        return True


def test_work_of_a_client_that_has_gone_is_not_started() -> None:
    called: list[int] = []

    async def scenario() -> None:
        gate = Gate("computations", running=1, waiting=1, wait_seconds=1)
        with pytest.raises(ClientGone):
            await gate.run(_GoneRequest(), lambda: called.append(1))  # type: ignore[arg-type]
        assert gate.active == 0

    run_alone(scenario())
    assert called == []


def test_the_service_answers_503_with_retry_after_and_a_sentence(tmp_path, monkeypatch) -> None:
    class FullGate(Gate):
        async def acquire(self) -> None:
            raise Busy(self.what, self.retry_after)

    full = FullGate("computations", 1, 0, 0, retry_after=2)
    monkeypatch.setattr(jobs, "gate", lambda name, settings: full)
    with TestClient(create_app(Settings(store_dir=tmp_path / "s"))) as client:
        for path, extra in (
            ("/api/conv", {}),
            ("/api/explain", {"position": [0, 0, 0]}),
            ("/api/im2col", {}),
            ("/api/backward", {}),
        ):
            body = {"image": "sample:camera", "max_side": 64, "weight": "sobel_x", **extra}
            response = client.post(path, json=body)
            assert response.status_code == 503, path
            assert response.headers["retry-after"] == "2"
            assert "busy" in response.json()["detail"] and "try again" in response.json()["detail"]


def test_a_tiny_request_runs_inline_without_the_gate(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(jobs, "gate", lambda name, settings: pytest.fail("a tiny job reached a gate"))
    with TestClient(create_app(Settings(store_dir=tmp_path / "s"))) as client:
        assert client.post("/api/conv", json={"image": "mnist:1", "weight": "sobel_x"}).status_code == 200
    assert jobs.tiny(ConvRequest(image="mnist:1", weight="sobel_x"))
    assert not jobs.tiny(ConvRequest(image="mnist:1", weight=[[[[0.1] * 11] * 11]] * 8))
    assert not jobs.tiny(ConvRequest(image="sample:camera", weight="sobel_x"))


def test_a_heavy_request_runs_behind_the_heavy_gate(tmp_path) -> None:
    """Above heavy_macs a request is computed on the heavy gate's own (low-priority) thread."""
    settings = Settings(store_dir=tmp_path / "s", heavy_macs=1000)
    with TestClient(create_app(settings)) as client:
        light = client.post("/api/conv", json={"image": "mnist:1", "weight": [[1.0]], "max_side": 28})
        assert light.status_code == 200  # 784 multiply-adds: light
        assert "heavy" not in admission._gates
        heavy = client.post("/api/conv", json={"image": "mnist:1", "weight": "sobel_x"})
        assert heavy.status_code == 200  # 26·26·9 = 6084 > 1000: heavy
        assert admission._gates["heavy"].started == 1


def test_the_stack_routes_wait_behind_the_same_gate(tmp_path, monkeypatch) -> None:
    """The Layers view's requests (a whole stack's forward pass, its ERF, a stored activation) are bounded
    like every single-layer computation: a full gate answers them 503 with Retry-After too."""

    class FullGate(Gate):
        async def acquire(self) -> None:
            raise Busy(self.what, self.retry_after)

    full = FullGate("computations", 1, 0, 0, retry_after=2)
    monkeypatch.setattr(admission, "gate", lambda name, settings: full)
    stack = {"image": "mnist:0", "color": "gray", "text": "nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())"}
    with TestClient(create_app(Settings(store_dir=tmp_path / "s"))) as client:
        for path, extra in (
            ("/api/stack", {}),
            ("/api/stack/field", {"layer": 1, "channel": 0, "y": 3, "x": 3}),
            ("/api/stack/activation", {"layer": 0}),
        ):
            response = client.post(path, json={**stack, **extra})
            assert response.status_code == 503, (path, response.text)
            assert response.headers["retry-after"] == "2"
            assert "busy" in response.json()["detail"]
    monkeypatch.undo()
    reset_gates()
    with TestClient(create_app(Settings(store_dir=tmp_path / "t"))) as client:
        assert client.post("/api/stack", json=stack).status_code == 200
        assert admission._gates["light"].started == 1
