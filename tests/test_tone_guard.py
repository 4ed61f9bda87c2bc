"""The fact guard accepts faithful rewrites and rejects every way a rewrite can change a fact."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from bot.voice.guard import LengthBounds, check_rewrite, is_not_found, mentions, must_keep


def check_rewording(original, rewrite, *args, **kwargs):
    """The guard's other checks, with rewording allowed (the keep-every-word check has its own tests)."""
    return check_rewrite(original, rewrite, *args, keep_words=False, **kwargs)


PLAIN = (
    "Refund requests for annual plans are submitted under Settings → Billing → Cancel subscription [1]. "
    "Approved refunds are returned within 5–10 business days to the card used for Acme Payroll [1]. "
    "Questions go to billing@acme.example or https://acme.example/refunds, using the code `REFUND-42` [2]."
)
FAITHFUL = (
    "Happy to help! To ask for a refund on an annual plan, go to Settings → Billing → Cancel subscription [1]. "
    "Once it's approved, the money goes back within 5–10 business days to the card you use for Acme Payroll [1]. "
    "Any questions? Write to billing@acme.example or see https://acme.example/refunds, with the code "
    "`REFUND-42` [2]."
)


def test_a_faithful_rewrite_passes():
    verdict = check_rewording(PLAIN, FAITHFUL)
    assert verdict.passed, verdict.problems


@pytest.mark.parametrize(
    ("change", "broken", "problem"),
    [
        ("changed number", FAITHFUL.replace("5–10", "5–7"), "drops 10"),
        ("dropped marker", FAITHFUL.replace(" [2]", ""), "drops citation [2]"),
        ("invented marker", FAITHFUL.replace("[2]", "[3]"), "adds citation [3]"),
        ("invented URL", FAITHFUL + " More at https://evil.example/help.", "adds https://evil.example/help"),
        ("changed URL", FAITHFUL.replace("/refunds", "/refund"), "drops https://acme.example/refunds"),
        ("changed email", FAITHFUL.replace("billing@", "help@"), "drops billing@acme.example"),
        ("changed code span", FAITHFUL.replace("REFUND-42", "REFUND-24"), "`REFUND-42`"),
        ("dropped product name", FAITHFUL.replace("Acme Payroll", "payroll"), "drops Acme Payroll"),
        ("swapped product name", FAITHFUL.replace("Acme Payroll", "Acme Pay"), "drops Acme Payroll"),
        ("invented name", FAITHFUL.replace("Any questions?", "Like Acme Bank Sync, any questions?"), "adds"),
        ("added number", FAITHFUL.replace("Happy to help!", "Happy to help, 24/7!"), "adds 24"),
        (
            "changed menu path",
            FAITHFUL.replace("Billing → Cancel subscription", "Billing → Plans"),
            "drops Settings → Billing → Cancel",
        ),
    ],
)
def test_a_rewrite_that_changes_a_fact_fails(change, broken, problem):
    verdict = check_rewrite(PLAIN, broken)
    assert not verdict.passed, change
    assert any(problem in p for p in verdict.problems), (change, verdict.problems)


def test_length_stays_within_bounds():
    plain = "Exports are limited to 3 per hour [1]. Larger exports are split into files of 10,000 rows [1]."
    short = "Up to 3 exports per hour, 10,000 rows [1]."
    padded = plain + " " + " ".join(["Really, we are so very glad that you asked us about this today."] * 3)
    assert any("too short" in p for p in check_rewording(plain, short).problems)
    assert any("too long" in p for p in check_rewording(plain, padded).problems)
    assert check_rewording(plain, short, LengthBounds(min_ratio=0.3)).passed


def test_an_empty_rewrite_fails():
    assert not check_rewrite(PLAIN, "  ").passed


def test_a_refusal_must_stay_a_refusal():
    refusal = "The knowledge base does not contain information about hardware security keys. These might help: [1] [2]"
    kind = "Sorry, I couldn't find anything about hardware security keys. These might help, though: [1] [2]"
    answered = "Good news! Hardware security keys work with every plan and you set them up here: [1] [2]"
    assert is_not_found(refusal)
    assert check_rewrite(refusal, kind).passed
    assert "no longer says the answer was not found" in check_rewrite(refusal, answered).problems


def test_a_code_block_must_survive_verbatim():
    plain = "Run this:\n```\nhelpdesk sync --json\n```\nIt prints a summary [1]."
    assert check_rewording(
        plain, "Just run:\n```\nhelpdesk sync --json\n```\nYou'll get a summary [1]."
    ).passed
    changed = "Just run:\n```\nhelpdesk sync\n```\nYou'll get a summary back [1]."
    assert "changes a code block" in check_rewording(plain, changed).problems


