"""The intake reads the generated contract files at start, and refuses to start without them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vcs_intake.contract_api import ContractMissing, PublishedContract
from vcs_shared.contract import ASYNCAPI_DOCUMENT, schema_file_name, schema_path
from vcs_shared.events import EVENT_TYPES, RoomReleased

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_by_default_the_intake_reads_the_repos_document_and_one_schema_per_type() -> None:
    contract = PublishedContract.read(None)  # the default: the repo's docs/

    assert contract.document == (DOCS / ASYNCAPI_DOCUMENT).read_bytes()
    assert set(contract.schemas) == {schema_file_name(e) for e in EVENT_TYPES.values()}
    for event in EVENT_TYPES.values():
        assert contract.schemas[schema_file_name(event)] == (DOCS / schema_path(event)).read_bytes()


def test_a_missing_file_stops_the_intake_naming_the_file_and_the_setting(tmp_path: Path) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    (tmp_path / "docs" / schema_path(RoomReleased)).unlink()

    with pytest.raises(ContractMissing) as refused:
        PublishedContract.read(tmp_path / "docs")

    assert "schemas/room.released.v1.json" in str(refused.value)
    assert "VCS_CONTRACT_DIR" in str(refused.value)
    with pytest.raises(ContractMissing, match=r"asyncapi\.yaml"):
        PublishedContract.read(tmp_path / "elsewhere")
