"""What is still running, found by the process ids and sessions a test recorded (``/proc``).

The local stack starts every child as the leader of a session of its own, so a
child's pid is its session id, and anything it started shares that session.
Tests never look processes up by name: other engineers' stacks run the same
programs on this machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def _stat(pid_dir: Path) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name: state, ppid, pgrp, session…"""
    try:
        return (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # it ended while we looked


def _live() -> Iterable[tuple[int, list[str]]]:
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit() and (fields := _stat(pid_dir)) and fields[0] != "Z":
            yield int(pid_dir.name), fields


def in_sessions(sessions: Iterable[int]) -> list[int]:
    """Live (not zombie) processes in any of ``sessions``."""
    wanted = set(sessions)
    return sorted(pid for pid, fields in _live() if int(fields[3]) in wanted)


def children_of(parent: int) -> list[int]:
    """Live processes whose parent is ``parent``."""
    return sorted(pid for pid, fields in _live() if int(fields[1]) == parent)
