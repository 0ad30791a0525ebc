"""An internal HTTP API served inside a service's own event loop (uvicorn, no signal handling).

The allocator serves its internal admin API beside its consumer, the desk serves
its internal API alone; in both the service's composition root owns SIGINT and
SIGTERM and stops the server itself, letting requests in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import structlog
import uvicorn
from fastapi import FastAPI

log = structlog.get_logger(__name__)


class _InProcessServer(uvicorn.Server):
    """uvicorn inside the service's event loop; the service owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class InternalServer:
    """An app served on its own socket; ``stop`` lets requests in flight finish."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self._server = server
        self._task = task

    @classmethod
    async def start(cls, app: FastAPI, host: str, port: int) -> InternalServer | None:
        """Binds first, so a taken port is logged (``None``) and the caller decides whether
        it can go on without its API."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            log.error("internal_api.unavailable", host=host, port=port, error=str(exc))
            return None
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=10
        )
        server = _InProcessServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]), name="internal-api")
        while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has no event)
            await asyncio.sleep(0.01)
        if task.done():
            log.error(
                "internal_api.unavailable", host=host, port=port, error=repr(task.exception())
            )
            return None
        log.info("internal_api.listening", host=host, port=port)
        return cls(server, task)

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._task
