"""The browser tests drive Debian's Chromium (`apt-get install -y chromium`) with Playwright
for Python; Playwright's own browser download is never used. Without Chromium they are skipped,
except in CI (`CI` set), where they must run."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 45_000  # how long a step may wait for the page on a busy two-core machine


def _skip_reason() -> str | None:
    if CHROMIUM.exists() or os.environ.get("CI"):
        return None
    return (
        f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
        "(CI installs it and runs these tests)"
    )


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    """A page in a fresh Chromium profile."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=WAIT_MS)
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 900},
        )
        context.set_default_timeout(WAIT_MS)
        opened = context.pages[0] if context.pages else await context.new_page()
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield opened
        finally:
            await context.close()
        assert not errors, f"the page's scripts failed: {errors}"
