"""District clerks in a real browser (headless Chromium): invited, signed in, asking for a
room with the form, watching it arrive without reloading, taking the credentials away
(Meeting ID, copy button, .ics), a rejection in Thai with what to try, the office's list
(upcoming before past), the English switch, an old PC with JavaScript off, and what they must
not see or do twice. At 360 px nothing may reach past the right edge (:func:`cut_off`).

Screenshots at 360 px (a phone) and 1280 px land in ``.data/screenshots/``; the time from
pressing "send" to the Meeting ID on the page is written to ``.data/screenshots/timings.txt``
(figures belong to reports, never to assertions).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from icalendar import Calendar
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    Route,
    ViewportSize,
    expect,
)
from pymongo import AsyncMongoClient

from tests.support.browser import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    cut_off,
    sarabun_renders_thai,
    screenshot,
    unlabelled_fields,
)
from tests.support.browser import (
    accept_invite_and_sign_in as sign_in_from_invite,
)
from tests.support.people import invite
from tests.support.requests import request_body, tomorrow_at, wait_status
from tests.support.services import StartServices
from vcs_intake.domain import RequestState
from vcs_intake.store import MongoRequestStore
from vcs_intake.web.dates import thai_date
from vcs_shared.events import Contact, Urgency
from vcs_shared.store import Document, database_name
from vcs_shared.thaitime import BANGKOK

pytestmark = pytest.mark.e2e

SEND = "form[action='/requests/new'] button[type=submit]"  # not the header's sign-out button


class Outside:
    """Every request a page makes beyond this machine: there must be none (no CDN)."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def guard(self, route: Route, request: Request) -> None:
        if request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            await route.continue_()
        else:
            self.requests.append(request.url)
            await route.abort()


@pytest_asyncio.fixture
async def outside() -> Outside:
    return Outside()


async def new_context(browser: Browser, outside: Outside, viewport: ViewportSize) -> BrowserContext:
    context = await browser.new_context(viewport=viewport, locale="th-TH", accept_downloads=True)
    await context.route("**/*", outside.guard)
    return context


@pytest_asyncio.fixture
async def phone(browser: Browser, outside: Outside) -> AsyncIterator[BrowserContext]:
    context = await new_context(browser, outside, PHONE)
    yield context
    await context.close()


async def accept_invite_and_sign_in(page: Page, link: str, email: str) -> None:
    await sign_in_from_invite(page, link, email)
    await expect(page.locator("h1")).to_have_text("คำขอของหน่วยงาน")


def be_date(moment: datetime) -> str:
    return f"{moment.day}/{moment.month}/{moment.year + 543}"


async def fill_request(page: Page, *, title: str, day: datetime, participants: str) -> None:
    await page.fill("[name=title]", title)
    await page.fill("[name=date]", be_date(day))
    await page.fill("[name=start_time]", "09:00")
    await page.fill("[name=end_time]", "10:30")
    await page.fill("[name=participants]", participants)
    await page.select_option("[name=urgency]", "very_urgent")
    await page.check("[name=needs_support]")
    await page.fill("[name=contact_phone]", "042-711360")


