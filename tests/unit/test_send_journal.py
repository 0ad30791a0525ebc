"""The notifier's local journal of sent messages (vcs_notifier.journal), on a real file: what
is appended is read back by a later process, compaction keeps only what the store has not
confirmed, and a line cut short by a crash is skipped without costing the next entry."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

from vcs_notifier.domain import MailKind, MailOutcome
from vcs_notifier.journal import FileJournal, Sent

AT = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def sent(request_id: str, kind: MailKind, error: str | None = None) -> Sent:
    return Sent(request_id, MailOutcome.of(kind, error, at=AT), correlation_id=f"c-{request_id}")


async def test_what_one_process_journals_the_next_one_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "notifier" / "sent-mails.jsonl"
    first = FileJournal(path).open()
    await first.write(sent("r-1", MailKind.assigned))
    await first.write(sent("r-2", MailKind.cancelled, error="email: refused"))

    assert first.outcome("r-1", MailKind.assigned) == sent("r-1", MailKind.assigned)
    first.recorded("r-1", MailKind.assigned)
    assert first.outcome("r-1", MailKind.assigned) is None  # forgotten once recorded
    assert first.outcome("r-1", MailKind.cancelled) is None  # another kind of mail

    successor = FileJournal(path).open()
    assert successor.outcome("r-2", MailKind.cancelled) is None  # nothing known before reading
    assert await successor.entries() == [
        sent("r-1", MailKind.assigned),
        sent("r-2", MailKind.cancelled, error="email: refused"),
    ]
    assert successor.outcome("r-2", MailKind.cancelled) == sent(
        "r-2", MailKind.cancelled, error="email: refused"
    )
    assert path.stat().st_mode & 0o777 == 0o600


async def test_compaction_keeps_only_what_the_store_has_not_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "sent-mails.jsonl"
    journal = FileJournal(path).open()
    for request_id in ("r-1", "r-2", "r-3"):
        await journal.write(sent(request_id, MailKind.rejected))
    await journal.write(sent("r-2", MailKind.cancelled))

    await journal.forget([("r-1", MailKind.rejected), ("r-2", MailKind.rejected)])

    assert await FileJournal(path).entries() == [
        sent("r-3", MailKind.rejected),
        sent("r-2", MailKind.cancelled),
    ]
    assert journal.outcome("r-2", MailKind.rejected) is None
    assert journal.outcome("r-3", MailKind.rejected) is not None
    assert len(path.read_bytes().splitlines()) == 2
    assert sorted(os.listdir(tmp_path)) == ["sent-mails.jsonl", "sent-mails.jsonl.lock"]

    # Appending after a compaction goes into the new file (another process's journal too).
    await FileJournal(path).write(sent("r-4", MailKind.assigned))
    assert sent("r-4", MailKind.assigned) in await FileJournal(path).entries()


async def test_a_line_cut_short_by_a_crash_is_skipped_and_the_next_entry_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sent-mails.jsonl"
    journal = FileJournal(path).open()
    await journal.write(sent("r-1", MailKind.assigned))
    whole = path.read_bytes()
    with path.open("ab") as file:  # a process killed in the middle of its write
        file.write(whole[: len(whole) // 2].replace(b"r-1", b"r-9"))

    assert await FileJournal(path).entries() == [sent("r-1", MailKind.assigned)]

    await journal.write(sent("r-2", MailKind.assigned))

    assert await FileJournal(path).entries() == [
        sent("r-1", MailKind.assigned),
        sent("r-2", MailKind.assigned),
    ]
    await journal.forget([])  # compaction drops the torn line for good
    assert b"r-9" not in path.read_bytes()
    assert path.read_bytes().endswith(b"\n")


async def test_a_journal_that_cannot_be_written_does_not_stop_the_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sent-mails.jsonl"
    journal = FileJournal(path).open()
    path.unlink()
    path.mkdir()  # whatever the reason (a full disk, a folder taken away), the write fails

    await journal.write(sent("r-1", MailKind.assigned))  # logged, not raised

    assert journal.outcome("r-1", MailKind.assigned) == sent("r-1", MailKind.assigned)


async def test_journals_sharing_a_path_lose_no_entry_while_one_compacts(tmp_path: Path) -> None:
    """Each journal object locks through its own descriptor, as two processes would."""
    path = tmp_path / "sent-mails.jsonl"
    one, other = FileJournal(path).open(), FileJournal(path).open()
    for i in range(20):
        await one.write(sent(f"old-{i}", MailKind.assigned))

    async def appends(journal: FileJournal, prefix: str) -> None:
        for i in range(50):
            await journal.write(sent(f"{prefix}-{i}", MailKind.assigned))

    confirmed = [(f"old-{i}", MailKind.assigned) for i in range(20)]
    await asyncio.gather(
        appends(one, "a"), appends(other, "b"), FileJournal(path).forget(confirmed)
    )

    kept = {s.request_id for s in await FileJournal(path).entries()}
    assert kept == {f"{p}-{i}" for p in "ab" for i in range(50)}


async def test_a_running_process_drops_what_it_recorded_itself(tmp_path: Path) -> None:
    path = tmp_path / "sent-mails.jsonl"
    journal, other = FileJournal(path).open(), FileJournal(path).open()
    for request_id in ("r-1", "r-2"):
        await journal.write(sent(request_id, MailKind.assigned))
    await other.write(sent("r-3", MailKind.assigned))  # another process's, not recorded
    journal.recorded("r-1", MailKind.assigned)

    await journal.compact()

    kept = [s.request_id for s in await FileJournal(path).entries()]
    assert kept == ["r-2", "r-3"]
    journal.recorded("r-2", MailKind.assigned)
    other.recorded("r-3", MailKind.assigned)
    await journal.compact()
    await other.compact()
    assert await FileJournal(path).entries() == []


async def test_outcomes_journaled_at_once_each_land_once_and_whole(tmp_path: Path) -> None:
    """Concurrent writes share appends (a group commit); each writer returns with its own line
    on disk, every line whole."""
    path = tmp_path / "sent-mails.jsonl"
    journal = FileJournal(path).open()
    outcomes = [sent(f"r-{i}", MailKind.assigned) for i in range(30)]

    await asyncio.gather(*(journal.write(s) for s in outcomes))

    assert await FileJournal(path).entries() == outcomes
    assert len(path.read_bytes().splitlines()) == len(outcomes)


async def test_concurrent_writes_to_a_journal_that_cannot_be_written_are_logged_not_raised(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sent-mails.jsonl"
    journal = FileJournal(path).open()
    path.unlink()
    path.mkdir()

    await asyncio.gather(*(journal.write(sent(f"r-{i}", MailKind.assigned)) for i in range(5)))

    assert all(journal.outcome(f"r-{i}", MailKind.assigned) is not None for i in range(5))
