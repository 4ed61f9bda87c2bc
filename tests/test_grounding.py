"""The grounding check: invented facts, wrong citations and dangling markers never reach a user."""

from __future__ import annotations

from langchain_core.documents import Document

from bot.grounding import ground

REFUNDS = Document(
    "Refunds are issued within 14 days of a request. Email billing@acme.example to start a refund.",
    metadata={"doc_id": "refunds", "title": "Refunds"},
)
PASSWORD = Document(
    "Click Forgot password on the sign-in page. The reset link expires after 60 minutes.",
    metadata={"doc_id": "password", "title": "Resetting your password"},
)
SOURCES = [REFUNDS, PASSWORD]


def test_supported_sentences_are_kept_and_renumbered():
    result = ground("The reset link expires after 60 minutes [2]. Refunds take 14 days [1].", SOURCES)
    assert result.text == "The reset link expires after 60 minutes [1]. Refunds take 14 days [2]."
    assert [d.metadata["doc_id"] for d in result.sources] == ["password", "refunds"]
    assert result.dropped == [] and result.acceptable


def test_an_invented_number_is_removed():
    result = ground(
        "Refunds are issued within 30 days [1]. The reset link expires after 60 minutes [2].", SOURCES
    )
    assert "30 days" not in result.text
    assert result.dropped[0][1] == "'30' does not occur in the cited source"
    assert result.text == "The reset link expires after 60 minutes [1]."


def test_a_wrong_citation_is_caught():
    result = ground("The reset link expires after 60 minutes [1].", SOURCES)
    assert result.kept == 0 and not result.acceptable
    assert "does not occur in the cited source" in result.dropped[0][1]


def test_invented_url_and_product_name_are_caught():
    result = ground(
        "Email billing@acme.example to start a refund [1]. See https://evil.example/refunds for details [1]. "
        "Refunds are issued within 14 days through Acme Turbo [1].",
        SOURCES,
    )
    assert result.text == "Email billing@acme.example to start a refund [1]."
    reasons = [reason for _, reason in result.dropped]
    assert "'https://evil.example/refunds' does not occur in the cited source" in reasons
    assert "the name 'Acme Turbo' does not occur in the cited source" in reasons


def test_dangling_and_missing_markers():
    result = ground(
        "Refunds are issued within 14 days [7]. Click Forgot password on the sign-in page [2].", SOURCES
    )
    assert result.text == "Click Forgot password on the sign-in page [1]."
    assert result.dropped == [("Refunds are issued within 14 days [7].", "cites no existing source")]


def test_a_trailing_marker_covers_its_paragraph():
    text = "Refunds are issued within 14 days of a request. Email billing@acme.example to start a refund [1]."
    result = ground(text, SOURCES)
    assert result.kept == 2 and result.text.count("[1]") == 2


def test_unrelated_sentences_are_dropped_even_with_a_marker():
    result = ground("Our office dogs enjoy long walks on sunny afternoons [1].", SOURCES)
    assert result.kept == 0 and "of its words occur" in result.dropped[0][1]


def test_lists_stay_whole():
    steps = Document(
        "To reset:\n1. Click Forgot password.\n2. Open the email.", metadata={"doc_id": "s", "title": "S"}
    )
    result = ground("To reset:\n1. Click Forgot password.\n2. Open the email. [1]", [steps])
    assert result.text == "To reset:\n1. Click Forgot password.\n2. Open the email. [1]"
