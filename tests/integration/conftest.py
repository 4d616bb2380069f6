"""A clock that moves only when told, the `changebot` command to run, and PostgreSQL behind a
proxy that counts round trips."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.db import make_engine
from tests.integration.command import Changebot
from tests.integration.wire import CountingProxy
from tests.unit.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def changebot(tmp_path: Path) -> Changebot:
    return Changebot(tmp_path)


@pytest.fixture
def proxy(database_url: str, backend: str) -> Iterator[CountingProxy]:
    """This test's database behind a proxy that counts round trips (PostgreSQL only)."""
    if backend == "sqlite":
        pytest.skip("round trips to a database server")
    with CountingProxy(database_url) as proxy:
        yield proxy


@pytest.fixture
def proxied(proxy: CountingProxy) -> Iterator[Engine]:
    """An engine reaching the database through `proxy`."""
    engine = make_engine(proxy.url)
    try:
        yield engine
    finally:
        engine.dispose()
