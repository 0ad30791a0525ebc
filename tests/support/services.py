"""The type of the ``start_services`` fixture (tests/conftest.py), for tests that take it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vcs_tools.devstack import ServiceProcess

StartServices = Callable[..., Awaitable[list[ServiceProcess]]]
"""``await start_services("allocator", extra_env={...})``: starts the named services (all of them
when none are named) and waits until each is ready; they are stopped after the test."""
