"""Confluence Cloud sources synced from a fake REST API v2 with the real httpx client."""

from __future__ import annotations

import pytest
from fake_confluence import API_TOKEN, EMAIL, SITE, FakeConfluence

from bot.runtime import open_sources
from bot.settings import Settings

SPEC = f"confluence://{SITE}/HELP"
PAGES = "/wiki/api/v2/spaces/9001/pages"


def _settings(confluence: FakeConfluence) -> Settings:
    return Settings(confluence_url=confluence.url, confluence_email=EMAIL, confluence_api_token=API_TOKEN)


async def _sync(kb, confluence: FakeConfluence, spec: str = SPEC):
    return await kb.sync(open_sources(_settings(confluence), [spec]))


def _ids(keys: list[str]) -> list[str]:
    return sorted(key.rsplit("/", 1)[-1] for key in keys)


async def test_first_sync_indexes_current_pages_under_their_ancestors(make_kb):
    async with FakeConfluence() as confluence:
        kb = make_kb()
        report = await _sync(kb, confluence)
        assert _ids(report.added) == ["1", "2", "3", "4", "5"] and report.skipped == []
        listings = confluence.calls_to(PAGES)
        assert len(listings) == 3 and all(c.query["body-format"] == "storage" for c in listings)
        assert all(c.query["status"] == "current" for c in listings)
    version = await kb.current()
    install = [c for c in version.chunks if c.doc_id == "pages/3" and c.kind == "passage"]
    assert install[0].title == "Installing the agent"
    assert install[0].source == f"https://{SITE}/wiki/spaces/HELP/pages/3/Installing+the+agent"
    assert install[0].headings[:2] == ["Home", "Agent"]
    text = "\n".join(c.text for c in install)
    assert "Warning:" in text and "Stop the old agent" in text  # the panel kept as text
    assert "pip install acme-agent && acme-agent --start" in text  # the code macro
    assert "systemd" in text and "Python 3.11" in text  # table and list
    assert any(c.headings == ["Home", "Agent", "Install"] for c in install)
    faq = next(c for c in version.chunks if c.doc_id == "pages/5" and c.kind == "passage")
    assert faq.headings == ["Home"] and "50 MB" in faq.text


async def test_resync_edit_archive_and_move_out_of_the_space(make_kb, fake_embeddings):
    async with FakeConfluence() as confluence:
        kb = make_kb()
        await _sync(kb, confluence)
        before = fake_embeddings.embedded
        again = await _sync(kb, confluence)
        assert (again.unchanged, again.chunks_embedded, fake_embeddings.embedded) == (5, 0, before)

        confluence.edit("4", "<p>Run acme-agent --uninstall, then delete /etc/acme.</p>")
        edited = await _sync(kb, confluence)
        assert _ids(edited.updated) == ["4"] and edited.chunks_embedded == 2

        confluence.pages["5"]["status"] = "archived"
        confluence.pages["4"]["spaceId"] = confluence.spaces["OPS"]
        gone = await _sync(kb, confluence)
        assert _ids(gone.deleted) == ["4", "5"] and gone.updated == []


async def test_rate_limit_then_rejected_credentials_keep_the_pages(make_kb):
    async with FakeConfluence() as confluence:
        confluence.busy[PAGES] = ["1"]
        kb = make_kb()
        first = await _sync(kb, confluence)
        assert len(first.added) == 5 and confluence.calls_to(PAGES)[0].status == 429
        confluence.reject_credentials = True
        report = await _sync(kb, confluence)
    assert report.deleted == [] and report.unchanged == 5
    assert "HELPDESK_CONFLUENCE_EMAIL and HELPDESK_CONFLUENCE_API_TOKEN" in report.skipped[0].reason
    assert API_TOKEN not in report.skipped[0].reason


async def test_an_unknown_space_is_reported_and_nothing_is_deleted(make_kb):
    async with FakeConfluence() as confluence:
        report = await _sync(make_kb(), confluence, f"confluence://{SITE}/NOPE")
    assert report.added == [] and "no space NOPE" in report.skipped[0].reason


def test_a_spec_without_a_space_key_says_what_to_write():
    with pytest.raises(ValueError, match="confluence://SITE/SPACEKEY"):
        open_sources(Settings(), [f"confluence://{SITE}"])
