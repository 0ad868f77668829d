"""Shared pytest set-up: every module in tests/fixtures/ is a fixture plugin.

Each area (9P, upasfs, auth, pop3, imap4d, ratfs, launcher) keeps the
fixtures that start its real services in tests/fixtures/<area>.py.
"""
import pkgutil
from pathlib import Path

_here = Path(__file__).parent / "fixtures"
pytest_plugins = [f"tests.fixtures.{m.name}" for m in pkgutil.iter_modules([str(_here)])]
