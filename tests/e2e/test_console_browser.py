"""The operators' console in a real browser (headless Chromium): a region-12 operator accepts an
invite, signs in, watches a request submitted over the API appear in the live feed without
reloading, opens it with the keyboard and cancels it; the day view shows the booking.

Screenshots of the console at 1280 px and 360 px land in ``.data/screenshots/``; the time from
the API's ``202`` to the row in the feed is written to ``.data/screenshots/console-timings.txt``
(a figure for the report, never an assertion).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, expect

from tests.e2e.test_clerk_pages import Outside, new_context
from tests.support.audit import exactly
from tests.support.browser import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    sarabun_renders_thai,
    screenshot,
)
from tests.support.browser import accept_invite_and_sign_in as sign_in_from_invite
from tests.support.people import invite
from tests.support.requests import request_body, wait_status
from tests.support.services import StartServices

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture
async def outside() -> Outside:
    return Outside()


@pytest_asyncio.fixture
async def desktop(browser: Browser, outside: Outside) -> AsyncIterator[BrowserContext]:
    context = await new_context(browser, outside, DESKTOP)
    yield context
    await context.close()


async def test_an_operator_watches_a_request_arrive_live_and_cancels_it(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    browser: Browser,
    desktop: BrowserContext,
    outside: Outside,
    tmp_path: Path,
) -> None:
    await start_services()
    email = "somsak.op@example.go.th"
    link = await invite(
        service_env,
        tmp_path,
        email=email,
        name="สมศักดิ์ ศูนย์สื่อสาร",
        scope=("--operator", "--region", "12"),
    )
    page = await desktop.new_page()
    page.set_default_timeout(30_000)
    await sign_in_from_invite(page, link, email)
    await page.goto(f"{intake_url}/console")
    await expect(page.locator("#feed-state")).to_have_attribute("data-state", "live")
    await page.evaluate("window.__sameDocument = true")
    assert await sarabun_renders_thai(page)

    title = f"ประชุมติดตามสถานการณ์น้ำ {uuid.uuid4().hex[:4]}"
    body = request_body("4701", title=title, needs_support=True)
    sent = time.monotonic()
    answer = await http.post("/v1/requests", json=body)
    assert answer.status_code == 202
    request_id = answer.json()["request_id"]
    submitted_row = page.locator("#feed-rows tr.event-request-submitted", has_text=title)
    await expect(submitted_row).to_be_visible()
    shown_after = time.monotonic() - sent
    await expect(submitted_row).to_contain_text("ที่ทำการปกครองอำเภอเมืองสกลนคร")
    delivered_row = page.locator("#feed-rows tr.event-credentials-delivered", has_text=title)
    await expect(delivered_row).to_be_visible(timeout=60_000)
    await expect(delivered_row.locator("td").last).to_have_text("อีเมล")  # the channel, not "email"
    assert await page.evaluate("window.__sameDocument === true")  # never reloaded
    await screenshot(page, "console-feed-1280")
    await wait_status(http, request_id, "delivered")

    # The day view: the booking as a bar in its room's row.
    await page.goto(f"{intake_url}/console/day?province=47&date={body['starts_at'][:10]}")
    bar = page.locator(f"a.bar[href='/console/requests/{request_id}']")
    await expect(bar).to_contain_text(title)
    await screenshot(page, "console-day-1280")

    # Back to the feed, which starts from midnight: the request is there again; opened with
    # the keyboard, then cancelled.
    await page.goto(f"{intake_url}/console")
    opener = page.locator(f"#feed-rows tr.event-request-submitted a[data-request='{request_id}']")
    await expect(opener).to_have_text(title)
    await opener.focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/console/requests/{request_id}")
    await expect(page.locator("h1")).to_have_text(title)
    await screenshot(page, "console-request-1280")
    await page.click("#cancel-request")
    await expect(page.locator("#request-status")).to_have_text("ยกเลิกแล้ว")
    assert (await wait_status(http, request_id, "cancelled"))["status"] == "cancelled"

    # The audit log names who cancelled.
    await exactly(http, 1, target=request_id, action="request_cancel")
    await page.goto(f"{intake_url}/console/audit")
    row = page.locator("#audit-log tbody tr", has_text=request_id)
    await expect(row).to_contain_text("ยกเลิกคำขอ")
    await expect(row).to_contain_text("→ ยกเลิกแล้ว")  # the statuses in Thai
    await expect(row).to_contain_text("สมศักดิ์ ศูนย์สื่อสาร")
    await screenshot(page, "console-audit-1280")
    # So does the request's history, in Thai: events and audited actions by their names.
    await page.goto(f"{intake_url}/console/requests/{request_id}")
    history = page.locator("ol.history")
    await expect(history.locator("li", has_text="ยกเลิกคำขอ")).to_contain_text("สมศักดิ์ ศูนย์สื่อสาร")
    await expect(history).to_contain_text("ขอห้องประชุม")  # request.submitted
    await expect(history).not_to_contain_text("request.")
    day = body["starts_at"][:10]
    utilisation = f"/console/utilisation?province=47&from={day}&to={day}"
    await page.goto(intake_url + utilisation)
    await expect(page.locator("figure.chart")).to_have_count(1)
    # the day under its bar as Thai dates are written (day/month), not an ISO fragment
    day_label = f"{int(day[8:10])}/{int(day[5:7])}"
    await expect(page.locator("figure.chart svg text").last).to_have_text(day_label)
    await expect(page.locator("table.list tbody tr")).to_have_count(1)
    utilisation_row = page.locator("table.list tbody tr")
    await expect(utilisation_row).to_contain_text("สกลนคร")  # the province's name, not 47
    await expect(utilisation_row).to_contain_text(str(int(day[:4]) + 543))  # Buddhist Era
    await screenshot(page, "console-utilisation-1280")
    assert outside.requests == []

    phone = await browser.new_context(
        viewport=PHONE, locale="th-TH", storage_state=await desktop.storage_state()
    )
    small = await phone.new_page()
    for path, name in (
        ("/console", "console-feed-360"),
        (f"/console/day?province=47&date={body['starts_at'][:10]}", "console-day-360"),
        (f"/console/requests/{request_id}", "console-request-360"),
        ("/console/audit", "console-audit-360"),
        (utilisation, "console-utilisation-360"),
    ):
        await small.goto(intake_url + path)
        if name == "console-feed-360":  # the rows arrive after the page: shoot them, too
            await expect(
                small.locator("#feed-rows tr.event-credentials-delivered", has_text=title)
            ).to_contain_text("อีเมล")
        await screenshot(small, name)
    await phone.close()

    # "English" at the top: the feed names the channel in English, too.
    await page.goto(f"{intake_url}/language?to=en&next=/console")
    await expect(delivered_row.locator("td").last).to_have_text("E-mail")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "console-timings.txt").write_text(
        f"API 202 -> row in the console's live feed: {shown_after * 1000:.0f} ms\n"
    )
