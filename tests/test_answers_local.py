"""The default answer path end to end: real embeddings, the packaged answer model and the brand voice."""

from __future__ import annotations

import json

import pytest
import pytest_asyncio
from conftest import REPO, SAMPLE_KB, TEST_MODEL_CACHE

from bot.answer.scoring import verdict
from bot.models import Question, Turn
from bot.runtime import build_bot, make_chunker, open_sources
from bot.settings import Settings
from knowledge.base import KnowledgeBase

pytestmark = pytest.mark.slow

QUESTIONS = {
    json.loads(line)["id"]: json.loads(line)
    for line in (REPO / "examples" / "acme-kb-questions.jsonl").read_text().splitlines()
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def default_bot(tmp_path_factory, real_embeddings):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("local"), sources=[str(SAMPLE_KB)], model_cache_dir=TEST_MODEL_CACHE
    )
    kb = KnowledgeBase(settings.data_dir, real_embeddings, make_chunker(settings), "all-MiniLM-L6-v2")
    await kb.sync(open_sources(settings))
    bot = build_bot(settings, kb)
    await bot.warm_up()
    return bot


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "question_id",
    [
        "i01",
        "i02",
        "i03",
        "i04",
        "i05",
    ],
)
async def test_the_questions_new_users_asked_are_answered_right_or_refused(default_bot, question_id):
    question = QUESTIONS[question_id]
    answer = await default_bot.answer(Question(question["question"]))
    assert verdict(question, answer.text, answer.refused) in ("correct", "missing"), answer.text
    if not answer.refused:
        assert answer.citations and answer.citations[0].doc_id in question["gold_doc_ids"]
        assert answer.generator == "local" and answer.answerability is not None


@pytest.mark.asyncio(loop_scope="module")
async def test_an_answer_quotes_its_source_and_leads_with_the_steps(default_bot):
    answer = await default_bot.answer(Question("how do I reset my password?"))
    assert not answer.refused and answer.citations[0].doc_id == "account/reset-password"
    assert set(answer.timings_ms) >= {"retrieve", "decide", "generate", "total"}
    assert len(answer.text.split()) <= 220


@pytest.mark.asyncio(loop_scope="module")
async def test_a_new_topic_in_a_conversation_is_not_answered_from_the_previous_article(default_bot):
    earlier = await default_bot.answer(Question(QUESTIONS["i05"]["question"]))
    history = (Turn("user", QUESTIONS["i05"]["question"]), Turn("assistant", earlier.text))
    answer = await default_bot.answer(Question(QUESTIONS["i02"]["question"], history=history))
    assert answer.standalone_query == QUESTIONS["i02"]["question"]
    assert answer.refused, answer.text


@pytest.mark.asyncio(loop_scope="module")
async def test_a_question_is_judged_the_same_whatever_was_asked_before_it(default_bot):
    question = Question("is there a limit on API calls?")
    first = await default_bot.answer(question)
    await default_bot.answer(Question("how do I reset my password?"))
    after_another = await default_bot.answer(question)
    asked_again = await default_bot.answer(question)
    assert first.answerability is not None
    assert first.answerability == after_another.answerability == asked_again.answerability
    assert first.text == after_another.text == asked_again.text
