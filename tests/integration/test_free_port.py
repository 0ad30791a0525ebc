"""Ports for the servers of a test's or a soak's stack (:func:`vcs_tools.devstack.free_port`)
come from below the kernel's ephemeral range, so no outgoing connection on the machine can
take one before its server listens (a fault test's private RabbitMQ once failed at boot with
``eaddrinuse`` on a port of that range)."""

from __future__ import annotations

import socket

import pytest

from vcs_tools.devstack import EPHEMERAL_RANGE, PORTS_FROM, free_port

pytestmark = pytest.mark.integration


def test_a_free_port_is_below_the_ephemeral_range_and_can_be_listened_on() -> None:
    ephemeral_from = int(EPHEMERAL_RANGE.read_text().split()[0])
    ports = [free_port() for _ in range(20)]
    assert all(PORTS_FROM <= port < ephemeral_from for port in ports), ports
    for port in ports:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))
            server.listen()


def test_a_port_something_listens_on_is_never_handed_out() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", free_port()))
        squatter.listen()
        taken = squatter.getsockname()[1]
        assert taken not in {free_port() for _ in range(200)}
