"""The chat page in a real headless browser: Debian's chromium driven by Playwright.

No browser is downloaded: Playwright is pointed at ``/usr/bin/chromium`` (``.ci/run`` installs
it). ``SPEECHQA_SCREENSHOT=path.png`` keeps a screenshot of the page answering a question.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import SEED_000, SEED_002
from tests.service.conftest import LiveServer

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = os.environ.get("SPEECHQA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("no chromium: install Debian's package (apt-get install chromium), see .ci/run")
    return path


@pytest.fixture(scope="module")
def page(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=_chromium(),
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1400, "height": 860},
            locale="zh-CN",
        )
        # The server wants an API key; the page keeps the one entered in localStorage.
        context.add_init_script(
            f"localStorage.setItem('speechqa.apiKey', {live_server.api_key!r});"
        )
        errors: list[str] = []
        outside: list[str] = []
        pg = context.new_page()
        pg.on("pageerror", lambda e: errors.append(str(e)))
        local = (live_server.url, "data:")
        pg.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
        pg.set_default_timeout(15_000)
        pg.goto(live_server.url + "/")
        yield pg
        assert errors == [], errors
        assert outside == [], f"the page fetched from elsewhere: {outside}"
        context.close()


def _send(page: Page, question: str) -> None:
    done = page.locator(".msg.assistant[data-done=true]").count()
    page.fill("#input", question)
    page.press("#input", "Enter")
    expect(page.locator(".msg.assistant[data-done=true]")).to_have_count(done + 1)


def test_ask_a_seed_question_and_see_the_citation_in_its_paragraph(page: Page) -> None:
    expect(page.locator("#docs li")).to_have_count(2)
    expect(page.locator("#docs")).to_contain_text("县委十二届三次全会")
    _send(page, "改革任务要制定“时间表”和什么？")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".body strong").first).to_contain_text("作战图")
    expect(answer.locator(".citations li")).to_have_count(1)
    expect(answer.locator(".citations")).to_contain_text("第 18 段")
    answer.locator(".body .cite").first.click()
    expect(page.locator("#source-body mark")).to_contain_text("制定改革任务“时间表”“作战图”")
    expect(page.locator("#source-body mark .answer")).to_contain_text("作战图")
    expect(page.locator("#source-meta")).to_contain_text("第 18 段")
    # The paragraph around the quote is shown too.
    expect(page.locator("#source-body .para")).to_contain_text("深化改革机制保障")
    shot = os.environ.get("SPEECHQA_SCREENSHOT")
    if shot:
        page.screenshot(path=shot)


def test_follow_up_uses_the_conversation(page: Page) -> None:
    _send(page, "第二部分讲了什么？")
    reply = page.locator(".msg.assistant").last
    expect(reply).to_contain_text("（一）着力加快招商选资上项目步伐")
    expect(reply.locator(".citations li")).not_to_have_count(0)
    expect(reply).not_to_contain_text("认清历史方位")  # the other speech's part two


def test_choose_the_speeches_to_ask(page: Page) -> None:
    page.click("#new-chat")
    page.uncheck(f"input[data-doc='{SEED_000}']")
    _send(page, "县委的总体思路叫什么？")
    reply = page.locator(".msg.assistant").last
    expect(reply).not_to_contain_text("1515")
    expect(reply).not_to_contain_text("县委十二届三次全会")  # nothing from the unticked speech
    page.check(f"input[data-doc='{SEED_000}']")


def test_browse_outline_and_section_summaries(page: Page) -> None:
    page.click(f".outline-btn[data-doc='{SEED_002}']")
    section = page.locator("#outline button[data-section='2']")
    expect(section).to_contain_text("第二，认清历史方位，把准前行方向")
    expect(page.locator("#outline button[data-section='2.3']")).to_be_visible()
    section.click()
    first = page.locator("#source-body .summary-list li").first
    expect(first).to_contain_text("第二，认清历史方位")
    first.click()
    expect(page.locator("#source-body mark")).to_contain_text("第二，认清历史方位")
    expect(page.locator("#source-meta")).to_contain_text("第 10 段")
