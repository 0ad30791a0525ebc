"""Reading the feed stream (``<ns>.feed``, a RabbitMQ stream bound to ``<ns>.events``) over AMQP.

A stream is read, not drained: each reader attaches at a position
(``x-stream-offset``: an offset, ``first`` or ``next``) and gets every message
from there on, in order, each carrying its offset (header ``x-stream-offset``).
What this module adds to aio-pika's consumer:

* **each offset once, in order.** The broker starts a reader at the beginning
  of the chunk holding the asked offset, so earlier offsets may come first:
  they are skipped, as is anything at or below what was already handed out.
* **bounded memory.** A message is acknowledged (the stream's credit) only when
  taken out of the reader, so at most ``prefetch`` wait in it, however slow the
  one reading (an operator's browser on a slow line).
* **a lost reader ends.** The consumer is deliberately not restored by the
  robust connection (it would attach again at its first position and resend
  everything): when the channel or the connection is lost, or the broker
  cancels the consumer (the stream deleted), :meth:`StreamReader.next` raises
  :class:`StreamEnded`. Whoever reads starts a new reader from the last offset
  it handled: an operator's browser by reconnecting with ``Last-Event-ID``,
  the indexer by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import aiormq
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

log = structlog.get_logger(__name__)

OFFSET_HEADER = "x-stream-offset"
Position = int | Literal["first", "next"] | datetime
"""Where a reader attaches: an offset, the oldest message kept, only what comes next, or the
first chunk written at or after a moment (whole seconds)."""


class StreamEnded(Exception):
    """The reader lost its channel, its connection or its consumer; start a new one."""


@dataclass(frozen=True, slots=True)
class StreamMessage:
    offset: int
    body: bytes
    routing_key: str | None


_END = object()


class StreamReader:
    """One consumer of a stream from a position; ``async with`` closes it."""

    def __init__(self, channel: AbstractChannel, start: Position) -> None:
        self._channel = channel
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._queued_up_to = start - 1 if isinstance(start, int) else -1
        self._tag: str | None = None
        self.ended = False

    @classmethod
    async def open(
        cls, connection: AbstractConnection, stream: str, start: Position, *, prefetch: int = 200
    ) -> StreamReader:
        """Attaches a consumer at ``start``; once this returns, every message published
        from then on reaches the reader (``next`` included)."""
        channel = await connection.channel()
        reader = cls(channel, start)
        try:
            await channel.set_qos(prefetch_count=prefetch)
            channel.close_callbacks.add(reader._channel_closed)
            underlay = await channel.get_underlay_channel()
            underlay.on_consumer_cancel_callbacks.add(reader._consumer_cancelled)
            # Not declare_queue: a queue declared on a robust channel gets its consumer back
            # after a reconnect, at the first position again; this reader ends instead.
            queue = await channel.get_queue(stream, ensure=False)
            reader._tag = await queue.consume(
                reader._received, arguments={OFFSET_HEADER: start}, no_ack=False
            )
        except BaseException:
            await reader.close()
            raise
        return reader

    async def __aenter__(self) -> StreamReader:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def next(self, within: float | None = None) -> StreamMessage | None:
        """The next message, or None when none came within ``within`` seconds; raises
        :class:`StreamEnded` once the reader is lost (after what it already received)."""
        try:
            async with asyncio.timeout(within):
                item = await self._inbox.get()
        except TimeoutError:
            return None
        if item is _END:
            self._inbox.put_nowait(_END)  # every later call ends too
            raise StreamEnded
        message: AbstractIncomingMessage = item
        with contextlib.suppress(Exception):  # a dead channel: the end follows in the inbox
            await message.ack()
        return StreamMessage(
            offset=int(message.headers[OFFSET_HEADER]),  # type: ignore[arg-type]
            body=message.body,
            routing_key=message.routing_key,
        )

    @property
    def waiting(self) -> int:
        """Messages received and not yet taken."""
        return self._inbox.qsize()

    def end(self) -> None:
        """Ends the reader: ``next`` raises :class:`StreamEnded` after what is queued."""
        if not self.ended:
            self.ended = True
            self._inbox.put_nowait(_END)

    async def close(self) -> None:
        self.end()
        if not self._channel.is_closed:
            with contextlib.suppress(Exception):  # closing a lost channel may fail any way
                await self._channel.close()

    async def _received(self, message: AbstractIncomingMessage) -> None:
        if self.ended:
            # Closing: an ack sent now can reach the broker after the channel's close, and
            # RabbitMQ answers a method on a closed channel by closing the whole connection
            # (504 "expected 'channel.open'"), which ended every other reader of the desk
            # and failed the next subscription. The close drops the delivery anyway.
            return
        offset = (message.headers or {}).get(OFFSET_HEADER)
        if not isinstance(offset, int) or offset <= self._queued_up_to:
            # Before the asked position (the chunk's start), already queued, or not a stream's.
            with contextlib.suppress(Exception):
                await message.ack()
            return
        self._queued_up_to = offset
        self._inbox.put_nowait(message)

    def _channel_closed(self, _sender: Any, exc: BaseException | None) -> None:
        if not self.ended:
            log.info("feed.reader_lost", reason=repr(exc))
        self.end()

    def _consumer_cancelled(self, frame: aiormq.spec.Basic.Cancel) -> None:
        if frame.consumer_tag == self._tag:
            log.warning("feed.reader_cancelled_by_broker")
            self.end()
