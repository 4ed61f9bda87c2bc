"""Markdown tables become one sentence per row, in passages and in answers."""

from __future__ import annotations

from knowledge.chunking import Chunker
from knowledge.documents import SourceDocument
from knowledge.tables import linearise_tables

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


def test_passages_carry_the_rows_as_sentences():
    document = SourceDocument(doc_id="plans", title="Plans", text=PRICING, source="plans.md")
    passages = [
        c for c in Chunker(chunk_size=400, chunk_overlap=0).split("plans", document) if c.kind == "passage"
    ]
    compare = next(c for c in passages if c.headings == ["Plans", "Compare plans"])
    assert compare.text.startswith("Monthly price — Starter: $12/month; Growth: $29/month.")
    assert "|" not in compare.text
