"""structlog configured once per process: JSON lines with correlation ids, secrets redacted.

Redaction is a processor in the chain rather than a habit of the callers, so a
log line written tomorrow by someone who forgot about passcodes still cannot
leak one.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from vcs_shared.tracing import add_trace_ids

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(pass(code|word|wd)?|pwd|secret|token|authorization|api[_-]?key|sealed|credential|cookie)",
    re.IGNORECASE,
)
_PWD_IN_URL = re.compile(r"([?&](pwd|passcode|password|token)=)[^&#\s\"']+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@/\s]+(@)", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Masks secrets that can hide inside free text: URL passcodes, bearer tokens, URL passwords.

    Each pattern runs only on text that holds what every match of it must hold (``=``,
    ``bearer`` in any case, ``://``): every log line passes each of its strings through here,
    and most hold none of these, so the regular expressions are skipped for them."""
    if "=" in text:
        text = _PWD_IN_URL.sub(rf"\g<1>{REDACTED}", text)
    if "bearer" in text.lower():
        text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    if "://" in text:
        text = _URL_USERINFO.sub(rf"\g<1>{REDACTED}\g<2>", text)
    return text


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    """Whether a field's name sounds secret; log lines use few names, so the answer is kept."""
    return _SECRET_KEY.search(key) is not None


def redact_value(key: str, value: Any) -> Any:
    """Redacts one value: whole values under secret-sounding keys, secret fragments elsewhere."""
    if isinstance(key, str) and _secret_key(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value("", v) for v in value]
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: applies :func:`redact_value` to every field, nested ones included."""
    for key, value in list(event_dict.items()):
        event_dict[key] = redact_value(key, value)
    return event_dict


def configure_logging(service: str, *, json: bool | None = None, level: str = "info") -> None:
    """Sets up structlog (and the stdlib loggers of our libraries) for this process, once."""
    render_json = json if json is not None else not sys.stderr.isatty()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _bind_service(service),
        add_trace_ids,
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if render_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    # A library's warning (a deprecation, say) becomes a log record like any other, not a
    # raw line on stderr between the JSON ones.
    logging.captureWarnings(True)


def _bind_service(service: str) -> Processor:
    def add_service(_: WrappedLogger, __: str, event_dict: MutableMapping[str, Any]) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service
