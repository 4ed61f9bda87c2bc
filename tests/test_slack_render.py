"""Slack rendering and event parsing as pure functions: escaping, links, limits, questions, thread history."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot.models import Answer, Citation, Turn
from connectors.slack_events import clean_text, history_from_replies, reply_to, to_question
from connectors.slack_render import (
    SECTION_LIMIT,
    acknowledge_feedback,
    answer_metadata,
    citation_line,
    escape,
    link,
    render,
    render_progress,
    reply_metadata,
    split_text,
)

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def _citation(
    n=1, title="Refunds", source="https://help.acme.example/refunds", updated_at="2025-03-07T09:00:00"
):
    return Citation(n, "billing/refunds", title, source, "", "snippet", updated_at)


def _texts(blocks: list[dict]) -> list[str]:
    found = []
    for block in blocks:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [
            element.get("text", "") for element in block.get("elements", []) if element["type"] == "mrkdwn"
        ]
    return found


def test_escape_makes_pings_and_links_inert():
    text = escape("Tom & Jerry <!channel> <@U123> <http://evil.example|click here> @everyone @here")
    assert "<" not in text and ">" not in text
    assert text.startswith(
        "Tom &amp; Jerry &lt;!channel&gt; &lt;@U123&gt; &lt;http://evil.example|click here&gt;"
    )
    assert "@everyone" not in text and "@here" not in text


def test_links_cannot_break_out_of_the_link_syntax():
    assert link("https://acme.example/a?x=1&y=2", "Plans <& prices>") == (
        "<https://acme.example/a?x=1&amp;y=2|Plans &lt;&amp; prices&gt;>"
    )
    assert link("https://acme.example/a|b", "T") == "<https://acme.example/a%7Cb|T>"


def test_citation_lines_link_urls_and_show_paths_with_their_age():
    assert (
        citation_line(_citation(), NOW)
        == "[1] <https://help.acme.example/refunds|Refunds> · _updated 3 days ago_"
    )
    local = _citation(2, "Reset <password>", "/kb/account/reset.md", updated_at=None)
    assert citation_line(local, NOW) == "[2] Reset &lt;password&gt; — `/kb/account/reset.md`"
    assert "updated today" in citation_line(_citation(updated_at="2025-03-10T08:00:00+00:00"), NOW)


def test_answer_has_sections_sources_and_feedback_buttons():
    answer = Answer("Refunds take 14 days [1].", [_citation()], refused=False, confidence=0.9, id="a1")
    message = render(answer, NOW)
    assert message.text == "Refunds take 14 days [1]."
    assert [b["type"] for b in message.blocks] == ["section", "section", "actions"]
    assert message.blocks[1]["text"]["text"].startswith(
        "*Sources*\n[1] <https://help.acme.example/refunds|Refunds>"
    )
    assert all(b["text"]["verbatim"] for b in message.blocks[:2])
    buttons = message.blocks[2]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [("feedback_up", "a1"), ("feedback_down", "a1")]


def test_refusal_says_so_and_lists_the_closest_sources():
    answer = Answer("I couldn't find an answer to this in the knowledge base.", [_citation()], True, 0.1)
    texts = _texts(render(answer, NOW).blocks)
    assert texts[0].startswith("I couldn't find an answer")
    assert texts[1].startswith("*Closest sources*\n[1] <https://help.acme.example/refunds|Refunds>")


def test_long_answers_are_split_within_slacks_limits():
    paragraph = "Invoices & payments are explained here. " * 60
    answer = Answer("\n\n".join([paragraph] * 12), [], False, 0.9)
    message = render(answer)
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert all(len(text) <= SECTION_LIMIT for text in sections)
    assert len(sections) == 8 and sections[-1].endswith("…")
    assert all(not re.search(r"&[a-z]{0,3}$", text.removesuffix("…")) for text in sections)  # no cut escapes
    assert len(message.text) <= 3000
    assert split_text("word " * 1000, 100)[0] == ("word " * 20).strip()
    assert all(len(piece) <= 100 for piece in split_text("x" * 450, 100))


def test_progress_shows_the_streamed_text_escaped():
    message = render_progress("Refunds <!here> take")
    assert message.blocks[0]["text"]["text"] == "Refunds &lt;!here&gt; take …"
    assert len(render_progress("y" * 10_000).blocks[0]["text"]["text"]) <= SECTION_LIMIT


def test_feedback_acknowledgement_replaces_only_the_buttons():
    blocks = render(Answer("Yes [1].", [_citation()], False, 0.9, id="a1"), NOW).blocks
    thanked = acknowledge_feedback(blocks, "down")
    assert thanked[:2] == blocks[:2]
    assert thanked[2]["type"] == "context" and "Thanks for the feedback" in thanked[2]["elements"][0]["text"]


def test_questions_drop_the_bots_mention_and_slack_markup():
    event = {
        "type": "app_mention",
        "user": "U1",
        "channel": "C1",
        "ts": "1700000002.000100",
        "thread_ts": "1700000001.000100",
        "text": "<@UBOT> how do I pay &amp; refund via <https://acme.example|the portal> for <@U2|ana> &lt;3",
    }
    question = to_question(event, "UBOT")
    assert question.text == "how do I pay & refund via the portal for @ana <3"
    assert (question.asker, question.channel) == ("U1", "C1")
    assert question.conversation_id == "C1:1700000001.000100"
    assert clean_text("<!here> see <#C9|general>", "UBOT") == "@here see #general"


def test_thread_history_keeps_people_and_answers_and_skips_other_bots():
    replies = [
        {"ts": "1.000001", "user": "U1", "text": "<@UBOT> How do I reset my password?"},
        {"ts": "1.000002", "user": "UBOT", "bot_id": "B1", "text": "Looking that up…"},
        {
            "ts": "1.000003",
            "user": "UBOT",
            "bot_id": "B1",
            "text": "Click &lt;Forgot&gt; [1].",
            "metadata": answer_metadata("a"),
        },
        {"ts": "1.000004", "user": "UOTHER", "bot_id": "B2", "text": "I am another bot"},
        {"ts": "1.000005", "user": "U2", "subtype": "channel_join", "text": "joined"},
        {"ts": "1.000006", "user": "U1", "text": "how long is it valid?"},
        {"ts": "1.000007", "user": "U1", "text": "later message"},
    ]
    assert history_from_replies(replies, "UBOT", before_ts="1.000006") == (
        Turn("user", "How do I reset my password?"),
        Turn("assistant", "Click <Forgot> [1]."),
    )


def test_the_reply_to_a_question_is_told_apart_from_the_other_replies_of_its_thread():
    def bot(ts, metadata, user="UBOT"):
        return {"ts": ts, "user": user, "text": "…", "metadata": metadata}

    first, second = "1.000001", "1.000003"
    thread = [
        {"ts": first, "user": "U1", "text": "first question"},
        bot("1.000002", reply_metadata(first)),
        {"ts": second, "user": "U1", "text": "second question"},
        bot("1.000004", reply_metadata(second), user="UOTHERBOT"),  # another bot copying our marker
        bot("1.000005", {"event_type": "someone_else", "event_payload": {"question_ts": second}}),
        bot("1.000006", reply_metadata(second)),
        bot("1.000007", reply_metadata(second)),  # a second placeholder: the earliest is resumed
    ]
    assert reply_to(thread, first, "UBOT") == thread[1]
    assert reply_to(thread, second, "UBOT") == thread[5]
    assert reply_to(thread, "1.000008", "UBOT") is None
    answered = [*thread, bot("1.000009", answer_metadata("a", second))]
    assert reply_to(answered, second, "UBOT") == answered[-1]
    assert reply_to(answered, first, "UBOT") == thread[1]  # answers carry the question they answer
