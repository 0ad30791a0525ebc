"""The published event contract, generated from the event models so it cannot drift.

``vcs contract`` (``make contract``) writes ``docs/schemas/<event>.v1.json`` (JSON
Schema of each event's data) and ``docs/asyncapi.yaml`` (the whole set: broker,
exchange, routing keys, CloudEvents envelope), in the layout of
:mod:`vcs_shared.contract`; the intake serves these very files. Tests check that
the committed files equal a fresh generation (so a model change without a
contract change fails CI) and that the official AsyncAPI parser accepts them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from vcs_shared.contract import (
    ASYNCAPI_DOCUMENT,
    ASYNCAPI_VERSION,
    SCHEMAS_FOLDER,
    schema_path,
)
from vcs_shared.envelope import CONTENT_TYPE
from vcs_shared.events import CLOUDEVENT_TYPE_PREFIX, EVENT_TYPES, Event
from vcs_shared.topology import CONSUMERS, binding_keys

EXCHANGE = "vcs.events"
AMQP_BINDING_VERSION = "0.3.0"


def _summary(event: type[Event]) -> str:
    return (event.__doc__ or "").strip().splitlines()[0]


def event_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of each event's ``data``, by path in the contract folder."""
    schemas: dict[str, dict[str, Any]] = {}
    for type_name, event in EVENT_TYPES.items():
        schema = event.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:th.go.dopa.vcs:schema:{type_name}"
        schema["description"] = _summary(event)
        schemas[schema_path(event)] = schema
    return schemas


def _envelope(type_name: str, event: type[Event]) -> dict[str, Any]:
    """The CloudEvent around the event's data (structured mode: the whole body)."""
    return {
        "type": "object",
        "description": "CloudEvents 1.0, structured JSON mode",
        "required": ["specversion", "id", "source", "type", "subject", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {
                "type": "string",
                "format": "uuid",
                "description": "unique per event; also the AMQP message_id property",
            },
            "source": {"type": "string", "description": "the publishing service, /dopa-vcs/…"},
            "type": {"const": type_name},
            "subject": {"type": "string", "description": "the request id"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "correlationid": {
                "type": "string",
                "description": "the request id, the same on every event of one request",
            },
            "traceparent": {
                "type": "string",
                "description": (
                    "W3C Trace Context of the span that published it (CloudEvents "
                    "distributed-tracing extension): every event of one request is in one trace"
                ),
            },
            "tracestate": {"type": "string", "description": "W3C Trace Context, if any"},
            "data": {"$ref": f"./{schema_path(event)}"},
        },
    }


def _channel(name: str, message_keys: list[str]) -> dict[str, Any]:
    """The routing keys of one event name; its ``.v1`` and any later version share them."""
    return {
        "address": f"{name}.{{province_code}}.{{district_code}}",
        "title": name,
        "description": (
            f"`{name}` events, one routing key per office; bind `{name}.#` for every office, "
            f"`{name}.47.*` for the offices of one province. Every version of the event is "
            "published here: tell them apart by the CloudEvents `type`"
        ),
        "parameters": {
            "province_code": {
                "description": "two-digit DOPA province code",
                "examples": ["47"],
            },
            "district_code": {
                "description": "four-digit DOPA district code",
                "examples": ["4701"],
            },
        },
        "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in message_keys},
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
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _message(type_name: str, event: type[Event]) -> dict[str, Any]:
    return {
        "name": type_name,
        "title": f"{event.name} ({type_name.rsplit('.', 1)[1]})",
        "summary": _summary(event),
        "description": (
            f"CloudEvent of type `{type_name}` with `subject` the request id. AMQP "
            "properties: `content_type` application/cloudevents+json, `message_id` the "
            "CloudEvent `id` (deduplicate on it), persistent delivery."
        ),
        "contentType": CONTENT_TYPE,
        "payload": _envelope(type_name, event),
    }


def _operation(channel_key: str, message_keys: list[str], name: str) -> dict[str, Any]:
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel_key}"},
        "summary": f"DOPA VCS publishes {name}",
        "messages": [{"$ref": f"#/channels/{channel_key}/messages/{k}"} for k in message_keys],
        "bindings": {
            "amqp": {
                "deliveryMode": 2,
                "mandatory": True,
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _key(text: str) -> str:
    return text.replace(".", "_")


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3 description of ``vcs.events``: DOPA VCS sends, integrations subscribe.

    One channel (and send operation) per event name, one message per CloudEvents type, so a
    ``.v2`` type is a second message on the channel of its ``.v1``.
    """
    messages: dict[str, Any] = {}
    versions: dict[str, list[str]] = {}
    for type_name, event in EVENT_TYPES.items():
        message_key = _key(type_name.removeprefix(CLOUDEVENT_TYPE_PREFIX))
        messages[message_key] = _message(type_name, event)
        versions.setdefault(event.name, []).append(message_key)
    channels = {_key(name): _channel(name, keys) for name, keys in versions.items()}
    operations = {
        f"send_{_key(name)}": _operation(_key(name), keys, name) for name, keys in versions.items()
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "DOPA VCS events",
            "version": "1.0.0",
            "description": (
                f"Every event is published on the durable topic exchange `{EXCHANGE}` with "
                "routing key `<event>.<province_code>.<district_code>`, persistent, as a "
                "CloudEvents 1.0 structured JSON body whose `id` is also the AMQP message_id. "
                "Bind `#.47.*` for everything of Sakon Nakhon, `room.assigned.#` for every "
                "assignment, from a queue of your own. No passcode travels on these topics: "
                "`room.assigned` carries a join URL without it and the credentials sealed for "
                "the services only. A changed event gets a new type (`….v2`) published beside "
                "the old one, never a silent change; new optional fields may appear in a `v1` "
                "type, so read tolerantly. The services' own queues (not for integrations): "
                + "; ".join(f"{s}: {', '.join(binding_keys(s))}" for s in CONSUMERS)
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "broker": {
                "host": "{host}:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The RabbitMQ of a DOPA VCS deployment",
                "variables": {
                    "host": {
                        "description": "the broker host your deployment's operators name",
                        "examples": ["localhost"],
                    }
                },
                "security": [{"$ref": "#/components/securitySchemes/integrationUser"}],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                "integrationUser": {
                    "type": "userPassword",
                    "description": (
                        "A broker user of your own from the deployment's operators "
                        "(deploy/rabbitmq/create-users.sh: integration-readonly): it may "
                        "declare queues named amq.gen-* or integration.*, bind them to "
                        f"`{EXCHANGE}` and read them; nothing else"
                    ),
                }
            },
        },
    }


def rendered_files() -> dict[str, str]:
    """Relative path -> text of every generated contract file."""
    files = {
        path: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for path, schema in event_schemas().items()
    }
    files[ASYNCAPI_DOCUMENT] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    return files


def write_contract(docs: Path) -> list[Path]:
    """Writes every contract file under ``docs``; a schema file no event type makes any more
    is removed, so the intake cannot serve it."""
    files = rendered_files()
    for stale in sorted((docs / SCHEMAS_FOLDER).glob("*.json")):
        if f"{SCHEMAS_FOLDER}/{stale.name}" not in files:
            stale.unlink()
    written = []
    for relative, text in files.items():
        path = docs / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
