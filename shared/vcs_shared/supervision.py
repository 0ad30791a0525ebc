"""What ``vcs run``'s supervisor reports about the processes it keeps running.

The supervisor (``tools/vcs_tools/supervisor.py``) writes a :class:`SupervisorStatus`
as a small JSON file, replaced atomically whenever a process starts, becomes ready,
exits or stops. The intake, given the file's path (``VCS_SUPERVISOR_STATUS_FILE``),
shows it in ``/healthz``, so whoever watches the system sees which process was
restarted and how often without reading the supervisor's terminal.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ChildState(StrEnum):
    STARTING = "starting"  # spawned, not yet ready
    RUNNING = "running"
    RESTARTING = "restarting"  # exited; started again after a short backoff
    STOPPING = "stopping"
    STOPPED = "stopped"


class SupervisedChild(BaseModel):
    """One supervised process: what it is doing now and how often it had to be restarted."""

    model_config = ConfigDict(frozen=True)

    state: ChildState
    pid: int | None = Field(description="Its current process id; none while it is down")
    restarts: int = Field(ge=0, description="Restarts since the supervisor started")
    last_exit: str | None = Field(
        default=None,
        description="How it last ended: 'exited with code 1', 'was killed by SIGKILL'…",
    )
    since: datetime | None = Field(default=None, description="When its current process began")


class SupervisorStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    pid: int = Field(description="The supervisor's process id")
    children: dict[str, SupervisedChild]


def read_status(path: Path) -> SupervisorStatus | None:
    """The status in ``path``; none when the file is missing or unreadable (no supervisor)."""
    try:
        return SupervisorStatus.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None
