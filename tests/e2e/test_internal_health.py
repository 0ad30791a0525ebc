"""Every service answers a health check, which docker-compose's ``healthcheck`` and its start
order (``service_healthy``) rely on: the intake on its public port, the allocator, the notifier
and the desk on their internal APIs, all open (no token), all saying whether the broker and
the store answer."""

from __future__ import annotations

import httpx
import pytest

from tests.support.services import StartServices

pytestmark = pytest.mark.e2e

INTERNAL = {"allocator": "VCS_ADMIN_PORT", "notifier": "VCS_NOTIFIER_PORT", "desk": "VCS_DESK_PORT"}


async def test_each_service_reports_its_broker_and_store_without_a_token(
    start_services: StartServices, service_env: dict[str, str]
) -> None:
    await start_services()

    async with httpx.AsyncClient(timeout=10) as anonymous:
        public = await anonymous.get(f"http://127.0.0.1:{service_env['VCS_PORT']}/healthz")
        internal = {
            service: await anonymous.get(f"http://127.0.0.1:{service_env[port]}/healthz")
            for service, port in INTERNAL.items()
        }

    assert public.status_code == 200
    assert public.json()["broker"] == public.json()["store"] == "up"
    for service, answer in internal.items():
        assert answer.status_code == 200, (service, answer.text)
        assert answer.json() == {"status": "ok", "broker": "up", "store": "up"}, service
