"""The published event contract, open to all: ``/asyncapi.yaml``, ``/schemas/<event>.v1.json``.

These are the files ``make contract`` generates into ``docs/`` (the Docker image copies them
and sets ``VCS_CONTRACT_DIR``), read once when the app is made: a missing file stops the intake
at start rather than answering 404 to an integration later, and nothing here can differ from
what the repo publishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Response, status

from vcs_shared.contract import (
    ASYNCAPI_DOCUMENT,
    ASYNCAPI_MEDIA_TYPE,
    SCHEMA_MEDIA_TYPE,
    SCHEMAS_FOLDER,
    schema_path,
)
from vcs_shared.events import EVENT_TYPES

# docs/ of the repo, beside the package (editable install).
DEFAULT_CONTRACT_DIR = Path(__file__).resolve().parents[3] / "docs"


class ContractMissing(RuntimeError):
    """A file of the contract is not where the intake was told to find it."""


@dataclass(frozen=True, slots=True)
class PublishedContract:
    """The AsyncAPI document and each event type's JSON Schema, as bytes, by file name."""

    document: bytes
    schemas: Mapping[str, bytes]

    @classmethod
    def read(cls, folder: Path | None) -> PublishedContract:
        """Reads the document and one schema per registered event type from ``folder``."""
        folder = folder or DEFAULT_CONTRACT_DIR
        wanted = [ASYNCAPI_DOCUMENT, *(schema_path(e) for e in EVENT_TYPES.values())]
        missing = [name for name in wanted if not (folder / name).is_file()]
        if missing:
            raise ContractMissing(
                f"{folder.resolve()} lacks {', '.join(missing)}: set VCS_CONTRACT_DIR to the "
                "folder `make contract` writes (docs/ of the repo)"
            )
        schemas = {
            Path(name).name: (folder / name).read_bytes()
            for name in wanted
            if name.startswith(f"{SCHEMAS_FOLDER}/")
        }
        return cls(document=(folder / ASYNCAPI_DOCUMENT).read_bytes(), schemas=schemas)


def _served_as(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {media_type: {}}}}


def contract_router(contract: PublishedContract) -> APIRouter:
    """Open routes (no token): the contract is public so that any system can build on it."""
    router = APIRouter(tags=["event contract"])

    @router.get(
        f"/{ASYNCAPI_DOCUMENT}",
        response_class=Response,
        responses=_served_as(ASYNCAPI_MEDIA_TYPE, "AsyncAPI 3 description of every event"),
    )
    async def asyncapi_document() -> Response:
        """The AsyncAPI document of the events on ``vcs.events``; its schema references are
        relative, so they resolve against this server."""
        return Response(contract.document, media_type=ASYNCAPI_MEDIA_TYPE)

    @router.get(
        f"/{SCHEMAS_FOLDER}/{{file_name}}",
        response_class=Response,
        responses={
            **_served_as(SCHEMA_MEDIA_TYPE, "JSON Schema (2020-12) of one event type's data"),
            404: {"description": "No event type has a schema of that name"},
        },
    )
    async def event_schema(file_name: str) -> Response:
        """The JSON Schema of one event type's ``data``, e.g. ``room.assigned.v1.json``."""
        schema = contract.schemas.get(file_name)
        if schema is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                detail=f"no event schema {file_name!r}; /{ASYNCAPI_DOCUMENT} lists them all",
            )
        return Response(schema, media_type=SCHEMA_MEDIA_TYPE)

    return router
