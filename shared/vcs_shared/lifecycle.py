"""Process lifecycle shared by the services: wait for SIGINT/SIGTERM, run background loops."""

from __future__ import annotations

import asyncio
import signal


async def wait_for_shutdown_signal() -> str:
    """Returns the name of the first SIGINT or SIGTERM this process receives."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[str] = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(
            sig, lambda s=sig: received.done() or received.set_result(s.name)
        )
    try:
        return await received
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
