"""Several addresses of one RabbitMQ cluster, and a robust connection that moves between them.

``VCS_AMQP_URL`` names one broker, or the nodes of a cluster as a comma-separated list
(``amqp://allocator:pw@rabbit-1:5672/,amqp://allocator:pw@rabbit-2:5672/,…``). aio-pika's
robust connection restores channels, exchanges, queues and consumers after a reconnect, but
always to the one URL it was made with: if that node is gone for good, it would retry a dead
address forever. :class:`NodeRotatingConnection` keeps everything aio-pika restores and only
changes *where* the next attempt goes: every time the connection is lost or an attempt fails,
it moves on to the next node of the list (round robin), so a service follows the cluster to a
node that is up within one reconnect interval per dead node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aio_pika import RobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from yarl import URL

SCHEMES = ("amqp", "amqps")


class BrokerUrlError(ValueError):
    """The broker setting is not a list of AMQP URLs; the message says which entry and why."""


def broker_urls(setting: str) -> tuple[str, ...]:
    """The URLs of a ``VCS_AMQP_URL`` value: one, or several separated by commas.

    A comma inside a password must be percent-encoded (``%2C``), as any reserved character
    in a URL. Raises :class:`BrokerUrlError` naming the entry that is not an AMQP URL
    (its position and what follows the ``@``, never the user or password).
    """
    urls = tuple(part.strip() for part in setting.split(","))
    if not any(urls):
        raise BrokerUrlError("no broker URL given")
    for position, url in enumerate(urls, start=1):
        parsed = URL(url)
        if parsed.scheme not in SCHEMES or not parsed.host:
            shown = f"…@{url.rsplit('@', 1)[1]}" if "@" in url else url  # never the password
            raise BrokerUrlError(
                f"entry {position} of {len(urls)} ({shown!r}) is not an amqp:// or amqps:// URL "
                "with a host; separate several nodes with commas"
            )
    return urls


def node_name(url: URL) -> str:
    """``host:port`` of a node, for logs (never the user or password)."""
    return f"{url.host}:{url.port}"


class NodeRotatingConnection(RobustConnection):
    """A robust connection over the nodes of one cluster.

    aio-pika calls ``_on_connection_close`` both when an established connection is lost and
    when an attempt to connect fails; each time, the next attempt is pointed at the next node.
    With one node this is exactly aio-pika's robust connection.
    """

    def __init__(self, nodes: Sequence[URL], **kwargs: Any) -> None:
        if not nodes:
            raise BrokerUrlError("no broker URL given")
        self._nodes = tuple(nodes)
        self._current = 0
        super().__init__(self._nodes[0], **kwargs)

    @property
    def node(self) -> str:
        """The node this connection uses (or tries next), as ``host:port``."""
        return node_name(self._nodes[self._current])

    def _move_to_next_node(self) -> None:
        self._current = (self._current + 1) % len(self._nodes)
        self.url = self._nodes[self._current]

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if len(self._nodes) > 1 and not self.close_called:
            self._move_to_next_node()
        await super()._on_connection_close(closing)


async def connect_to_cluster(
    urls: Sequence[str],
    **kwargs: Any,
) -> NodeRotatingConnection:
    """Connects to the first node that answers, trying each once in the order given; the
    returned connection then rotates through all of them whenever it loses its node.

    Raises the last node's error when none answers (the service fails to start, and its
    supervisor or orchestrator starts it again).
    """
    nodes = [URL(url) for url in urls]
    failure: BaseException | None = None
    for start in range(len(nodes)):
        connection = NodeRotatingConnection([*nodes[start:], *nodes[:start]], **kwargs)
        try:
            await connection.connect()
        except CONNECTION_EXCEPTIONS as exc:
            failure = exc
            await connection.close()
            continue
        return connection
    assert failure is not None
    raise failure
