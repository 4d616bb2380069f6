"""A clock that moves only when told, and the `changebot` command to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.command import Changebot
from tests.unit.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def changebot(tmp_path: Path) -> Changebot:
    return Changebot(tmp_path)
