"""The bench's load client (vcs_tools.bench.http1) against a real HTTP/1.1 server on a socket:
one connection kept for many requests, a new one when the server closes it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import h11
import pytest

from vcs_tools.bench.http1 import Connection

pytestmark = pytest.mark.integration


class Server:
    """Answers every POST with 202 and the body it got; closes each connection after
    ``per_connection`` answers (``Connection: close``), or at once when ``hang_up``."""

    def __init__(self, per_connection: int) -> None:
        self.per_connection = per_connection
        self.connections = 0
        self.hang_up = False

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        protocol = h11.Connection(our_role=h11.SERVER)
        answered, body = 0, b""
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                if self.hang_up:
                    break
                answered += 1
                last = answered == self.per_connection
                headers = [("Content-Length", str(len(body)))]
                headers += [("Connection", "close")] if last else []
                writer.write(protocol.send(h11.Response(status_code=202, headers=headers)) or b"")
                writer.write(protocol.send(h11.Data(data=body)) or b"")
                protocol.send(h11.EndOfMessage())
                await writer.drain()
                if last:
                    break
                protocol.start_next_cycle()
                body = b""
            elif isinstance(event, h11.ConnectionClosed):
                break
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[tuple[Server, str]]:
    handler = Server(per_connection=3)
    listening = await asyncio.start_server(handler.serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield handler, f"http://127.0.0.1:{port}"


async def test_one_connection_serves_requests_until_the_server_closes_it(
    server: tuple[Server, str],
) -> None:
    handler, url = server
    connection = Connection(url)

    answers = [
        await connection.post("/v1/requests", json.dumps({"n": n}).encode(), [("X-N", str(n))])
        for n in range(5)
    ]
    await connection.close()

    assert answers == [(202, json.dumps({"n": n}).encode()) for n in range(5)]
    assert handler.connections == 2  # three answers on the first, then a new one


async def test_a_server_that_hangs_up_mid_request_is_an_error_and_the_next_request_reconnects(
    server: tuple[Server, str],
) -> None:
    handler, url = server
    connection = Connection(url)
    handler.hang_up = True

    with pytest.raises(h11.RemoteProtocolError):
        await connection.post("/v1/requests", b"{}", [])
    handler.hang_up = False
    assert await connection.post("/v1/requests", b"{}", []) == (202, b"{}")
    await connection.close()
    assert handler.connections == 2
