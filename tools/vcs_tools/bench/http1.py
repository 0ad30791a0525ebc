"""The burst's load client: one keep-alive HTTP/1.1 connection per sender, spoken with h11.

The offices' own computers are not the system under test, but in the bench the client that
plays them shares the services' two cores. httpx cost about 2.7 ms of CPU per submit there
(its pool, request and response models and transport layers, all for one connection doing
one request at a time), so the 928-office burst's load took CPU the intake then lacked. h11
is the protocol state machine httpx itself uses underneath; here it is driven directly over
an asyncio stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

READ_SIZE = 65536


@dataclass
class Connection:
    """One connection to ``base_url`` (``http://host:port``), opened on first use and again
    after the server closed it; one request at a time."""

    base_url: str
    timeout: float = 120.0
    _host: str = field(init=False)
    _port: int = field(init=False)
    _reader: asyncio.StreamReader | None = field(default=None, init=False)
    _writer: asyncio.StreamWriter | None = field(default=None, init=False)
    _protocol: h11.Connection = field(init=False)

    def __post_init__(self) -> None:
        url = urlsplit(self.base_url)
        if url.scheme != "http" or url.hostname is None or url.port is None:
            raise ValueError(f"not an http://host:port URL: {self.base_url}")
        self._host, self._port = url.hostname, url.port

    async def post(
        self, target: str, body: bytes, headers: list[tuple[str, str]]
    ) -> tuple[int, bytes]:
        """POSTs a JSON ``body``; returns the status and the whole response body. Raises
        ``OSError``, ``TimeoutError`` or ``h11.ProtocolError`` (a server that hung up before
        answering in full), after which the next request opens a new connection."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(target, body, headers)
        except BaseException:
            await self.close()
            raise

    async def _exchange(
        self, target: str, body: bytes, headers: list[tuple[str, str]]
    ) -> tuple[int, bytes]:
        reader, writer = await self._open()
        protocol = self._protocol
        request = h11.Request(
            method="POST",
            target=target,
            headers=[
                ("Host", f"{self._host}:{self._port}"),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                *headers,
            ],
        )
        writer.write(
            protocol.send(request)
            + protocol.send(h11.Data(data=body))
            + protocol.send(h11.EndOfMessage())
        )
        status, chunks = 0, []
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(await reader.read(READ_SIZE))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()  # keep-alive
        else:
            await self.close()
        return status, b"".join(chunks)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            self._protocol = h11.Connection(our_role=h11.CLIENT)
        return self._reader, self._writer

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
