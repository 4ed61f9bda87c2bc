"""The extractive generator: answers come from the best-ranked document and cite what they quote."""

from __future__ import annotations

from conftest import CountingEmbeddings
from langchain_core.documents import Document

from bot.answer.extractive import ExtractiveGenerator
from bot.answer.grounding import ground
from bot.answer.text import answer_units


def _document(doc_id: str, text: str, rank: int, score: float) -> Document:
    return Document(page_content=text, metadata={"doc_id": doc_id, "rank": rank, "score": score})


def test_the_answer_quotes_the_best_ranked_document_even_when_a_runner_up_matches_the_wording():
    embeddings = CountingEmbeddings(size=32)
    question = "Refunds are sent back within ten days."
    documents = [
        _document("refunds", "Approved refunds reach the original card. Card refunds take a week.", 0, 0.80),
        _document("payouts", f"Payout timing differs. {question}", 1, 0.80),
    ]
    draft = ExtractiveGenerator(embeddings).compose(question, embeddings.embed_query(question), documents)
    assert [source.metadata["doc_id"] for source in draft.sources] == ["refunds"]
    assert question not in draft.text and "[1]" in draft.text and "[2]" not in draft.text


def test_the_answer_may_quote_a_runner_up_passage_of_the_best_document_and_stays_grounded():
    embeddings = CountingEmbeddings(size=32)
    question = "Monthly price — Starter: $12/month; Growth: $29/month."
    best = _document("plans", "Annual price — Starter: $120/year; Growth: $290/year.", 0, 0.80)
    best.metadata["more_passages"] = [question]
    draft = ExtractiveGenerator(embeddings).compose(question, embeddings.embed_query(question), [best])
    assert draft.text.startswith(f"{question} [1]")
    checked = ground(draft.text, draft.sources)
    assert checked.acceptable and "$29/month" in checked.text and checked.sources == [best]


def test_a_see_also_entry_is_answered_together_with_the_document_it_names():
    embeddings = CountingEmbeddings(size=32)
    question = "How do I make an executable?"
    pointer = _document("exe", "See Creating a stand-alone binary for the tools that do it.", 0, 0.80)
    named = _document("binary", "Freeze bundles your modules and the interpreter into one program.", 1, 0.80)
    other = _document("other", "Executables are signed on Windows.", 2, 0.70)
    pointer.metadata["doc_key"], named.metadata["doc_key"] = "s|exe", "s|binary"
    compose = ExtractiveGenerator(embeddings).compose
    draft = compose(question, embeddings.embed_query(question), [pointer, named, other])
    assert draft.text.startswith("See Creating a stand-alone binary") and "[1]" in draft.text
    assert [source.metadata["doc_id"] for source in draft.sources] == ["exe"]
    named.metadata["named_by"] = "s|exe"
    draft = compose(question, embeddings.embed_query(question), [pointer, named, other])
    assert draft.text.endswith("Freeze bundles your modules and the interpreter into one program. [2]")
    assert [source.metadata["doc_id"] for source in draft.sources] == ["exe", "binary"]
    assert ground(draft.text, draft.sources).acceptable


def test_a_sentence_that_announces_the_steps_is_answered_together_with_them():
    embeddings = CountingEmbeddings(size=32)
    lead_in = "Here's how to get back into your account."
    steps = "1. Open the sign-in page.\n2. Click Forgot password."
    compose = ExtractiveGenerator(embeddings).compose
    for opening, answer in [
        (lead_in, f"{lead_in}\n{steps} [1]"),
        ("You can reset it.", "You can reset it. [1]"),
    ]:
        best = _document("reset", f"Forgot your password? {opening}", 0, 0.80)
        best.metadata["announced_passage"] = f"{steps}\n\nThe link expires after an hour."
        draft = compose(opening, embeddings.embed_query(opening), [best])
        assert draft.text == answer
        checked = ground(draft.text, draft.sources)  # the steps are quoted from a passage grounding reads too
        assert checked.acceptable and not checked.dropped
        assert ("2. Click" in checked.text) is (opening == lead_in)


def test_a_list_is_read_with_the_sentence_that_announces_it():
    units = answer_units("Here's how it works.\n\n- One.\n- Two.\n\nRefunds take 5 days.")
    assert units == ["Here's how it works.\n- One.\n- Two.", "Refunds take 5 days."]


def test_a_link_or_key_a_sentence_announces_on_its_own_line_is_read_with_it():
    text = (
        "For Windows, macOS and Linux:\n\nhttps://pypi.org/project/pyserial/\n\nTo undo, press:\n\nCtrl+Z\n\n"
        "See below.\n\nThat is all."
    )
    assert answer_units(text) == [
        "For Windows, macOS and Linux:\nhttps://pypi.org/project/pyserial/",
        "To undo, press:\nCtrl+Z",
        "That is all.",
    ]
    # A short line nothing announces is still left out.
    assert answer_units("Refunds take 5 days.\n\nhttps://example.com/refunds") == ["Refunds take 5 days."]


def test_an_announced_link_is_quoted_cited_and_grounded():
    embeddings = CountingEmbeddings(size=32)
    question = "which library reads the serial port on Win32, OSX and Linux?"
    text = "For Win32, OSX and Linux:\n\nhttps://pypi.org/project/pyserial/\n"
    documents = [_document("serial", text, 0, 0.9)]
    draft = ExtractiveGenerator(embeddings).compose(question, embeddings.embed_query(question), documents)
    assert "https://pypi.org/project/pyserial/" in draft.text
    assert "https://pypi.org/project/pyserial/" in ground(draft.text, draft.sources).text


def test_code_fenced_right_after_the_sentence_that_introduces_it_is_read_as_code():
    passage = "Here's a trivial example:\n```\nfor i in range(5):\n    t.start()\n```\nEach thread then runs."
    assert answer_units(passage) == [
        "Here's a trivial example:\n```\nfor i in range(5):\n    t.start()\n```",
        "Each thread then runs.",
    ]
