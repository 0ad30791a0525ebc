"""The operators' commands (``vcs pool``, ``vcs dlq``) call the API on the intake's address,
like every other client: the same checks, the same scope, one code path for each action.

Settings (environment, or the files ``make run`` writes beside it):

* ``VCS_API_URL`` — the intake (default ``http://127.0.0.1:8000``);
* ``VCS_TOKEN`` — an operator token (``vcs token issue --operator NAME --region 12``);
  the commands act as that operator, within its provinces;
* without ``VCS_TOKEN``, ``VCS_JWT_SECRET`` (the environment, or ``.data/dev.env`` beside
  ``make run``) signs a 10-minute token of the national role for the local user: whoever
  holds the signing secret can issue any token anyway.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from vcs_shared.auth import TokenCodec
from vcs_tools.token import LOCAL_ENV_FILES

LOCAL_TOKEN_TTL = timedelta(minutes=10)
SETTINGS_HELP = (
    "settings: VCS_API_URL (the intake, default http://127.0.0.1:8000); VCS_TOKEN (an "
    "operator token; the command acts within its provinces); without VCS_TOKEN, "
    "VCS_JWT_SECRET (environment, or .data/dev.env beside `make run`) signs a 10-minute "
    "national operator token for the local user"
)


class OperatorApiSettings(BaseSettings):
    """Where the intake is and who calls it."""

    model_config = SettingsConfigDict(env_prefix="VCS_", extra="ignore", env_file=LOCAL_ENV_FILES)

    api_url: str = Field(default="http://127.0.0.1:8000", pattern=r"^https?://\S+$")
    token: SecretStr | None = Field(default=None, description="An operator's bearer token")
    jwt_secret: SecretStr | None = Field(default=None, min_length=32)


class CommandFailed(Exception):
    """The command cannot go on; the message says why and which setting to look at."""

    def __init__(self, message: str, *, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def bearer_token(settings: OperatorApiSettings) -> str:
    if settings.token is not None:
        return settings.token.get_secret_value()
    if settings.jwt_secret is None:
        raise CommandFailed(
            "no operator token: set VCS_TOKEN (vcs token issue --operator NAME --region N), "
            "or run this beside `make run`, whose .data/dev.env holds the local VCS_JWT_SECRET"
        )
    user = getpass.getuser()
    print(
        f"(no VCS_TOKEN: acting as national operator {user!r}, signed with the local secret)",
        file=sys.stderr,
    )
    codec = TokenCodec(settings.jwt_secret.get_secret_value())
    return codec.issue_operator(user, national=True, ttl=LOCAL_TOKEN_TTL).token


@contextmanager
def operator_api() -> Iterator[OperatorApi]:
    """The API client of the operators' commands; raises :class:`CommandFailed` on bad settings."""
    try:
        settings = OperatorApiSettings()
    except ValidationError as exc:
        fields = ", ".join(f"VCS_{'_'.join(map(str, e['loc'])).upper()}" for e in exc.errors())
        raise CommandFailed(f"settings invalid ({fields}): {exc.errors()[0]['msg']}") from exc
    headers = {"Authorization": f"Bearer {bearer_token(settings)}"}
    with httpx.Client(base_url=settings.api_url, headers=headers, timeout=60) as client:
        yield OperatorApi(client, settings.api_url)


class OperatorApi:
    """Calls the intake; what the command cannot handle becomes :class:`CommandFailed`."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self._client = client
        self._url = url

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | list[str]] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = self._client.request(
                method, path, params=params, json=json, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise CommandFailed(
                f"cannot reach the intake at {self._url} ({exc!r}); is `make run` up? (VCS_API_URL)"
            ) from exc
        if response.status_code == httpx.codes.UNAUTHORIZED:
            raise CommandFailed(f"the token was refused: {detail(response)} (VCS_TOKEN)")
        if response.status_code >= httpx.codes.INTERNAL_SERVER_ERROR:
            raise CommandFailed(f"the system answered {response.status_code}: {detail(response)}")
        return response


def detail(response: httpx.Response) -> str:
    """The ``detail`` of an error answer as one line."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    found = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(found, list):
        return "; ".join(problem(item) for item in found)
    return str(found)


def problem(item: Any) -> str:
    """One entry of a ``422`` detail list: ``line 3: capacity: must be …`` for a pool file,
    ``query.province: …`` for a parameter."""
    if not isinstance(item, dict):
        return str(item)
    if item.get("type") == "pool_file":
        where = [f"line {item['line']}"] if item.get("line") is not None else []
        where += [item["field"]] if item.get("field") else []
        return ": ".join([*where, str(item.get("msg"))])
    loc = ".".join(str(part) for part in item.get("loc", []))
    return f"{loc}: {item.get('msg')}" if loc else str(item.get("msg"))
