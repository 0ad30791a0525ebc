"""Headless Chromium for page tests: Debian's ``chromium`` on the PATH, driven by Playwright
(its own browser download cannot work on these machines; ``scripts/ensure-chromium.sh``
installs the Debian package). Screenshots go to ``.data/screenshots/`` (not committed)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from tests.support.paths import ROOT
from tests.support.people import PASSWORD

SCREENSHOTS = ROOT / ".data" / "screenshots"
PHONE: ViewportSize = {"width": 360, "height": 780}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
# Headless as root, in a container without a GPU or a session bus, reaching nothing outside.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (scripts/ensure-chromium.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot once the page's fonts have loaded."""
    await page.wait_for_load_state("load")
    await page.evaluate("document.fonts.ready.then(() => true)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def sarabun_renders_thai(page: Page) -> bool:
    """Whether the page's Thai text is drawn with the Sarabun font it serves (not a fallback
    or tofu boxes): the page's Sarabun face for the Thai block loads from the intake."""
    await page.wait_for_load_state("load")  # the stylesheets that declare the font are in
    result: bool = await page.evaluate(
        """async () => {
            const faces = await document.fonts.load('16px Sarabun', 'ห้องประชุม');
            return faces.some(f => f.family.replace(/["']/g, '') === 'Sarabun'
                                   && f.status === 'loaded' && f.unicodeRange.includes('E01'));
        }"""
    )
    return result


async def unlabelled_fields(page: Page) -> list[str]:
    """Names of visible form fields without a label (or an aria-label)."""
    names: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.type !== 'hidden')
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map(e => e.name || e.id || e.outerHTML)"""
    )
    return names


async def cut_off(page: Page) -> list[str]:
    """Elements reaching past the right edge of the window (cut off on a phone, or making the
    whole page scroll sideways); what sits in a box that scrolls or clips by itself (a wide
    table, the day grid) is not counted."""
    found: list[str] = await page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const inScroller = e => {
                for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
                    if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) {
                        return true;
                    }
                }
                return false;
            };
            const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                + (typeof e.className === 'string' && e.className
                   ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
            const wide = [...document.body.querySelectorAll('*')].filter(e => {
                const box = e.getBoundingClientRect();
                return box.width > 0 && box.height > 0 && box.right > width + 0.5 && !inScroller(e);
            }).map(name);
            if (document.documentElement.scrollWidth > width) {
                wide.push('page scrolls sideways: ' + document.documentElement.scrollWidth + 'px');
            }
            return wide;
        }"""
    )
    return found


async def accept_invite_and_sign_in(page: Page, link: str, email: str) -> None:
    """Sets the password on the invite page, then signs in with it (Enter: the keyboard is
    enough)."""
    await page.goto(link)
    await page.fill("[name=password]", PASSWORD)
    await page.fill("[name=password_confirm]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/signin?*")
    await expect(page.locator("[name=email]")).to_have_value(email)
    await page.fill("[name=password]", PASSWORD)
    await page.press("[name=password]", "Enter")
