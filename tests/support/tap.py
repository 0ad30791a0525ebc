"""A private queue bound to the events exchange: what an integration would see."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from tests.support.waiting import eventually
from vcs_shared.broker import connect


@dataclass
class TappedMessage:
    routing_key: str
    body: bytes
    message_id: str | None
    content_type: str | None
    delivery_mode: int | None
    headers: dict[str, Any]

    @property
    def cloudevent(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class EventTap:
    """Collects every message routed to it; ``wait_for`` waits for matching ones."""

    channel: AbstractChannel
    queue: AbstractQueue
    messages: list[TappedMessage] = field(default_factory=list)

    @classmethod
    async def bind(cls, channel: AbstractChannel, exchange: str, key: str = "#") -> EventTap:
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key=key)
        tap = cls(channel, queue)
        await queue.consume(tap._on_message, no_ack=True)
        return tap

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.messages.append(
            TappedMessage(
                routing_key=message.routing_key or "",
                body=message.body,
                message_id=message.message_id,
                content_type=message.content_type,
                delivery_mode=int(message.delivery_mode) if message.delivery_mode else None,
                headers=dict(message.headers or {}),
            )
        )

    def with_prefix(self, prefix: str) -> list[TappedMessage]:
        return [m for m in self.messages if m.routing_key.startswith(prefix)]

    async def wait_for(
        self, prefix: str, count: int = 1, *, timeout: float = 20.0
    ) -> list[TappedMessage]:
        async def enough() -> list[TappedMessage] | None:
            found = self.with_prefix(prefix)
            return found if len(found) >= count else None

        return await eventually(enough, timeout=timeout, what=f"{count} x {prefix}")


async def open_channel(url: str) -> tuple[aio_pika.abc.AbstractRobustConnection, AbstractChannel]:
    """The tests' own connection, robust like the services' (same reconnect interval)."""
    connection = await connect(url, name="tests")
    return connection, await connection.channel()


async def take_from(queue: AbstractQueue, *, timeout: float = 10.0) -> AbstractIncomingMessage:
    """The next message of ``queue``, acked, taken by a consumer: a quorum queue with a single
    active consumer (the allocator's shards) refuses ``basic.get``."""
    async with queue.iterator(timeout=timeout) as messages:
        async for message in messages:
            await message.ack()
            return message
    raise AssertionError(f"nothing in {queue.name}")
