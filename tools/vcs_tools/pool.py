"""``vcs pool load|show``: operators replace a region's pool from its file and look at pools.

    vcs pool load FILE          # CSV or YAML; checked whole first, nothing loaded on any error
    vcs pool show [--pool 47]   # every room (no passcodes), or one pool's

The allocator reads the rooms from its store on every allocation, so a load
takes effect at once, without a restart. ``load`` replaces the pools the file
names: a room of those pools that the file no longer lists becomes inactive
(its reservations stay); other pools are untouched. The store is the
allocator's own (``<namespace>_allocator``), reached through its store class.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError

from vcs_allocator.domain import Room
from vcs_allocator.pool import PoolFileError, load_pool_file
from vcs_allocator.store import MongoReservationStore
from vcs_shared.settings import NamespaceSettings
from vcs_shared.store import database_name, make_client


class PoolSettings(NamespaceSettings):
    """Where the allocator's store is; the same ``VCS_`` variables the services read."""

    mongodb_url: SecretStr = Field(description="MongoDB URL of the store")


def add_parser(commands: Any) -> None:
    """Registers ``pool`` on the ``vcs`` command's subparsers."""
    pool = commands.add_parser("pool", help="load or show the pools of Meeting IDs")
    actions = pool.add_subparsers(dest="pool_command", required=True)
    load = actions.add_parser("load", help="replace the pools a CSV or YAML file names")
    load.add_argument("file", type=Path, help="pool file (.csv, .yaml or .yml)")
    show = actions.add_parser("show", help="list the stored rooms (without passcodes)")
    show.add_argument("--pool", help="one pool: a province code (47) or region-12")


def run(args: argparse.Namespace) -> int:
    """Runs ``vcs pool ...``; exit status 1 for a bad file (nothing loaded), 2 for bad settings."""
    if args.pool_command == "load":
        try:
            rooms = load_pool_file(args.file)
        except (PoolFileError, OSError) as exc:
            print(f"vcs pool load: {args.file} was not loaded, nothing changed:")
            for problem in getattr(exc, "problems", [str(exc)]):
                print(f"  {problem}")
            return 1
    try:
        settings = PoolSettings()
    except ValidationError as exc:
        print(f"vcs pool: settings missing or invalid (VCS_MONGODB_URL, VCS_NAMESPACE):\n{exc}")
        return 2
    if args.pool_command == "load":
        return asyncio.run(_load(settings, args.file, rooms))
    return asyncio.run(_show(settings, args.pool))


async def _load(settings: PoolSettings, path: Path, rooms: list[Room]) -> int:
    client = make_client(settings.mongodb_url.get_secret_value(), app_name="vcs-pool")
    try:
        store = MongoReservationStore(client[database_name(settings.namespace, "allocator")])
        await store.ensure_indexes()
        change = await store.replace_rooms(rooms)
    finally:
        await client.close()
    print(
        f"loaded {change.loaded} rooms from {path} into pools {', '.join(change.pools)}; "
        f"{change.deactivated} no longer listed became inactive"
    )
    return 0


async def _show(settings: PoolSettings, pool: str | None) -> int:
    client = make_client(settings.mongodb_url.get_secret_value(), app_name="vcs-pool")
    try:
        store = MongoReservationStore(client[database_name(settings.namespace, "allocator")])
        rooms = await store.all_rooms(pool)
    finally:
        await client.close()
    if not rooms:
        print(f"no rooms in pool {pool}" if pool else "no rooms stored")
        return 0
    by_pool: dict[str, list[Room]] = defaultdict(list)
    for room in rooms:
        by_pool[room.pool].append(room)
    for name, members in by_pool.items():
        active = [r for r in members if r.active]
        mix = ", ".join(
            f"{sum(1 for r in active if r.capacity == c)} x {c}"
            for c in sorted({r.capacity for r in active})
        )
        print(f"pool {name}: {len(active)} active ({mix or 'none'}), {len(members)} in all")
        for room in members:
            state = "active" if room.active else "inactive"
            url = room.public_join_url
            print(f"  {room.meeting_id:>11}  {room.capacity:>5}  {state:<8}  {url}")
    return 0
