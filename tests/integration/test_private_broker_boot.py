"""The private RabbitMQ node of the fault tests (:mod:`vcs_tools.rabbitnode`) boots even when
the free port it chose is taken before it listens: a fresh clone's CI run once lost a fault
test at set-up that way (``eaddrinuse``; an outgoing connection of another process had taken
the port from the ephemeral range meanwhile)."""

from __future__ import annotations

import socket
from pathlib import Path

import aio_pika
import pytest

from vcs_tools.rabbitnode import PrivateBroker, available

pytestmark = pytest.mark.integration


async def test_a_node_whose_port_is_taken_before_it_listens_boots_on_fresh_ports(
    tmp_path: Path,
) -> None:
    if not available():
        pytest.fail("RabbitMQ is not installed (scripts/ensure-rabbitmq.sh installs it)")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        broker = PrivateBroker(tmp_path, port=taken)
        try:
            broker.start()
            assert broker.port != taken
            connection = await aio_pika.connect(broker.url)
            await connection.close()
        finally:
            broker.stop()
    logs = [tmp_path / "server.log", *(tmp_path / "log").glob("*.log")]
    assert any("eaddrinuse" in path.read_text(errors="replace") for path in logs)