async def test_a_clerk_asks_for_a_room_and_watches_it_arrive(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    browser: Browser,
    phone: BrowserContext,
    outside: Outside,
    tmp_path: Path,
) -> None:
    await start_services()
    link = await invite(
        service_env,
        tmp_path,
        email="somsri@example.go.th",
        name="สมศรี ใจดี",
        scope=("--office", "4701"),
    )
    page = await phone.new_page()
    page.set_default_timeout(30_000)
    await accept_invite_and_sign_in(page, link, "somsri@example.go.th")
    assert await sarabun_renders_thai(page)
    await screenshot(page, "home-360-empty")
    assert await cut_off(page) == []

    # The form, reached with the keyboard; the contact is filled in from the person.
    await page.focus("a[href='/requests/new']")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{intake_url}/requests/new")
    assert await unlabelled_fields(page) == []
    await expect(page.locator("[name=contact_name]")).to_have_value("สมศรี ใจดี")
    await expect(page.locator("[name=contact_email]")).to_have_value("somsri@example.go.th")
    grades = await page.locator("[name=urgency] option").all_inner_texts()
    assert grades == ["ปกติ", "ด่วน", "ด่วนมาก", "ด่วนที่สุด"]
    await expect(page.locator("label[for=needs_support]")).to_have_text("ขอเจ้าหน้าที่แนะนำการใช้งาน")

    # A bad field: a Thai message next to it, everything typed kept.
    day = tomorrow_at(9, days=2)
    await fill_request(page, title="ประชุมติดตามสถานการณ์ภัยแล้ง", day=day, participants="ห้าสิบ")
    await page.click(SEND)
    error = page.locator("#participants-error")
    await expect(error).to_contain_text("กรุณาระบุจำนวนผู้เข้าร่วมเป็นตัวเลข")
    await expect(page.locator("[name=participants]")).to_have_attribute("aria-invalid", "true")
    kept = {
        name: await page.input_value(f"[name={name}]")
        for name in ("title", "date", "start_time", "end_time", "participants", "contact_phone")
    }
    assert kept == {
        "title": "ประชุมติดตามสถานการณ์ภัยแล้ง",
        "date": be_date(day),
        "start_time": "09:00",
        "end_time": "10:30",
        "participants": "ห้าสิบ",
        "contact_phone": "042-711360",
    }
    assert await page.input_value("[name=urgency]") == "very_urgent"
    assert await page.is_checked("[name=needs_support]")
    await screenshot(page, "form-360-error")
    assert await cut_off(page) == []

    # Sent: the request page follows the status by itself (no reload) up to delivered.
    await page.fill("[name=participants]", "50")
    hint = page.locator("#free-rooms-hint")  # asked of the allocator as the fields change
    await expect(hint).to_be_visible()
    await expect(hint).to_contain_text("ห้องประชุมของจังหวัดที่ยังว่าง")
    await screenshot(page, "form-360-free-rooms")
    assert await cut_off(page) == []
    sent = time.monotonic()
    await page.click(SEND)
    await page.wait_for_url("**/requests/*-*")
    await page.evaluate("window.__sameDocument = true")
    meeting_id = page.locator("#meeting-id")
    await expect(meeting_id).to_be_visible(timeout=60_000)
    shown_after = time.monotonic() - sent
    await expect(page.locator("#status .badge")).to_have_text("ห้องพร้อมใช้งาน", timeout=60_000)
    assert await page.evaluate("window.__sameDocument === true")  # never reloaded
    request_id = page.url.rsplit("/", 1)[-1]

    api = (await http.get(f"/v1/requests/{request_id}")).json()
    assert api["status"] == "delivered"
    assert await meeting_id.inner_text() == api["assignment"]["meeting_id"]
    assert await page.inner_text("#passcode") == api["assignment"]["passcode"]
    assert await page.locator("#status svg").count() == 1  # the QR code
    assert await sarabun_renders_thai(page)
    await expect(page.locator(".facts .date")).to_contain_text(str(day.year + 543))
    await screenshot(page, "request-360-delivered")
    assert await cut_off(page) == []

    # A copy button puts the Meeting ID on the clipboard and says so.
    await phone.grant_permissions(["clipboard-read", "clipboard-write"], origin=intake_url)
    copy = page.locator(".credential", has=meeting_id).locator("button.copy")
    await copy.click()
    await expect(copy).to_have_text("คัดลอกแล้ว")
    assert await page.evaluate("navigator.clipboard.readText()") == api["assignment"]["meeting_id"]

    # The .ics file of the meeting, in Asia/Bangkok time.
    async with page.expect_download() as download_info:
        await page.click("a[href$='calendar.ics']")
    download = await download_info.value
    ics = await asyncio.to_thread(Path(await download.path()).read_bytes)
    calendar = Calendar.from_ical(ics)
    (event,) = calendar.walk("VEVENT")
    assert str(event["SUMMARY"]) == "ประชุมติดตามสถานการณ์ภัยแล้ง"
    starts = event.decoded("DTSTART")
    assert starts == day.replace(hour=9, minute=0)
    assert starts.utcoffset() == timedelta(hours=7)
    assert api["assignment"]["meeting_id"] in str(event["DESCRIPTION"])

    # The office's list: the meeting with its status, Buddhist-era date, time and room.
    await page.goto(f"{intake_url}/")
    listed = page.locator("[aria-labelledby=upcoming-heading] .item")
    await expect(listed).to_have_count(1)
    await expect(listed.locator(".badge")).to_have_text("ห้องพร้อมใช้งาน")
    await expect(listed.locator(".date")).to_contain_text(str(day.year + 543))
    await expect(listed.locator(".time")).to_contain_text("09:00\N{EN DASH}10:30")
    await expect(listed.locator(".room")).to_contain_text(api["assignment"]["meeting_id"])
    await screenshot(page, "home-360-delivered")
    assert await cut_off(page) == []

    # The same pages at 1280 px, and the printable confirmation.
    desktop = await new_context(browser, outside, DESKTOP)
    await desktop.add_cookies(
        [{"name": c["name"], "value": c["value"], "url": intake_url} for c in await phone.cookies()]
    )
    wide = await desktop.new_page()
    await wide.goto(f"{intake_url}/requests/{request_id}")

    await expect(wide.locator("#support-ticket")).to_be_visible()  # staff were asked for
    await screenshot(wide, "request-1280-delivered")
    await wide.goto(f"{intake_url}/")
    await screenshot(wide, "home-1280")
    await wide.goto(f"{intake_url}/requests/new")
    await screenshot(wide, "form-1280")
    await wide.goto(f"{intake_url}/requests/{request_id}/print")
    await expect(wide.locator("h1")).to_contain_text("ยืนยันการจองห้องประชุม")
    await expect(wide.locator("body")).to_contain_text(str(day.year + 543))
    assert await sarabun_renders_thai(wide)
    await screenshot(wide, "print-1280")
    await desktop.close()

    (SCREENSHOTS / "timings.txt").write_text(
        f"submit to Meeting ID on the page: {shown_after:.2f} s\n", encoding="utf-8"
    )
    print(f"submit to Meeting ID on the page: {shown_after:.2f} s")
    assert outside.requests == []