def test_a_number_written_out_or_in_digits_is_the_same_fact():
    plain = "Two-step verification sends a 6-digit code [1]."
    assert check_rewording(plain, "Good news! 2-step verification sends you a 6-digit code [1].").passed
    assert check_rewording("It takes 3 days [1].", "Sure! It takes three days [1].").passed
    assert "adds 4" in check_rewording(plain, "Sure! 4-step verification sends a 6-digit code [1].").problems


def test_a_capitalised_ordinary_word_is_not_an_invented_name():
    plain = "The report lists tax collected by rate and period under Reports → Sales tax [1]."
    assert check_rewording(
        plain, "Happy to help! The report lists tax by Rate and Period under Reports → Sales tax [1]."
    ).passed


def test_names_match_as_whole_words_singular_or_plural():
    assert mentions("Download the PDFs here", "PDF")
    assert mentions("Ask the Accountant", "Accountants")
    assert not mentions("Payouts arrive daily", "Pay")


def test_the_brand_references_pass_the_guard():
    """Allowed to reword, the guard is not stricter than the humans who wrote the brand-voice examples.

    Every reference keeps its facts. The sense checks turn down at most 1.5%: a negation said another way
    ("without a due date" → "if you leave it blank"), which posts the plain answer instead.
    """
    pairs = [json.loads(line) for line in (REPO / "examples/acme-tone/pairs.jsonl").read_text().splitlines()]
    verdicts = {p["id"]: check_rewording(p["input"], p["output"]) for p in pairs}
    failing = {key: verdict.problems for key, verdict in verdicts.items() if not verdict.passed}
    assert all(
        problem.startswith("loses a negation") for problems in failing.values() for problem in problems
    )
    assert len(failing) <= 0.015 * len(pairs), failing


@pytest.mark.parametrize(
    ("answer", "rewrite"),
    [
        (
            "Most refund requests are decided within 2 business days [1].",
            "Thanks for asking! You'll get your refund within 2 business days [1].",
        ),
        ("Custom CSS is not supported [2].", "Good news: Custom CSS is supported [2]!"),
        ("Exports hold up to 10,000 rows [1].", "Sure! Exports hold 10,000 rows [1]."),
        ("Balances may differ from online banking [1].", "Your balance differs from online banking [1]."),
    ],
)
def test_a_rewrite_that_keeps_the_items_but_changes_the_sense_fails(answer, rewrite):
    verdict = check_rewrite(answer, rewrite)
    assert not verdict.passed
    assert verdict.problems[0].startswith("loses a"), verdict.problems


@pytest.mark.parametrize(
    ("answer", "rewrite"),
    [
        ("Custom CSS is not supported [2].", "Sorry, Custom CSS isn't supported [2]."),
        ("Balances may differ from online banking [1].", "Your balance can differ from online banking [1]."),
        ("The app keeps the most recent version [1].", "Don't worry, the app keeps the latest version [1]."),
        (
            "Deleted data cannot be restored [1].",
            "Sorry, once data is deleted there's no way to restore it [1].",
        ),
    ],
)
def test_a_negation_or_limit_said_another_way_passes(answer, rewrite):
    verdict = check_rewording(answer, rewrite)
    assert verdict.passed, verdict.problems


def test_must_keep_lists_what_the_guard_checks_in_reading_order():
    keep = must_keep(PLAIN)
    assert keep[:2] == ["Settings → Billing → Cancel", "[1]"]
    for item in [
        "5",
        "10",
        "Acme Payroll",
        "billing@acme.example",
        "https://acme.example/refunds",
        "`REFUND-42`",
    ]:
        assert item in keep
    assert keep.index("Acme Payroll") < keep.index("[2]")
    assert len(keep) == len(set(keep))
    # Dropping any listed item fails the guard: the list names exactly what a rewrite must carry over.
    for item in keep:
        assert not check_rewrite(PLAIN, FAITHFUL.replace(item, "")).passed, item


@pytest.mark.parametrize(
    ("answer", "rewrite", "dropped"),
    [
        (
            "Most refund requests are decided within 2 business days [1].",
            "Thanks for asking! Most refund requests go out within 2 business days [1].",
            "decided",
        ),
        (
            "Most refund requests are decided within 2 business days [1].",
            "Thanks for asking! Most refund requests are sent within 2 business days [1].",
            "decided",
        ),
        (
            "The limit of 600 requests per minute is shared by all API keys on the account [1].",
            "Good news! All API keys on the account can make 600 requests per minute [1].",
            "limit, shared",
        ),
    ],
)
def test_the_voice_may_add_words_but_not_replace_them(answer, rewrite, dropped):
    verdict = check_rewrite(answer, rewrite)
    assert f"drops {dropped} (the voice may add words, not replace them)" in verdict.problems
    assert check_rewrite(answer, f"Thanks for asking! {answer}").passed
