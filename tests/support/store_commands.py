"""Counting the store commands a test's client sends, as the benchmark counts them (pymongo's
command monitoring): a group commit must show fewer commands than writers, and every
statement once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pymongo import monitoring

WriteCommand = Literal["insert", "update"]
STATEMENTS: dict[WriteCommand, str] = {"insert": "documents", "update": "updates"}
"""Where each write command carries its statements."""


class CommandsTo(monitoring.CommandListener):
    """The ``command`` commands (``find``, ``insert`` ...) sent to one collection, as sent."""

    def __init__(self, command: str, collection: str) -> None:
        self.command = command
        self.collection = collection
        self.sent: list[Mapping[str, Any]] = []

    @property
    def commands(self) -> int:
        return len(self.sent)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if (
            event.command_name == self.command
            and event.command.get(self.command) == self.collection
        ):
            self.sent.append(event.command)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


class WritesTo(CommandsTo):
    """The ``command`` writes sent to one collection, and the statements they carried."""

    def __init__(self, command: WriteCommand, collection: str) -> None:
        super().__init__(command, collection)
        self.write: WriteCommand = command

    @property
    def statements(self) -> int:
        return sum(len(sent.get(STATEMENTS[self.write], [])) for sent in self.sent)
