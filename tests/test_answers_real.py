"""The quoting writer end to end with the real packaged embedding model on the sample knowledge base."""

from __future__ import annotations

import pytest
import pytest_asyncio
from conftest import SAMPLE_KB

from bot.runtime import build_bot, open_sources
from bot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sample_bot(tmp_path_factory, real_embeddings):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("real"),
        sources=[str(SAMPLE_KB)],
        generator="extractive",
        tone_enabled=False,
    )
    kb = KnowledgeBase(settings.data_dir, real_embeddings, Chunker(), "all-MiniLM-L6-v2")
    await kb.sync(open_sources(settings))
    return build_bot(settings, kb)


@pytest.mark.asyncio(loop_scope="module")
async def test_answers_with_the_right_source(sample_bot):
    from bot.models import Question

    answer = await sample_bot.answer(Question("how long until a refund shows up on my card?"))
    assert not answer.refused
    assert answer.citations[0].doc_id == "billing/refund-policy"
    assert "5–10 business days" in answer.text


@pytest.mark.asyncio(loop_scope="module")
async def test_a_price_question_quotes_both_price_rows_of_the_plans_table(sample_bot):
    from bot.models import Question

    answer = await sample_bot.answer(Question("how much does the growth plan cost?"))
    assert not answer.refused and [c.doc_id for c in answer.citations] == ["billing/plans-and-pricing"]
    assert "Growth: $29/month" in answer.text and "Growth: $290/year" in answer.text


@pytest.mark.asyncio(loop_scope="module")
async def test_refuses_what_the_knowledge_base_does_not_cover(sample_bot):
    from bot.models import Question

    answer = await sample_bot.answer(Question("Does the Acme office have parking for visitors?"))
    assert answer.refused and answer.text.startswith("I couldn't find")
    assert answer.citations  # the closest sources are still offered
