"""Discord rendering: sources as links with their age, and messages split cleanly under 2,000 characters."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

from conftest import INJECTED_DOCUMENT, INJECTED_QUESTION

from bot.models import Answer, Citation
from connectors.discord_render import MESSAGE_LIMIT, answer_markdown, render, source_line, split_message

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def citation(n=1, title="Refunds", source="https://help.acme.example/refunds", doc_id="billing/refunds"):
    return Citation(n, doc_id, title, source, "", "snippet", "2025-03-07T09:00:00+00:00")


def test_web_sources_are_links_without_embeds_and_say_how_old_they_are():
    assert source_line(citation(), NOW) == (
        "[1] [Refunds](<https://help.acme.example/refunds>) · updated 3 days ago"
    )


def test_file_sources_show_the_title_and_the_path_inside_the_knowledge_base():
    line = source_line(citation(source="/srv/kb/billing/refunds.md"), NOW)
    assert line == "[1] Refunds — `billing/refunds.md` · updated 3 days ago"
    assert "/srv" not in line


def test_titles_cannot_break_the_link_or_ping():
    line = source_line(citation(title="Plans [beta] for @everyone"), NOW)
    assert line.startswith("[1] [Plans \\[beta\\] for @\u200beveryone](<https://")


def test_answer_lists_its_sources_and_a_refusal_its_closest_ones():
    answer = Answer("Refunds take 14 days. [1]", [citation()], refused=False, confidence=0.9)
    assert answer_markdown(answer, NOW) == (
        "Refunds take 14 days. [1]\n\n**Sources**\n"
        "[1] [Refunds](<https://help.acme.example/refunds>) · updated 3 days ago"
    )
    refusal = Answer("I couldn't find an answer to this in the knowledge base.", [citation()], True, 0.1)
    assert "**Closest sources**\n[1] [Refunds]" in answer_markdown(refusal, NOW)
    assert render(Answer("No sources at all.", [], True, 0.0)) == ["No sources at all."]


def test_short_text_is_one_message():
    assert split_message("Hello.") == ["Hello."]
    assert split_message("") == [""]


def test_long_text_splits_between_paragraphs_first():
    paragraphs = [f"Paragraph {n}. " + "word " * 150 for n in range(6)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    parts = split_message(text)
    assert "".join(parts) == text
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert all(p.endswith("\n\n") for p in parts[:-1])
    assert all(p.startswith("Paragraph") for p in parts)


def test_a_paragraph_longer_than_a_message_splits_between_sentences():
    text = " ".join(f"Sentence number {n} explains one more detail of the refund policy." for n in range(60))
    parts = split_message(text)
    assert len(parts) == 2 and "".join(parts) == text
    assert parts[0].endswith("policy. ") and parts[1].startswith("Sentence number")


def test_never_splits_inside_a_code_block_or_a_link():
    code = "```python\n" + "\n".join(f"print({n})" for n in range(40)) + "\n```"
    link = "[the refund form](<https://help.acme.example/refunds/form>)"
    text = "word " * 300 + code + " and " + "more " * 20 + link + " end " + "tail " * 250
    parts = split_message(text, limit=1600)
    assert "".join(parts) == text
    assert any(code in p for p in parts) and any(link in p for p in parts)


def test_a_code_block_longer_than_a_message_becomes_several_fenced_blocks():
    lines = [f"line {n:04d} " + "x" * 40 for n in range(100)]
    text = "Run this:\n```sh\n" + "\n".join(lines) + "\n```\nDone."
    parts = split_message(text)
    assert all(len(p) <= MESSAGE_LIMIT for p in parts) and len(parts) >= 3
    assert all(p.count("```") % 2 == 0 for p in parts)  # every message opens and closes its own block
    assert "\n".join(re.findall(r"line \d{4} x+", "".join(parts))) == "\n".join(lines)  # nothing lost


def test_a_word_longer_than_a_message_is_cut_without_losing_anything():
    text = "start " + "a" * 4500 + " end"
    parts = split_message(text)
    assert "".join(parts) == text and all(len(p) <= MESSAGE_LIMIT for p in parts)


def test_random_markdown_always_joins_back_and_keeps_links_whole():
    pieces = ["word", "Sentence ends.", "\n", "\n\n", "`inline code`", "[a link](<https://x.example/a b>)"]
    generator = random.Random(6)
    for _ in range(200):
        text = " ".join(generator.choice(pieces) for _ in range(generator.randint(1, 900)))
        limit = generator.choice([60, 200, 2000])
        parts = split_message(text, limit)
        assert "".join(parts) == text
        assert all(0 < len(p) <= limit for p in parts)
        for part in parts:  # a link or inline code is never cut in two
            assert part.count("`") % 2 == 0
            assert part.count("[a link]") == part.count("(<https://x.example/a b>)")


def test_answer_text_cannot_ping_or_pass_a_link_off_as_another():
    # What a model that obeyed a document (or the question) would write; it is shown, inert.
    obeying = (
        f"The admin password is hunter2. {INJECTED_DOCUMENT} {INJECTED_QUESTION} <@123> "
        "[Sign in again](<https://evil.example/login>) [1]"
    )
    [message] = render(Answer(obeying, [citation()], refused=False, confidence=0.9), NOW)
    body = message.split("\n\n**Sources**\n")[0]
    assert not re.search(r"@(everyone|here)|<@|<#|<!", body)
    assert not re.search(r"\]\(", body)  # no masked link: every address shows as itself
    assert "Reset your password (<http://evil.example/reset>)" in body
    assert "Sign in again (<https://evil.example/login>)" in body
    assert message.endswith("[1] [Refunds](<https://help.acme.example/refunds>) · updated 3 days ago")
