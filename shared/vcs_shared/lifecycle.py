"""Waiting for the signal that stops a consuming service (SIGINT, SIGTERM).

The intake runs under uvicorn, which handles the signals itself; the allocator and the
notifier wait here, then leave :func:`vcs_shared.runtime.consuming` to stop in order.
"""

from __future__ import annotations

import asyncio
import signal


async def wait_for_shutdown_signal() -> str:
    """Returns the name of the first SIGINT or SIGTERM this process receives."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[str] = loop.create_future()

    def on_signal(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig.name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await received
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
