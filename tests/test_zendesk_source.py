"""Zendesk Help Center sources synced from a fake Help Center API with the real httpx client."""

from __future__ import annotations

import logging
import time

import pytest
from fake_zendesk import API_TOKEN, EMAIL, FakeZendesk

from bot.runtime import open_sources
from bot.settings import Settings

SPEC = "zendesk://acme?locale=en-us"
ARTICLES = "/api/v2/help_center/en-us/articles.json"


def _settings(zendesk: FakeZendesk, **overrides) -> Settings:
    values = {"zendesk_url": zendesk.url, "zendesk_email": EMAIL, "zendesk_api_token": API_TOKEN}
    return Settings(**{**values, **overrides})


async def _sync(kb, settings: Settings, spec: str = SPEC):
    return await kb.sync(open_sources(settings, [spec]))


def _ids(keys: list[str]) -> list[str]:
    return sorted(key.rsplit("/", 1)[-1] for key in keys)


async def test_first_sync_indexes_published_articles_with_their_place_and_link(make_kb):
    async with FakeZendesk() as zendesk:
        kb = make_kb()
        report = await _sync(kb, _settings(zendesk))
        assert _ids(report.added) == ["1001", "1002", "2001", "2101"]  # the draft is not published
        assert report.skipped == []
        assert len(zendesk.calls_to(ARTICLES)) == 3  # five articles, two per page: every page followed
        assert all(call.authorization.startswith("Basic ") for call in zendesk.calls)
    version = await kb.current()
    chunks = {chunk.doc_id: chunk for chunk in version.chunks if chunk.kind == "passage"}
    saml = chunks["articles/2101"]
    assert saml.title == "Setting up SAML"
    assert saml.source == "https://acme.zendesk.com/hc/en-us/articles/2101"
    assert saml.headings == ["Account", "Sign-in", "Single sign-on"]
    assert saml.updated_at.startswith("2026-03-01")
    card = [c for c in version.chunks if c.doc_id == "articles/1002" and c.kind == "passage"]
    assert any(c.headings == ["Billing", "Payments", "Steps"] and "Update card" in c.text for c in card)
    assert any("Visa" in c.text for c in card)  # the table row


async def test_resync_embeds_nothing_then_exactly_the_edited_article_and_drops_the_deleted(
    make_kb, fake_embeddings
):
    async with FakeZendesk() as zendesk:
        kb = make_kb()
        settings = _settings(zendesk)
        await _sync(kb, settings)
        before = fake_embeddings.embedded
        again = await _sync(kb, settings)
        assert (again.unchanged, again.chunks_embedded, fake_embeddings.embedded) == (4, 0, before)
        assert len(zendesk.calls_to(ARTICLES)) == 6  # one more listing, nothing else

        zendesk.edit(2001, "<p>Use the Forgot password link; the email arrives within 5 minutes.</p>")
        edited = await _sync(kb, settings)
        assert _ids(edited.updated) == ["2001"] and edited.added == edited.deleted == []
        assert fake_embeddings.embedded - before == edited.chunks_embedded == 2  # its title and one passage

        del zendesk.articles[1001]
        zendesk.articles[1002]["draft"] = True  # unpublished
        zendesk.sections[210]["name"] = (
            "SSO"  # renamed: its articles' place changes, so they are embedded again
        )
        changed = await _sync(kb, settings)
        assert _ids(changed.deleted) == ["1001", "1002"]
        assert _ids(changed.updated) == ["2101"]
    hits = await kb.search("SAML metadata", k=1, mode="bm25")
    assert hits[0].chunk.headings == ["Account", "Sign-in", "SSO"]


async def test_rate_limits_are_waited_out_as_asked(make_kb):
    async with FakeZendesk() as zendesk:
        zendesk.busy[ARTICLES] = ["1"]
        report = await _sync(make_kb(), _settings(zendesk))
        assert len(report.added) == 4
        refused, retried = [c for c in zendesk.calls_to(ARTICLES) if "page[after]" not in c.query]
        assert refused.status == 429 and retried.at - refused.at >= 1.0


async def test_a_wait_over_the_limit_keeps_the_indexed_articles(make_kb):
    async with FakeZendesk() as zendesk:
        kb = make_kb()
        await _sync(kb, _settings(zendesk))
        zendesk.busy["/api/v2/help_center/en-us/sections.json"] = ["3600"]
        started = time.monotonic()
        report = await _sync(kb, _settings(zendesk))
        assert time.monotonic() - started < 5
        assert report.deleted == [] and report.unchanged == 4
        assert "asks to wait 3600 s" in report.skipped[0].reason


async def test_rejected_credentials_keep_the_articles_and_name_the_settings(make_kb, caplog):
    caplog.set_level(logging.DEBUG)
    async with FakeZendesk() as zendesk:
        kb = make_kb()
        await _sync(kb, _settings(zendesk))
        zendesk.reject_credentials = True
        report = await _sync(kb, _settings(zendesk))
    assert report.deleted == [] and report.unchanged == 4
    [skipped] = report.skipped
    assert skipped.where == SPEC
    assert "HTTP 401" in skipped.reason and "HELPDESK_ZENDESK_API_TOKEN" in skipped.reason
    assert API_TOKEN not in skipped.reason and API_TOKEN not in caplog.text


async def test_a_public_help_center_needs_no_credentials(make_kb):
    async with FakeZendesk(public=True) as zendesk:
        report = await _sync(make_kb(), Settings(zendesk_url=zendesk.url), "zendesk://acme")
        assert len(report.added) == 4
        assert all(call.authorization == "" for call in zendesk.calls)
        assert zendesk.calls_to("/api/v2/help_center/articles.json")


def test_specs_and_half_set_credentials_are_refused_with_what_to_write():
    with pytest.raises(ValueError, match="zendesk://SUBDOMAIN"):
        open_sources(Settings(), ["zendesk://"])
    with pytest.raises(ValueError, match="HELPDESK_ZENDESK_EMAIL and HELPDESK_ZENDESK_API_TOKEN"):
        open_sources(Settings(zendesk_api_token="x"), [SPEC])
