"""Markdown tables become one sentence per row, each row a passage of its own."""

from __future__ import annotations

from knowledge.chunking import Chunker
from knowledge.documents import SourceDocument
from knowledge.tables import has_table_row, segments

PRICING = """# Plans

Three plans are offered.

## Compare plans

| | Starter | Growth |
|---|---|---|
| Monthly price | $12/month | $29/month |
| SSO | — | ✓ |
| Support | Email | Email and chat |

Prices exclude tax.
"""


def linearise_tables(markdown: str) -> str:
    """The text as the chunker reads it: tables replaced by one sentence per row."""
    return "\n".join(text for text, _ in segments(markdown))


def test_each_row_names_its_values_by_column():
    text = linearise_tables(PRICING)
    assert "Monthly price — Starter: $12/month; Growth: $29/month." in text.splitlines()
    assert "SSO — Starter: no; Growth: yes." in text.splitlines()
    assert "Support — Starter: Email; Growth: Email and chat." in text.splitlines()
    assert "|" not in text
    assert "Three plans are offered." in text and "Prices exclude tax." in text


def test_two_column_tables_read_as_key_and_value():
    table = "| Code | Meaning |\n| :--- | ---: |\n| `E01` | Card declined |\n| `E02` | Expired card. |\n"
    assert linearise_tables(table).splitlines() == ["`E01`: Card declined.", "`E02`: Expired card."]


def test_code_blocks_and_pipes_without_a_separator_are_left_alone():
    code = "```\n| a | b |\n|---|---|\n| 1 | 2 |\n```"
    assert linearise_tables(code) == code
    prose = "| not a table |\nsome text"
    assert linearise_tables(prose) == prose


def test_each_table_row_is_a_passage_of_its_own():
    document = SourceDocument(doc_id="plans", title="Plans", text=PRICING, source="plans.md")
    chunks = Chunker(chunk_size=400, chunk_overlap=0).split("plans", document)
    passages = [c for c in chunks if c.kind == "passage" and c.headings == ["Plans", "Compare plans"]]
    assert [c.text for c in passages] == [
        "Monthly price — Starter: $12/month; Growth: $29/month.",
        "SSO — Starter: no; Growth: yes.",
        "Support — Starter: Email; Growth: Email and chat.",
        "Prices exclude tax.",
    ]
    # The row passages embed with the title and heading path, like every passage.
    assert passages[0].embedding_text().startswith("Plans")


def test_segments_keep_prose_and_rows_in_order():
    pieces = segments(PRICING)
    assert [is_row for _, is_row in pieces] == [False, True, True, True, False]
    assert pieces[0][0].endswith("## Compare plans\n")


def test_a_row_sentence_is_recognised_and_prose_is_not():
    rows = [text for text, is_row in segments(PRICING) if is_row]
    assert len(rows) == 3 and all(map(has_table_row, rows))
    assert not has_table_row("Refunds take 5–10 business days — sometimes less: it depends.")
    assert not has_table_row("Three plans are offered. Prices exclude tax.")
