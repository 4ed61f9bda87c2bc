"""The answer engine over a small knowledge base: cited extractive answers, refusals, journal, feedback."""

from __future__ import annotations

import pytest
from conftest import SMALL_KB

from bot.followups import candidate_queries
from bot.journal import UnknownAnswer
from bot.models import Question, Turn


async def test_answer_cites_the_source_it_quotes(helpdesk_bot):
    answer = await helpdesk_bot.answer(Question("How do I start a refund?", asker="U1"))
    assert not answer.refused
    assert answer.citations[0].doc_id == "billing/refunds"
    assert answer.text.endswith(" [1].")
    assert answer.text.replace(" [1].", ".") in SMALL_KB["billing/refunds.md"]  # quoted, not invented
    assert answer.citations[0].snippet == answer.text.replace(" [1].", ".")  # the sentence it quotes
    assert answer.citations[0].title == "Refunds"
    assert answer.timings_ms["total"] >= answer.timings_ms["retrieve"] > 0
    assert (await helpdesk_bot.journal.answers())[-1]["id"] == answer.id


async def test_engine_never_emits_pinging_text(helpdesk_bot):
    answer = await helpdesk_bot.answer(Question("outage notices status page updates"))
    assert "@everyone" not in answer.text and "<!channel>" not in answer.text and "<@U123>" not in answer.text


async def test_follow_up_uses_the_conversation(helpdesk_bot):
    history = (Turn("user", "How do I reset my password?"), Turn("assistant", "Click Forgot password."))
    answer = await helpdesk_bot.answer(
        Question("how long is it valid?", history=history)
    )  # "it" = the reset link
    assert answer.standalone_query.startswith("How do I reset my password?")
    assert answer.citations[0].doc_id == "account/password"


@pytest.mark.parametrize(
    ("follow_up", "queries"),
    [
        ("And for annual plans?", ["How long do refunds take? And for annual plans?"]),
        ("what about the Growth plan?", ["How long do refunds take? what about the Growth plan?"]),
        (
            "is it the same for annual plans?",
            [
                "is it the same for annual plans?",
                "How long do refunds take? is it the same for annual plans?",
            ],
        ),
        ("how do I add a logo?", ["how do I add a logo?"]),
        (
            "when does the link expire?",
            ["when does the link expire?", "How long do refunds take? when does the link expire?"],
        ),
        ("can I pay with paypal?", ["can I pay with paypal?"]),
    ],
)
def test_a_continuation_is_searched_with_the_question_it_continues(follow_up, queries):
    history = (Turn("user", "How long do refunds take?"), Turn("assistant", "5–10 business days [1]."))
    assert candidate_queries(Question(follow_up, history=history)) == queries
    assert candidate_queries(Question(follow_up)) == [follow_up]


async def test_feedback_is_stored_and_validated(helpdesk_bot):
    answer = await helpdesk_bot.answer(Question("refund annual plan"))
    await helpdesk_bot.feedback(answer.id, "up", "clear answer", voter="U9")
    await helpdesk_bot.feedback(answer.id, -1, voter="U8")
    assert (await helpdesk_bot.journal.feedback_for(answer.id)) == [
        (1, "clear answer", "U9"),
        (-1, None, "U8"),
    ]
    with pytest.raises(ValueError, match="Unknown vote"):
        await helpdesk_bot.feedback(answer.id, "meh")
    with pytest.raises(UnknownAnswer):
        await helpdesk_bot.feedback("nope", "up")


async def test_empty_question_is_rejected(helpdesk_bot):
    with pytest.raises(ValueError, match="empty"):
        await helpdesk_bot.answer(Question("   "))
