"""An answer must state the kind of fact its question asks for: an amount for "how long / how much…?"."""

from __future__ import annotations

import pytest

from bot.answer.asked import states_what_is_asked
from bot.models import Question

STEPS = "1. Go to **Settings → Billing**. [1]\n2. Click **Request refund**. [1]"


@pytest.mark.parametrize(
    ("question", "answer", "stated"),
    [
        ("how long does a subscription refund take?", STEPS, False),
        ("how long does a subscription refund take?", "Refunds appear within 5–10 business days [1].", True),
        ("how much is the payroll add-on?", "Acme Payroll lets you pay employees [1].", False),
        ("I got locked out, how long until I can try again?", "Wait 15 minutes [1].", True),
        ("what's the limit on API calls?", "The API allows 600 requests per minute [1].", True),
        ("how do I request a refund?", STEPS, True),  # asks what to do, not an amount
        ("how do I count how many words my essay has?", "Choose Tools - Word Count [1].", True),
    ],
)
def test_an_amount_asked_for_must_be_stated(question, answer, stated):
    assert states_what_is_asked(question, answer) is stated


async def test_an_answer_without_the_amount_asked_for_is_not_posted(helpdesk_bot):
    answer = await helpdesk_bot.answer(Question("how much does resetting my password cost?"))
    assert answer.refused, answer.text
    answer = await helpdesk_bot.answer(Question("how long is the password reset link valid?"))
    assert not answer.refused and "60 minutes" in answer.text
