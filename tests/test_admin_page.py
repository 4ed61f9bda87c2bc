"""The admin page at /admin: token required, the seeded journal's figures, gaps, conversations, sync now."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from browser import after_navigation, headless_chromium
from fake_slack import FakeSlack, slack_settings
from journal_seed import earlier_today, seed

from connectors.server import HelpdeskServer

TOKEN = "admin-token-do-not-log-0123456789"
NOW = datetime.now(UTC)


@pytest.fixture
async def fake_slack():
    async with FakeSlack() as fake:
        yield fake


async def _seed_journal(journal) -> None:
    await seed(
        journal,
        "How do I start a refund?",
        NOW - timedelta(days=3),
        cited=("billing/refunds",),
        votes=(1,),
    )
    await seed(
        journal,
        "Where do I reset my password?",
        NOW - timedelta(days=2),
        cited=("account/password",),
        platform="discord",
    )
    await seed(journal, "Can I pay in bitcoin?", NOW - timedelta(days=1), refused=True)
    await seed(journal, "Do you take cryptocurrency?", earlier_today(NOW, 2), refused=True, votes=(-1,))
    await seed(
        journal, "An old question about invoices", NOW - timedelta(days=20), cited=("billing/refunds",)
    )


@pytest.fixture
async def admin(tmp_path, fake_slack, helpdesk_bot):
    """`helpdesk serve` with the admin page on, over a journal seeded with five questions."""
    await _seed_journal(helpdesk_bot.journal)
    settings = slack_settings(tmp_path, fake_slack, admin_token=TOKEN, sources=[str(tmp_path / "small-kb")])
    server = HelpdeskServer(settings, helpdesk_bot, helpdesk_bot.chain.retriever.knowledge_base)
    await server.start()
    yield f"http://127.0.0.1:{server.port}"
    await server.stop()


async def test_the_token_is_required_and_never_logged(admin, caplog):
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession(admin) as session:
        for path in ("/admin", "/admin/gaps", "/admin/gaps.csv", "/admin/conversations", "/admin/sources"):
            async with session.get(path) as response:
                assert response.status == 401 and 'name="token"' in await response.text()  # the login form
            async with session.get(path, headers={"Authorization": "Bearer wrong"}) as response:
                assert response.status == 401 and "token" not in response.headers.get("Set-Cookie", "")
        async with session.post("/admin/sync") as response:
            assert response.status == 401
        async with session.post("/admin/login", data={"token": "wrong"}) as response:
            assert response.status == 401 and "not right" in await response.text()
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with session.get("/admin/gaps.csv?since=7d", headers=bearer) as response:
            assert response.status == 200 and response.content_type == "text/csv"
            rows = list(csv.DictReader(io.StringIO(await response.text())))
        async with session.get("/admin/gaps?since=a-while", headers=bearer) as response:
            assert response.status == 400 and "such as 12h, 7d or 4w" in await response.text()
        async with session.post("/admin/login", data={"token": TOKEN}, allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    assert sum(int(row["size"]) for row in rows) == 2  # the two refusals (7 days)
    assert TOKEN not in caplog.text


async def test_without_an_admin_token_there_is_no_admin_page(tmp_path, fake_slack, helpdesk_bot):
    server = HelpdeskServer(slack_settings(tmp_path, fake_slack), helpdesk_bot)
    await server.start()
    try:
        async with (
            aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as session,
            session.get("/admin", headers={"Authorization": f"Bearer {TOKEN}"}) as response,
        ):
            assert response.status == 404
    finally:
        await server.stop()


async def test_the_pages_in_a_real_browser(admin, helpdesk_bot):
    from selenium.webdriver.common.by import By

    browser = headless_chromium()

    def visit() -> dict:
        seen = {}
        browser.get(admin + "/admin")
        seen["login_required"] = browser.find_elements(By.NAME, "token") != []
        browser.find_element(By.NAME, "token").send_keys(TOKEN)
        after_navigation(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click)
        week = browser.find_element(By.ID, "period-7d")
        seen["week"] = [
            week.find_element(By.CLASS_NAME, k).text for k in ("questions", "answered", "refused")
        ]
        seen["month_questions"] = browser.find_element(By.CSS_SELECTOR, "#period-30d .questions").text
        seen["bars"] = len(week.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar"))
        seen["bar_height"] = max(
            float(bar.get_attribute("height")) for bar in week.find_elements(By.CSS_SELECTOR, "rect.bar")
        )
        seen["chart_width"] = week.find_element(By.CSS_SELECTOR, "svg.chart").size["width"]

        browser.get(admin + "/admin/gaps?since=7d")
        gaps = browser.find_elements(By.CSS_SELECTOR, "details.gap")
        seen["gap_sizes"] = sorted(int(g.find_element(By.TAG_NAME, "b").text) for g in gaps)
        gaps[0].find_element(By.TAG_NAME, "summary").click()
        seen["expanded"] = gaps[0].find_element(By.TAG_NAME, "table").is_displayed()
        seen["csv_link"] = browser.find_element(By.ID, "csv-export").get_attribute("href")

        browser.get(admin + "/admin/conversations")
        seen["newest"] = browser.find_elements(By.CSS_SELECTOR, ".conversation .question")[0].text
        box = browser.find_element(By.NAME, "q")
        box.send_keys("password")
        after_navigation(browser, box.submit)
        seen["found"] = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".conversation .question")]
        seen["found_meta"] = browser.find_element(By.CSS_SELECTOR, ".conversation .muted").text

        browser.get(admin + "/admin/sources")
        seen["version"] = browser.find_element(By.ID, "index-version").text
        seen["health"] = browser.find_element(By.ID, "index-health").text
        seen["syncs_before"] = len(browser.find_elements(By.CSS_SELECTOR, "#syncs tr.sync"))
        after_navigation(browser, browser.find_element(By.ID, "sync-now").click)
        seen["sync_status"] = browser.find_element(By.ID, "sync-status").text
        return seen

    try:
        seen = await asyncio.to_thread(visit)
        kb = helpdesk_bot.chain.retriever.knowledge_base
        for _ in range(200):
            if len(await kb.sync_log.entries()) == 2:
                break
            await asyncio.sleep(0.05)

        def reload_sources() -> int:
            browser.get(admin + "/admin/sources")
            return len(browser.find_elements(By.CSS_SELECTOR, "#syncs tr.sync"))

        syncs_after = await asyncio.to_thread(reload_sources)
    finally:
        await asyncio.to_thread(browser.quit)

    assert seen["login_required"]
    assert seen["week"] == ["4", "2", "2"] and seen["month_questions"] == "5"
    assert seen["bars"] == 4 and seen["bar_height"] > 10 and seen["chart_width"] > 300  # drawn, not empty
    assert seen["gap_sizes"] in ([2], [1, 1]) and seen["expanded"]
    assert seen["csv_link"].endswith("/admin/gaps.csv?since=7d")
    assert seen["newest"] == "Do you take cryptocurrency?"
    assert seen["found"] == ["Where do I reset my password?"] and "discord" in seen["found_meta"]
    assert seen["version"].startswith("v") and seen["health"].startswith("ok")
    assert seen["syncs_before"] == 1 and "sync is running" in seen["sync_status"]
    assert syncs_after == 2
