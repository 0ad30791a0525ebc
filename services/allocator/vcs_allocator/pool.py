"""Reading the pool file that operators keep (CSV or YAML), all or nothing.

Every row is validated; a file with any bad row is refused whole, with the
row's line number and field, so a typo never half-replaces a province's pool.

CSV columns (header required): ``meeting_id,capacity,pool,passcode,join_url,active``,
and optionally ``moved_from`` and ``host``. YAML: a list of mappings with the same keys. ``pool``
is a province code (``47``) or a regional overflow pool (``region-12``); ``active``
defaults to true. ``moved_from`` names the pool a Meeting ID leaves for this row's
pool: without it, a file putting another pool's Meeting ID into its own is refused.
``host`` is the Zoom user owning the meeting (its e-mail or user id): per-booking passcodes
(``VCS_ZOOM_*``) count Zoom's daily allowance of meeting updates per host; rows without it
share one host per pool.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vcs_allocator.domain import PoolEntry
from vcs_shared.offices import is_province

CAPACITIES = (300, 500, 1000)


@dataclass(frozen=True, slots=True)
class PoolProblem:
    """One thing wrong with a pool file: where (line, field) and what."""

    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


class PoolFileError(ValueError):
    """The pool file cannot be loaded; ``issues`` lists every bad row and field."""

    def __init__(self, source: str, issues: list[PoolProblem]) -> None:
        self.issues = issues
        super().__init__(f"{source}: " + "; ".join(self.problems))

    @property
    def problems(self) -> list[str]:
        """The issues as ``line N: field: message`` lines, for people."""
        return [str(issue) for issue in self.issues]


class PoolRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    meeting_id: str = Field(pattern=r"^[0-9]{9,11}$")
    capacity: int
    pool: str
    passcode: str = Field(min_length=1, max_length=64)
    join_url: str = Field(pattern=r"^https://\S+$")
    active: bool = True
    moved_from: str | None = None
    host: str | None = Field(default=None, max_length=254)

    @field_validator("meeting_id", mode="before")
    @classmethod
    def _digits_only(cls, value: Any) -> Any:
        return str(value).replace(" ", "") if isinstance(value, str | int) else value

    @field_validator("capacity")
    @classmethod
    def _known_capacity(cls, value: int) -> int:
        if value not in CAPACITIES:
            raise ValueError("must be 300, 500 or 1000 participants")
        return value

    @field_validator("pool", mode="before")
    @classmethod
    def _known_pool(cls, value: Any) -> str:
        return pool_code(value)

    @field_validator("moved_from", mode="before")
    @classmethod
    def _known_source_pool(cls, value: Any) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return pool_code(value)

    @field_validator("host", mode="before")
    @classmethod
    def _blank_host_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def to_entry(self) -> PoolEntry:
        return PoolEntry(
            self.meeting_id,
            self.capacity,
            self.pool,
            self.passcode,
            self.join_url,
            self.active,
            moved_from=self.moved_from,
            host=self.host,
        )


def pool_code(value: Any) -> str:
    """A pool as written in a file (``47``, ``7``, ``region-12``), checked and normalised."""
    text = str(value).strip()
    if text.startswith("region-") and text.removeprefix("region-").isdigit():
        return text
    if len(text) == 1 and text.isdigit():
        text = f"0{text}"
    if not is_province(text):
        raise ValueError("must be a province code (e.g. 47) or a region pool (region-12)")
    return text


def parse_pool(text: str, *, fmt: Literal["csv", "yaml"], source: str = "pool") -> list[PoolEntry]:
    """Parses a whole pool file; raises :class:`PoolFileError` listing every bad row."""
    rows = _csv_rows(text, source) if fmt == "csv" else _yaml_rows(text, source)
    problems: list[PoolProblem] = []
    rooms: list[PoolEntry] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        try:
            room = PoolRow.model_validate(row).to_entry()
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "row"
                problems.append(PoolProblem(line, field, err["msg"]))
            continue
        if room.meeting_id in seen:
            problems.append(
                PoolProblem(
                    line,
                    "meeting_id",
                    f"{room.meeting_id} already on line {seen[room.meeting_id]}",
                )
            )
            continue
        seen[room.meeting_id] = line
        rooms.append(room)
    if problems:
        raise PoolFileError(source, problems)
    if not rooms:
        raise PoolFileError(source, [PoolProblem(None, "", "the file lists no rooms")])
    return rooms


def load_pool_file(path: Path) -> list[PoolEntry]:
    fmt: Literal["csv", "yaml"] = "csv" if path.suffix.lower() == ".csv" else "yaml"
    return parse_pool(path.read_text(encoding="utf-8"), fmt=fmt, source=str(path))


def _csv_rows(text: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        return _read_csv(reader)
    except csv.Error as exc:  # a lone carriage return in a field, a NUL ...
        problem = PoolProblem(reader.line_num or 1, "", f"not valid CSV: {exc}")
        raise PoolFileError(source, [problem]) from None


def _read_csv(reader: csv.DictReader[str]) -> list[tuple[int, dict[str, Any]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        cleaned: dict[str, Any] = {k: v for k, v in row.items() if k is not None}
        if None in row:
            cleaned["unexpected columns"] = row[None]
        if cleaned.get("active", "") in ("", None):
            cleaned.pop("active", None)
        rows.append((reader.line_num, cleaned))
    return rows


def _yaml_rows(text: str, source: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        nodes = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except RecursionError:
        problem = PoolProblem(1, "", "not a pool file: nested too deeply")
        raise PoolFileError(source, [problem]) from None
    except yaml.YAMLError as exc:
        line = (
            exc.problem_mark.line + 1
            if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark
            else None
        )
        raise PoolFileError(source, [PoolProblem(line, "", f"not valid YAML: {exc}")]) from exc
    if not isinstance(data, list) or not isinstance(nodes, yaml.SequenceNode):
        raise PoolFileError(source, [PoolProblem(1, "", "the file must be a list of rooms")])
    rows: list[tuple[int, dict[str, Any]]] = []
    for node, item in zip(nodes.value, data, strict=True):
        line = node.start_mark.line + 1
        rows.append((line, item if isinstance(item, dict) else {"row": item}))
    return rows
