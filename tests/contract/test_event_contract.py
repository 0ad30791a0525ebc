"""The published event contract matches the models, and real events match the contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.support.events import sealed
from tests.support.node import parse_asyncapi
from vcs_shared.contract import ASYNCAPI_DOCUMENT, SCHEMAS_FOLDER, schema_path
from vcs_shared.envelope import decode, encode
from vcs_shared.events import (
    CLOUDEVENT_TYPE_PREFIX,
    EVENT_TYPES,
    RequestSubmitted,
    RoomAssigned,
    Urgency,
)
from vcs_tools.contract import rendered_files, write_contract

pytestmark = pytest.mark.contract

DOCS = Path(__file__).resolve().parents[2] / "docs"
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_committed_contract_files_equal_a_fresh_generation() -> None:
    for relative, text in rendered_files().items():
        committed = DOCS / relative
        assert committed.exists(), f"{relative} missing: run `uv run vcs contract`"
        assert committed.read_text(encoding="utf-8") == text, f"{relative} is stale"


@pytest.mark.parametrize(
    "event",
    [
        RequestSubmitted(
            request_id="r1",
            province_code="47",
            district_code="4701",
            title="ประชุม",
            starts_at=START,
            ends_at=START + timedelta(hours=2),
            participants=250,
            urgency=Urgency.urgent,
            needs_support=False,
            sealed_contact=sealed(),
            submitted_at=START - timedelta(days=1),
        ),
        RoomAssigned(
            request_id="r1",
            province_code="47",
            district_code="4701",
            meeting_id="1213308926",
            capacity=300,
            join_url="https://dopa-vcs.zoom.us/j/1213308926",
            pool="province",
            starts_at=START,
            ends_at=START + timedelta(hours=2),
            sealed_credentials="gAAAA",
        ),
    ],
    ids=lambda e: e.name,
)
def test_encoded_events_validate_against_their_published_schema(event: RoomAssigned) -> None:
    message = encode(event, source="test", correlation_id="c1")
    body = json.loads(message.body)
    schema = json.loads((DOCS / schema_path(type(event))).read_text())

    Draft202012Validator(schema).validate(body["data"])
    assert body["type"] == f"th.go.dopa.vcs.{event.name}.v{event.version}"
    assert message.routing_key == f"{event.name}.47.4701"
    assert decode(message.body.encode()).event == event


def test_every_event_type_has_a_schema_file_and_no_file_is_left_over() -> None:
    paths = {schema_path(e) for e in EVENT_TYPES.values()}
    assert paths == {f"{SCHEMAS_FOLDER}/{p.name}" for p in (DOCS / SCHEMAS_FOLDER).iterdir()}
    assert len(paths) == len(EVENT_TYPES) >= 7
    assert "schemas/room.assigned.v1.json" in paths


def test_generating_removes_the_schema_of_an_event_type_that_is_gone(tmp_path: Path) -> None:
    (tmp_path / SCHEMAS_FOLDER).mkdir()
    gone = tmp_path / SCHEMAS_FOLDER / "room.vanished.v1.json"
    gone.write_text("{}")

    written = write_contract(tmp_path)

    assert not gone.exists()
    assert {p.relative_to(tmp_path).as_posix() for p in written} == set(rendered_files())


async def test_the_committed_asyncapi_document_is_valid_for_the_official_parser() -> None:
    """@asyncapi/parser (npm) resolves the schema files relative to the document and validates
    the whole; the drift test above cannot tell a document the parser refuses."""
    verdict = await parse_asyncapi(str(DOCS / ASYNCAPI_DOCUMENT))

    assert verdict.valid, verdict.of_severity("error")
    assert verdict.of_severity("error", "warning") == []


class RoomAssignedV2(RoomAssigned):
    """A Meeting ID was reserved (a test-only v2: the capacity became a label)."""

    capacity: str  # type: ignore[assignment]

    @classmethod
    def cloudevent_type(cls) -> str:
        return f"{CLOUDEVENT_TYPE_PREFIX}{cls.name}.v2"


async def test_a_v2_type_is_published_beside_its_v1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the README promises integrations: a changed event is a new type with a schema
    file of its own, a second message on the same channel, and the v1 stays as it was."""
    monkeypatch.setitem(EVENT_TYPES, RoomAssignedV2.cloudevent_type(), RoomAssignedV2)
    write_contract(tmp_path)

    v1 = json.loads((tmp_path / "schemas" / "room.assigned.v1.json").read_text())
    v2 = json.loads((tmp_path / "schemas" / "room.assigned.v2.json").read_text())
    assert v1 == json.loads((DOCS / "schemas" / "room.assigned.v1.json").read_text())
    assert v2["properties"]["capacity"]["type"] == "string"
    document = yaml.safe_load((tmp_path / ASYNCAPI_DOCUMENT).read_text())
    assert set(document["channels"]["room_assigned"]["messages"]) == {
        "room_assigned_v1",
        "room_assigned_v2",
    }
    verdict = await parse_asyncapi(str(tmp_path / ASYNCAPI_DOCUMENT))
    assert verdict.valid, verdict.of_severity("error")
