"""The ``private_broker`` fixture: a RabbitMQ node of a test module's own
(:mod:`vcs_tools.rabbitnode`), so stopping it harms nobody else's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vcs_tools.rabbitnode import PrivateBroker, available

__all__ = ["PrivateBroker", "private_broker"]


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    """A RabbitMQ node for this test module alone, stopped (and its files removed) after it."""
    if not available():
        pytest.fail("RabbitMQ is not installed (scripts/ensure-rabbitmq.sh installs it)")
    broker = PrivateBroker(tmp_path_factory.mktemp("rabbitmq")).start()
    try:
        yield broker
    finally:
        broker.stop()