async def test_another_office_gets_404_and_a_double_submit_makes_one_request(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    mongo: AsyncMongoClient[Document],
    browser: Browser,
    phone: BrowserContext,
    outside: Outside,
    tmp_path: Path,
) -> None:
    await start_services()
    clerk = await invite(
        service_env, tmp_path, email="a@example.go.th", name="ก", scope=("--office", "4701")
    )
    neighbour = await invite(
        service_env, tmp_path, email="b@example.go.th", name="ข", scope=("--office", "4702")
    )
    page = await phone.new_page()
    page.set_default_timeout(30_000)
    await accept_invite_and_sign_in(page, clerk, "a@example.go.th")

    # A double click, then the same form sent again (a reload, the back button): one request.
    await page.goto(f"{intake_url}/requests/new")
    title = "ประชุมประจำเดือน (ส่งซ้ำ)"
    await fill_request(page, title=title, day=tomorrow_at(13, days=3), participants="120")
    fields = await page.evaluate(
        "Object.fromEntries(new FormData(document.querySelector('form[action=\"/requests/new\"]')))"
    )
    await page.dblclick(SEND)
    await page.wait_for_url("**/requests/*-*")
    request_id = page.url.rsplit("/", 1)[-1]
    again = await page.request.post(f"{intake_url}/requests/new", form=fields, max_redirects=0)
    assert again.status == 303
    assert again.headers["location"] == f"/requests/{request_id}"
    requests = mongo[database_name(service_env["VCS_NAMESPACE"], "intake")]["requests"]
    assert await requests.count_documents({"title": title}) == 1

    # Another office: the page, its live stream and its calendar file are all 404.
    other = await new_context(browser, outside, PHONE)
    other_page = await other.new_page()
    await accept_invite_and_sign_in(other_page, neighbour, "b@example.go.th")
    for path in ("", "/live", "/calendar.ics", "/print", "/cancel"):
        response = await other_page.goto(f"{intake_url}/requests/{request_id}{path}")
        assert response is not None
        assert response.status == 404, path
    await expect(other_page.locator("h1")).to_have_text("ไม่พบข้อมูล")
    await other.close()

    # Cancelling takes a confirmation step.
    await page.goto(f"{intake_url}/requests/{request_id}")
    await page.click("a[href$='/cancel']")
    await expect(page.locator("h1")).to_have_text("ยกเลิกการประชุม?")
    await screenshot(page, "cancel-360-confirm")
    await page.click("form button.danger")
    await expect(page.locator("#status .badge")).to_have_text("ยกเลิกแล้ว")
    assert (await http.get(f"/v1/requests/{request_id}")).json()["status"] == "cancelled"
    assert outside.requests == []


