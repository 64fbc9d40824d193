"""The sandbox page in a real browser, as a new user tries the bot: a mention streams in, an
approval form is filled and approved (after someone who may not answer it tried), a 👎 opens a
modal, a form survives the service being killed, and your own agent answers the same page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from orchestrator.sandbox.agent_server import ScriptedAgent
from tests.sandbox_process import RunningSandbox, sandbox_running

ANSWER_END = "Nothing here calls a real model."


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    async with sandbox_running(tmp_path) as running:
        yield running


async def mention(page: Page, channel: str, text: str) -> Locator:
    """Write "@Orchestrator text" in the channel and open the thread the bot answers in."""
    box = page.get_by_label(f"Message #{channel}")
    await box.fill(f"@Orchestrator {text}")
    await box.press("Enter")
    message = page.get_by_role("list", name="Channel messages").get_by_role("listitem")
    await message.filter(has_text=text).get_by_role("button", name=re.compile(r"repl")).click()
    return page.get_by_role("region", name="Thread")


def form_in(thread: Locator) -> Locator:
    return thread.get_by_role("listitem").filter(
        has=thread.page.get_by_role("button", name="Approve", exact=True)
    )


async def test_a_mention_streams_in_and_an_approved_form_continues(
    page: Page, sandbox: RunningSandbox
) -> None:
    await page.goto(sandbox.url)
    thread = await mention(page, "general", "hello there")
    await expect(thread.get_by_role("button", name="■ Stop")).to_be_visible()  # streaming
    await expect(thread.get_by_text(ANSWER_END)).to_be_visible()
    await expect(thread.get_by_role("button", name="■ Stop")).to_have_count(0)
    await expect(thread.get_by_role("button", name="↻ Regenerate")).to_be_visible()

    reply = thread.get_by_label("Reply…")
    await reply.fill("Please scale web to 5 replicas, I approve.")
    await reply.press("Enter")
    form = form_in(thread)
    await expect(form.get_by_text("Approval needed")).to_be_visible()

    await page.get_by_label("Writing as").select_option(label="Carol Diaz — not an approver")
    await form.get_by_role("button", name="Approve", exact=True).click()
    await expect(thread.get_by_text("can answer this request")).to_be_visible()
    await expect(thread.get_by_text("Only visible to you")).to_be_visible()

    await page.get_by_label("Writing as").select_option(label="Alice Park — asks the bot")
    await expect(thread.get_by_text("can answer this request")).to_have_count(0)
    await form.get_by_label("Replicas").select_option("8")
    await form.get_by_label("Comment").fill("go ahead")
    await form.get_by_role("button", name="Approve", exact=True).click()
    await expect(thread.get_by_text("Approved by @Alice Park")).to_be_visible()
    continuation = 'Done. Decision received: {"replicas": 8, "comment": "go ahead"}.'
    await expect(thread.get_by_text(continuation)).to_be_visible()

    inspector = page.get_by_role("complementary", name="Inspector")
    await expect(inspector.locator(".facts .state-badge")).to_have_text("done")
    await expect(inspector.get_by_text("approval_refused")).to_be_visible()
    await inspector.get_by_role("tab", name="AG-UI events").click()
    await expect(inspector.get_by_text("← RUN_FINISHED").last).to_be_visible()
    await inspector.get_by_role("tab", name="Slack calls").click()
    await expect(inspector.get_by_text("chat.startStream").first).to_be_visible()

    answer = thread.get_by_role("listitem").filter(has_text="Decision received")
    await answer.get_by_role("button", name="👎").click()
    modal = page.get_by_role("dialog", name="Feedback")
    await modal.get_by_text("Too long").click()
    await modal.get_by_label("Comment").fill("shorter, please")
    await modal.get_by_role("button", name="Send").click()
    await expect(modal).to_have_count(0)
    await expect(thread.get_by_text("Feedback recorded: 👍 0 · 👎 1")).to_be_visible()


async def test_a_form_pending_survives_a_restart_of_the_service(
    page: Page, sandbox: RunningSandbox
) -> None:
    await page.goto(sandbox.url)
    thread = await mention(page, "general", "deploy web to production")
    form = form_in(thread)
    await expect(form.get_by_text("Approval needed")).to_be_visible()

    status = page.get_by_text(re.compile(r"^Service running \(pid \d+\)$"))
    before = await status.inner_text()
    assert before == f"Service running (pid {sandbox.service_pid})"
    await page.get_by_role("button", name="↻ Restart the service").click()
    await expect(page.get_by_text(before, exact=True)).to_have_count(0)
    await expect(status).to_be_visible()  # running again, with another pid

    await form.get_by_label("Replicas").select_option("3")
    await form.get_by_role("button", name="Approve", exact=True).click()
    await expect(thread.get_by_text('Done. Decision received: {"replicas": 3}.')).to_be_visible()
    inspector = page.get_by_role("complementary", name="Inspector")
    await expect(inspector.get_by_text("approval_submitted")).to_be_visible()


async def test_your_own_agent_answers_in_the_same_page(page: Page, tmp_path: Path) -> None:
    yours = ScriptedAgent(name="your-agent")
    await yours.start()
    try:
        async with sandbox_running(tmp_path, AGENT_URL=yours.url("auto")) as sandbox:
            await page.goto(sandbox.url)
            await expect(page.get_by_text(f"Answered by {yours.url('auto')}").first).to_be_visible()
            thread = await mention(page, "general", "hello from the sandbox")
            await expect(thread.get_by_text("Hello from your-agent!")).to_be_visible()

            reply = thread.get_by_label("Reply…")
            await reply.fill("Please scale web to 5 replicas.")
            await reply.press("Enter")
            form = form_in(thread)
            await form.get_by_role("button", name="Approve", exact=True).click()
            await expect(thread.get_by_text('Decision received: {"replicas": 5}')).to_be_visible()
            inspector = page.get_by_role("complementary", name="Inspector")
            await inspector.get_by_role("tab", name="AG-UI events").click()
            await expect(inspector.get_by_text("does not see your agent's events")).to_be_visible()
            await expect(inspector.get_by_text("transition").first).to_be_visible()
    finally:
        await yours.stop()
    assert [r.scenario for r in yours.requests] == ["auto", "auto", "auto"]
