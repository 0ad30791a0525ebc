"""The published event contract, generated from the event models so it cannot drift.

``vcs contract write`` writes ``docs/events/<event>.v1.schema.json`` (JSON Schema
of each event's data) and ``docs/asyncapi.yaml`` (the whole set: exchange,
routing keys, CloudEvents envelope). A test checks the committed files equal a
fresh generation, so a model change without a contract change fails CI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from vcs_shared.envelope import CONTENT_TYPE
from vcs_shared.events import EVENT_TYPES, Event
from vcs_shared.topology import CONSUMERS, binding_keys

EXCHANGE = "vcs.events"


def schema_file_name(event: type[Event]) -> str:
    return f"{event.name}.v1.schema.json"


def event_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of each event's ``data``, by file name."""
    schemas: dict[str, dict[str, Any]] = {}
    for type_name, event in EVENT_TYPES.items():
        schema = event.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:th.go.dopa.vcs:schema:{type_name}"
        schema["description"] = (event.__doc__ or "").strip().splitlines()[0]
        schemas[schema_file_name(event)] = schema
    return schemas


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0 description of ``vcs.events`` for integrations in any language."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for type_name, event in EVENT_TYPES.items():
        key = event.name.replace(".", "_")
        messages[key] = {
            "name": type_name,
            "title": event.name,
            "summary": (event.__doc__ or "").strip().splitlines()[0],
            "contentType": CONTENT_TYPE,
            "headers": {
                "type": "object",
                "properties": {"message_id": {"type": "string", "format": "uuid"}},
            },
            "payload": {
                "type": "object",
                "description": "CloudEvents 1.0, structured JSON mode",
                "required": ["specversion", "id", "source", "type", "subject", "data"],
                "properties": {
                    "specversion": {"const": "1.0"},
                    "id": {"type": "string", "format": "uuid"},
                    "source": {"type": "string"},
                    "type": {"const": type_name},
                    "subject": {"type": "string", "description": "the request id"},
                    "time": {"type": "string", "format": "date-time"},
                    "datacontenttype": {"const": "application/json"},
                    "correlationid": {"type": "string"},
                    "data": {"$ref": f"./events/{schema_file_name(event)}"},
                },
            },
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": "0.3.0"}},
        }
        channels[key] = {
            "address": f"{event.name}.{{province_code}}.{{district_code}}",
            "description": f"`{event.name}` events; bind `{event.name}.#` for all provinces",
            "parameters": {
                "province_code": {"description": "two-digit DOPA province code, e.g. 47"},
                "district_code": {"description": "four-digit DOPA district code, e.g. 4701"},
            },
            "messages": {key: {"$ref": f"#/components/messages/{key}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": EXCHANGE,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": "0.3.0",
                }
            },
        }
        operations[f"receive_{key}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"Subscribe to {event.name}",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "DOPA VCS events",
            "version": "1.0.0",
            "description": (
                f"Every event is published on the durable topic exchange `{EXCHANGE}` with "
                "routing key `<event>.<province_code>.<district_code>`, persistent, as a "
                "CloudEvents 1.0 structured JSON body whose `id` is also the AMQP message_id. "
                "Bind `#.47.*` for everything of Sakon Nakhon, `room.assigned.#` for every "
                "assignment. No passcode travels on these topics: `room.assigned` carries "
                "a join URL without it and the credentials sealed for the services only. "
                "The services' own queues: "
                + "; ".join(f"{s}: {', '.join(binding_keys(s))}" for s in CONSUMERS)
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def rendered_files() -> dict[str, str]:
    """Relative path -> text of every generated contract file."""
    files = {
        f"events/{name}": json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for name, schema in event_schemas().items()
    }
    files["asyncapi.yaml"] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    return files


def write_contract(docs: Path) -> list[Path]:
    written = []
    for relative, text in rendered_files().items():
        path = docs / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