async def test_the_api_documentation_works_without_the_internet(
    start_services: StartServices, intake_url: str, phone: BrowserContext, outside: Outside
) -> None:
    await start_services("intake")
    page = await phone.new_page()
    await page.goto(f"{intake_url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("DOPA VCS intake")
    await page.goto(f"{intake_url}/redoc")
    await expect(page.locator("h1").first).to_contain_text("DOPA VCS intake", timeout=30_000)
    assert outside.requests == []


async def test_a_rejection_says_why_in_thai_and_the_list_puts_upcoming_before_past(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    http: httpx.AsyncClient,
    mongo: AsyncMongoClient[Document],
    phone: BrowserContext,
    outside: Outside,
    tmp_path: Path,
) -> None:
    await start_services()
    link = await invite(
        service_env, tmp_path, email="c@example.go.th", name="ค", scope=("--office", "4701")
    )
    # A meeting the office held yesterday, and one tomorrow asked for through the API.
    ended = datetime.now(BANGKOK) - timedelta(days=1)
    past = RequestState(
        request_id="held-yesterday-1",
        district_code="4701",
        province_code="47",
        title="ประชุมเมื่อวาน",
        starts_at=ended - timedelta(hours=1),
        ends_at=ended,
        participants=20,
        urgency=Urgency.normal,
        needs_support=False,
        contact=Contact(name="ค", email="c@example.go.th", phone="042-711360"),
        submitted_at=ended - timedelta(days=1),
        idempotency_key="4701:held-yesterday-1",
        fingerprint="-",
    )
    store = MongoRequestStore(mongo[database_name(service_env["VCS_NAMESPACE"], "intake")])
    await store.insert(past, past.submitted("not-opened-here"))
    soon = request_body("4701", starts_at=tomorrow_at(8), title="ประชุมพรุ่งนี้เช้า")
    made = await http.post("/v1/requests", json=soon, headers={"Idempotency-Key": "list-soon"})
    await wait_status(http, made.json()["request_id"], "delivered")

    page = await phone.new_page()
    page.set_default_timeout(30_000)
    await accept_invite_and_sign_in(page, link, "c@example.go.th")

    # More people than any room holds, the date typed as ISO: the hint says so already, and
    # the request page shows the Thai reason and what to try, and offers to ask again.
    await page.goto(f"{intake_url}/requests/new")
    day = tomorrow_at(14, days=3)
    await fill_request(page, title="ประชุมใหญ่ทั้งจังหวัด", day=day, participants="5000")
    await page.fill("[name=date]", day.date().isoformat())
    await expect(page.locator("#free-rooms-hint")).to_contain_text("ไม่มีห้องที่รองรับผู้เข้าร่วม 5000 คน")
    await page.click(SEND)
    await page.wait_for_url("**/requests/*-*")
    await expect(page.locator("#status .badge")).to_have_text("จองไม่ได้", timeout=60_000)
    await expect(page.locator(".facts .date")).to_contain_text(thai_date(day.date()))
    await expect(page.locator("#status .error")).to_have_text(
        "จำนวนผู้เข้าร่วมเกินความจุของห้องประชุมที่ใหญ่ที่สุด"
    )
    await expect(page.locator("#status")).to_contain_text("กรุณาลดจำนวนผู้เข้าร่วม")
    await screenshot(page, "request-360-rejected")
    assert await cut_off(page) == []
    await page.click("a[href^='/requests/new?again=']")
    await expect(page.locator("[name=title]")).to_have_value("ประชุมใหญ่ทั้งจังหวัด")
    await expect(page.locator("[name=participants]")).to_have_value("5000")

    # The office's list: upcoming (earliest first) above the past.
    await page.goto(f"{intake_url}/")
    upcoming = page.locator("[aria-labelledby=upcoming-heading] .item-title")
    await expect(upcoming).to_have_text(["ประชุมพรุ่งนี้เช้า", "ประชุมใหญ่ทั้งจังหวัด"])
    await expect(page.locator("[aria-labelledby=past-heading] .item-title")).to_have_text(
        ["ประชุมเมื่อวาน"]
    )
    rejected = page.locator(".item", has_text="ประชุมใหญ่ทั้งจังหวัด")
    await expect(rejected.locator(".badge")).to_have_text("จองไม่ได้")
    await expect(rejected.locator(".room")).to_contain_text("—")
    await screenshot(page, "home-360-upcoming-and-past")
    assert await cut_off(page) == []

    # The English switch, and back to Thai.
    await page.click("a[hreflang=en]")
    await expect(page.locator("h1")).to_have_text("Your office's requests")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(rejected.locator(".date")).to_contain_text(f"(BE {day.year + 543})")
    await screenshot(page, "home-360-english")
    await page.click("a[hreflang=th]")
    await expect(page.locator("h1")).to_have_text("คำขอของหน่วยงาน")
    assert outside.requests == []


async def test_an_old_pc_without_javascript_still_gets_its_room(
    start_services: StartServices,
    service_env: dict[str, str],
    intake_url: str,
    browser: Browser,
    outside: Outside,
    tmp_path: Path,
) -> None:
    """Scripts off (an old or locked-down office PC) on a 1024 px screen: every form is a
    plain form, and the request page reloads itself until the room is there."""
    await start_services()
    link = await invite(
        service_env, tmp_path, email="d@example.go.th", name="ง", scope=("--office", "4701")
    )
    context = await browser.new_context(
        viewport={"width": 1024, "height": 768}, locale="th-TH", java_script_enabled=False
    )
    await context.route("**/*", outside.guard)
    try:
        page = await context.new_page()
        page.set_default_timeout(30_000)
        await accept_invite_and_sign_in(page, link, "d@example.go.th")
        await page.click("a[href='/requests/new']")
        await fill_request(
            page, title="ประชุมจากเครื่องเก่า", day=tomorrow_at(9, days=4), participants="30"
        )
        await page.click(SEND)
        await page.wait_for_url("**/requests/*-*")
        await expect(page.locator("#meeting-id")).to_be_visible(timeout=60_000)
        await expect(page.locator("#status .badge")).to_have_text("ห้องพร้อมใช้งาน", timeout=60_000)
        await screenshot(page, "request-1024-no-javascript")
        assert await cut_off(page) == []
    finally:
        await context.close()
    assert outside.requests == []
