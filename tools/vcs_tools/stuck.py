"""``vcs requests stuck``: the requests still not final long after they were submitted, each
with the dead letters that carry its id: where to look first when something went wrong that
nobody foresaw.

    vcs requests stuck [--minutes N] [--json]

Like ``vcs dlq`` and ``vcs pool`` it calls the operators' API on the intake's address
(:mod:`vcs_tools.operator_api`): the caller's provinces' requests that are still
``submitted`` or ``assigned`` (``GET /v1/requests``), submitted more than ``--minutes``
(default ``VCS_STUCK_AFTER_MINUTES``, 10) ago, and the dead letters
(``GET /v1/admin/dead-letters``) whose request id is one of theirs. The intake also logs each
one as an error (``request.stuck``) when it gets that old.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from vcs_shared.request_status import NOT_FINAL, stuck_before
from vcs_shared.settings import StuckSettings
from vcs_tools.operator_api import SETTINGS_HELP, CommandFailed, OperatorApi, detail, operator_api

PAGE = 100
DEAD_LETTERS_LIMIT = 1000


def add_parser(commands: Any) -> None:
    """Registers ``requests`` on the ``vcs`` command's subparsers."""
    requests = commands.add_parser(
        "requests", help="look at requests as an operator", description=SETTINGS_HELP
    )
    actions = requests.add_subparsers(dest="requests_command", required=True)
    stuck = actions.add_parser(
        "stuck",
        help="requests not final long after they were submitted, with their dead letters",
        description=SETTINGS_HELP,
    )
    stuck.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="submitted at least this long ago (default VCS_STUCK_AFTER_MINUTES, 10)",
    )
    stuck.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace) -> int:
    """Runs ``vcs requests stuck``; 2 when the system could not be asked."""
    minutes = args.minutes if args.minutes is not None else StuckSettings().stuck_after_minutes
    try:
        with operator_api() as api:
            found = _stuck(api, timedelta(minutes=minutes))
            letters = _dead_letters(api) if found else {}
    except CommandFailed as exc:
        print(f"vcs requests stuck: {exc}")
        return exc.code
    for request in found:
        print(_render(request, letters.get(request["request_id"], []), as_json=args.json))
    if not found and not args.json:
        print(f"no stuck requests (none still submitted or assigned after {minutes:g} minutes)")
    return 0


def _stuck(api: OperatorApi, after: timedelta) -> list[dict[str, Any]]:
    """The caller's requests still not final, submitted before ``now - after``, oldest first."""
    cutoff = stuck_before(datetime.now(UTC), after)
    params: dict[str, str | list[str]] = {
        "status": [status.value for status in NOT_FINAL],
        "limit": str(PAGE),
    }
    found: list[dict[str, Any]] = []
    while True:
        page = _ok(api.request("GET", "/v1/requests", params=params))
        found += [
            item for item in page["items"] if datetime.fromisoformat(item["submitted_at"]) <= cutoff
        ]
        if not page["next"]:
            break
        params["cursor"] = page["next"]
    return sorted(found, key=lambda item: str(item["submitted_at"]))


def _dead_letters(api: OperatorApi) -> dict[str, list[dict[str, Any]]]:
    """The caller's dead letters by the request id they carry."""
    listed = _ok(
        api.request("GET", "/v1/admin/dead-letters", params={"limit": str(DEAD_LETTERS_LIMIT)})
    )
    by_request: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for letter in listed:
        if letter.get("request_id"):
            by_request[str(letter["request_id"])].append(letter)
    return by_request


def _ok(response: httpx.Response) -> Any:
    if response.status_code != httpx.codes.OK:
        raise CommandFailed(detail(response), code=1)
    return response.json()


def _render(request: dict[str, Any], letters: list[dict[str, Any]], *, as_json: bool) -> str:
    if as_json:
        return json.dumps({**request, "dead_letters": letters}, ensure_ascii=False)
    submitted = datetime.fromisoformat(request["submitted_at"])
    waited = int((datetime.now(UTC) - submitted).total_seconds() // 60)
    found = "; ".join(
        f"{letter['service']} {letter['message_id']} ({letter['reason'] or '-'})"
        for letter in letters
    )
    return (
        f"{request['request_id']}\t{request['status']}\t{request['district_code']}\t"
        f"submitted {submitted.isoformat()}\twaiting {waited} min\t"
        f"dead letters: {found or 'none'}"
    )
