"""Where the published event contract's files live: one layout on disk and over HTTP.

``make contract`` writes ``asyncapi.yaml`` and ``schemas/<event>.v<n>.json`` into
``docs/``; the intake serves that very folder at its root (``/asyncapi.yaml``,
``/schemas/…``). The AsyncAPI document refers to the schemas by relative paths,
so they resolve alike whether a tool reads the repo or the running intake.
"""

from __future__ import annotations

from vcs_shared.events import CLOUDEVENT_TYPE_PREFIX, Event

ASYNCAPI_DOCUMENT = "asyncapi.yaml"
ASYNCAPI_VERSION = "3.0.0"
ASYNCAPI_MEDIA_TYPE = f"application/asyncapi+yaml;version={ASYNCAPI_VERSION}"
SCHEMA_MEDIA_TYPE = "application/schema+json"
SCHEMAS_FOLDER = "schemas"


def schema_file_name(event: type[Event]) -> str:
    """``room.assigned.v1.json``: the CloudEvents type without its prefix, so a ``.v2`` type
    gets a file of its own beside the ``.v1`` one."""
    return f"{event.cloudevent_type().removeprefix(CLOUDEVENT_TYPE_PREFIX)}.json"


def schema_path(event: type[Event]) -> str:
    """The schema's path relative to the contract folder (and to the intake's root URL)."""
    return f"{SCHEMAS_FOLDER}/{schema_file_name(event)}"
