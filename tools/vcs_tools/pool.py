"""``vcs pool load|show``: operators replace their pools from a file and look at them.

    vcs pool load FILE          # CSV or YAML; checked whole first, nothing loaded on any error
    vcs pool show [--pool 47]   # the rooms of your pools (no passcodes), or one pool's

Both call the operators' API on the intake's address (:mod:`vcs_tools.operator_api`):
``load`` posts the file to ``/v1/admin/pools/reload``, so it is checked exactly as
a reload through the API (every bad line with its number and field; a pool
outside the caller's provinces refuses the whole file). The allocator reads the
rooms on every allocation, so a load takes effect at once. ``load`` replaces the
pools the file names: a room of those pools that the file no longer lists becomes
inactive (its reservations stay); other pools are untouched.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from vcs_tools.operator_api import SETTINGS_HELP, CommandFailed, detail, operator_api, problem


def add_parser(commands: Any) -> None:
    """Registers ``pool`` on the ``vcs`` command's subparsers."""
    pool = commands.add_parser(
        "pool", help="load or show the pools of Meeting IDs", description=SETTINGS_HELP
    )
    actions = pool.add_subparsers(dest="pool_command", required=True)
    load = actions.add_parser(
        "load", help="replace the pools a CSV or YAML file names", description=SETTINGS_HELP
    )
    load.add_argument("file", type=Path, help="pool file (.csv, .yaml or .yml)")
    show = actions.add_parser(
        "show", help="list the rooms of your pools (without passcodes)", description=SETTINGS_HELP
    )
    show.add_argument("--pool", help="one pool: a province code (47) or region-12")


def run(args: argparse.Namespace) -> int:
    """Runs ``vcs pool ...``; exit status 1 when the system refused (nothing loaded),
    2 when it could not be asked (settings, connection)."""
    try:
        if args.pool_command == "load":
            return _load(args.file)
        return _show(args.pool)
    except CommandFailed as exc:
        print(f"vcs pool {args.pool_command}: {exc}")
        return exc.code


def _load(path: Path) -> int:
    try:
        content = path.read_bytes()
    except OSError as exc:
        print(f"vcs pool load: {path} was not loaded: {exc}")
        return 1
    media_type = "text/csv" if path.suffix.lower() == ".csv" else "application/yaml"
    with operator_api() as api:
        response = api.request(
            "POST", "/v1/admin/pools/reload", content=content, headers={"content-type": media_type}
        )
    if response.status_code == httpx.codes.UNPROCESSABLE_ENTITY:
        print(f"vcs pool load: {path} was not loaded, nothing changed:")
        for item in response.json()["detail"]:
            print(f"  {problem(item)}")
        return 1
    if response.status_code != httpx.codes.OK:
        print(f"vcs pool load: {path} was not loaded, nothing changed: {detail(response)}")
        return 1
    change = response.json()
    print(
        f"loaded {change['loaded']} rooms from {path} into pools {', '.join(change['pools'])}; "
        f"{change['deactivated']} no longer listed became inactive"
    )
    return 0


def _show(pool: str | None) -> int:
    with operator_api() as api:
        response = api.request("GET", "/v1/admin/pools", params={"pool": pool} if pool else None)
    if response.status_code != httpx.codes.OK:
        print(f"vcs pool show: {detail(response)}")
        return 1
    rooms: list[dict[str, Any]] = response.json()["items"]
    if not rooms:
        print(f"no rooms in pool {pool}" if pool else "no rooms in your pools")
        return 0
    by_pool: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for room in rooms:
        by_pool[room["pool"]].append(room)
    for name, members in by_pool.items():
        active = [r for r in members if r["active"]]
        mix = ", ".join(
            f"{sum(1 for r in active if r['capacity'] == c)} x {c}"
            for c in sorted({r["capacity"] for r in active})
        )
        print(f"pool {name}: {len(active)} active ({mix or 'none'}), {len(members)} in all")
        for room in members:
            state = "active" if room["active"] else "inactive"
            print(f"  {room['meeting_id']:>11}  {room['capacity']:>5}  {state}")
    return 0
