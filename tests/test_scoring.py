"""Answers scored by key facts: the normalisation, the verdicts and the score."""

from __future__ import annotations

import pytest

from bot.answer.scoring import contains_key_facts, is_scored, tally, verdict

PRINT = [["Rows to repeat", "Repeat rows"], ["Print Ranges - Edit", "Print Ranges > Edit"]]


@pytest.mark.parametrize(
    "answer",
    [
        "Choose **Format - Print Ranges - Edit** [1] and fill in *Rows to repeat* [1].",
        "Choose Format – Print Ranges – Edit, then <b>Rows to repeat</b>.",  # en dashes, HTML
        "1. Choose `Format - Print Ranges - Edit`.\n2. Click [Rows to repeat](https://help.example/x).",
        "Choose Format — Print Ranges\n  — Edit [2][3]; then ROWS TO REPEAT.",  # em dashes, case, lines
    ],
)
def test_markup_markers_dashes_and_case_do_not_matter(answer):
    assert contains_key_facts(answer, PRINT)


def test_every_group_must_be_present():
    assert not contains_key_facts("Choose Format - Print Ranges - Edit [1].", PRINT)


def test_curly_quotes_match_straight_ones():
    facts = [['"Don\'t save"']]
    assert contains_key_facts("Click “Don’t save” [1].", facts)


def test_a_citation_marker_does_not_split_a_phrase():
    assert contains_key_facts("within 5–10 [1] business days", [["5-10 business days"]])


def test_verdicts():
    answerable = {"gold_doc_ids": ["d"], "key_facts": [["SUBTOTAL"]]}
    unanswerable = {"gold_doc_ids": [], "key_facts": []}
    assert verdict(answerable, "Use SUBTOTAL [1].", refused=False) == "correct"
    assert verdict(answerable, "Use SUM [1].", refused=False) == "wrong"
    assert verdict(answerable, "I couldn't find an answer", refused=True) == "missing"
    assert verdict(unanswerable, "I couldn't find an answer", refused=True) == "correct"
    assert verdict(unanswerable, "Use SUBTOTAL [1].", refused=False) == "wrong"
    assert is_scored(answerable) and is_scored(unanswerable)
    assert not is_scored({"gold_doc_ids": ["d"]})  # answerable without key facts


def test_a_wrong_answer_costs_what_a_right_one_earns():
    assert tally(["correct", "correct", "wrong", "missing"]) == {
        "n": 4,
        "correct": 2,
        "missing": 1,
        "wrong": 1,
        "score": 0.25,
    }
