"""Counting the store commands a test's client sends, as the benchmark counts them (pymongo's
command monitoring): a group commit must show fewer commands than writers, and every
statement once."""

from __future__ import annotations

from typing import Literal

from pymongo import monitoring

WriteCommand = Literal["insert", "update"]
STATEMENTS: dict[WriteCommand, str] = {"insert": "documents", "update": "updates"}
"""Where each write command carries its statements."""


class WritesTo(monitoring.CommandListener):
    """The ``command`` commands sent to one collection, and the statements they carried."""

    def __init__(self, command: WriteCommand, collection: str) -> None:
        self.command = command
        self.collection = collection
        self.commands = 0
        self.statements = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if (
            event.command_name == self.command
            and event.command.get(self.command) == self.collection
        ):
            self.commands += 1
            self.statements += len(event.command.get(STATEMENTS[self.command], []))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None
