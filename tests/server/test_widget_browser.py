"""The web widget served at /widget/, end to end in headless Chromium against the real server:
a customer's knowledge question streams back with a citation chip, asking for a person hands
the conversation over, and the agent-assist panel shows the handoff summary."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing under CI: .ci/run should install chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI requires it")
    return CHROMIUM


@pytest.fixture
def page(chromium_path: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium_path),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


def keep_screenshot(page: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Save the page to tmp_path (and $CXBOT_ARTIFACTS when set); print where it is."""
    shot = tmp_path / "widget.png"
    page.screenshot(path=str(shot), full_page=True)  # type: ignore[attr-defined]
    kept = [shot]
    artifacts = os.environ.get("CXBOT_ARTIFACTS")
    if artifacts:
        target = Path(artifacts)
        target.mkdir(parents=True, exist_ok=True)
        kept.append(Path(shutil.copyfile(shot, target / "widget.png")))
    with capsys.disabled():
        print("\nwidget screenshot: " + ", ".join(str(p) for p in kept))
    return shot


def test_customer_chat_and_agent_assist(
    live_server: Any, page: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    fragment = f"customer_key={live_server.customer_key}&agent_key={live_server.agent_key}"
    page.goto(f"{live_server.url}/widget/#{fragment}")
    expect(page.get_by_role("heading", name="Agent assist")).to_be_visible()
    # the keys are read, then dropped from the address bar
    assert live_server.customer_key not in page.url

    chat = page.get_by_label("Your message")
    chat.fill("How do I report a stolen card?")
    page.get_by_role("button", name="Send").click()

    reply = page.locator("#messages li.msg.bot").first
    chip = reply.locator(".citations .chip").first
    expect(chip).to_be_visible(timeout=60_000)
    assert "stolen" in reply.locator(".text").inner_text().lower()
    assert chip.inner_text().startswith("[1] ")
    assert "stolen" in chip.inner_text().lower()
    assert reply.get_attribute("data-route") == "rag"

    # the agent panel follows the conversation: suggested reply with a "use" button, articles
    use = page.get_by_role("button", name="Use suggested reply 1")
    expect(use).to_be_visible(timeout=60_000)
    use.click()
    suggested = page.locator("#suggestions li.suggestion .text").first.inner_text()
    expect(page.get_by_label("Your reply to the customer")).to_have_value(suggested)
    expect(page.locator("#articles li.article").first).to_be_visible()

    chat.fill("I want to talk to a person")
    page.get_by_role("button", name="Send").click()

    expect(page.locator("#handoff-banner")).to_be_visible(timeout=60_000)
    expect(page.locator("#handoff-banner")).to_contain_text("handed over to a colleague")
    summary = page.locator("#summary")
    expect(summary.locator('dd[data-field="reason"]')).to_have_text(
        "customer_request", timeout=60_000
    )
    expect(summary).to_have_attribute("data-handoff", "true")
    expect(summary.locator('dd[data-field="queue"]')).not_to_be_empty()
    # two customer messages and two replies, nothing marked as an error
    expect(page.locator("#messages li.msg.user")).to_have_count(2)
    expect(page.locator("#messages li.msg.bot")).to_have_count(2)
    expect(page.locator("#messages li.msg.error")).to_have_count(0)

    shot = keep_screenshot(page, tmp_path, capsys)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not errors, errors


def test_message_text_is_never_markup(live_server: Any, page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    fragment = f"customer_key={live_server.customer_key}&agent_key={live_server.agent_key}"
    page.goto(f"{live_server.url}/widget/#{fragment}")
    text = '<img src=x onerror="alert(1)"> what are your opening hours?'
    page.get_by_label("Your message").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#messages li.msg.bot .text").first).not_to_be_empty(timeout=60_000)
    expect(page.locator("#messages li.msg.user .text").first).to_have_text(text)
    assert page.locator("#messages img").count() == 0
    assert not dialogs
