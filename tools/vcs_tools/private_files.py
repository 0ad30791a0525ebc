"""Files under ``.data`` (secrets, the store, mails with passcodes, logs): for their owner only.

Each file is created ``0600`` and each folder ``0700`` by the call that creates
it (``os.open``/``os.mkdir`` with the mode), so there is no moment in which
another local user could open a file before a ``chmod`` closes it. A file or
folder left by an older version with a looser mode is tightened when it is
next opened here.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, TextIO

FILE_MODE = 0o600
DIR_MODE = 0o700
_OTHERS = 0o077


def private_dir(path: Path) -> Path:
    """``path`` and every missing folder above it, created ``0700``."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            os.mkdir(folder, DIR_MODE)
    if path.stat().st_mode & _OTHERS:
        path.chmod(DIR_MODE)  # left by an older version: tighten it
    return path


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """A descriptor of ``path``, created ``0600`` when it does not exist yet."""
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    if os.fstat(fd).st_mode & _OTHERS:
        os.fchmod(fd, FILE_MODE)  # left by an older version: tighten it
    return fd


def append_text(path: Path) -> TextIO:
    """``path`` opened for appending text (a log, ``dev.env``)."""
    return os.fdopen(open_private(path), "a", encoding="utf-8")


def create_binary(path: Path) -> BinaryIO:
    """A new file (never an existing one) for writing bytes, e.g. a received mail."""
    return os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb")


def replace_text(path: Path, text: str) -> None:
    """Replaces ``path`` atomically: a reader sees the old content or the new, never half."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with os.fdopen(open_private(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as file:
        file.write(text)
    partial.replace(path)
