"""Shared pytest set-up: every module in tests/fixtures/ is a fixture plugin.

Each area (9P, upasfs, auth, pop3, imap4d, ratfs, launcher) keeps the
fixtures that start its real services in tests/fixtures/<area>.py.
"""
import dataclasses
import pkgutil
from pathlib import Path

import pytest

from upas import config

_here = Path(__file__).parent / "fixtures"
pytest_plugins = [f"tests.fixtures.{m.name}" for m in pkgutil.iter_modules([str(_here)])]


@pytest.fixture(autouse=True)
def _config_read_afresh():
    """A process reads its environment once (upas/config.py); code a test
    runs in the test process reads the environment as that test left it."""
    config.use(None)
    yield
    config.use(None)


class Env:
    """Environment variables for code run in the test process: set with
    monkeypatch (undone after the test), and read again at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.mp = monkeypatch

    def set(self, name: str, value: str) -> None:
        self.mp.setenv(name, value)
        config.use(None)

    def delete(self, name: str) -> None:
        self.mp.delenv(name, raising=False)
        config.use(None)


@pytest.fixture
def process_env(monkeypatch) -> Env:
    return Env(monkeypatch)


@pytest.fixture
def configure():
    """configure(**fields): this process's configuration with those
    fields changed (upas.config.Config), for this test."""
    def change(**fields) -> None:
        config.use(dataclasses.replace(config.current(), **fields))
    return change
