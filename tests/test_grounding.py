"""The grounding check: invented facts, wrong citations and dangling markers never reach a user."""

from __future__ import annotations

from langchain_core.documents import Document

from bot.answer.grounding import ground

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


def test_a_dangling_or_missing_marker_is_replaced_by_the_source_that_backs_the_sentence():
    result = ground(
        "Refunds are issued within 14 days [7]. Click Forgot password on the sign-in page [2]. "
        "The link expires after 90 minutes [9].",
        SOURCES,
    )
    assert (
        result.text == "Refunds are issued within 14 days [1]. Click Forgot password on the sign-in page [2]."
    )
    assert [d.metadata["doc_id"] for d in result.sources] == ["refunds", "password"]
    assert result.dropped == [
        (
            "The link expires after 90 minutes [9].",
            "no source supports it ('90' does not occur in the cited source)",
        )
    ]


def test_each_step_of_a_generated_list_is_checked_and_cited_on_its_own():
    steps = Document(
        "To print a heading on every page, choose Format - Print Ranges - Edit. "
        "Click the icon at the far right of the Rows to repeat area.",
        metadata={"doc_id": "print", "title": "Printing Rows on Every Page"},
    )
    reply = (
        "1. Choose Format - Print Ranges - Edit.\n   [2]\n"
        "2. Click the icon at the far right of the Rows to repeat area.\n"
        "3. Click the Ribbon's Page Layout tab.\n"
        "4. If you also want column A, click the"
    )
    result = ground(reply, [steps])
    assert result.text == (
        "1. Choose Format - Print Ranges - Edit.\n"
        "2. Click the icon at the far right of the Rows to repeat area. [1]"
    )
    assert [reason for _, reason in result.dropped] == [
        "no source supports it (the name 'Ribbon' does not occur in the cited source)"
    ]


def test_a_reply_cut_off_at_its_length_limit_loses_the_unfinished_part():
    result = ground("Refunds are issued within 14 days of a request. Email billing@acme", SOURCES)
    assert result.text == "Refunds are issued within 14 days of a request [1]."


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


def test_a_menu_path_or_label_must_occur_as_written():
    freeze = Document(
        "Choose View - Freeze Rows and Columns. To deactivate, choose it again. Click *OK*.",
        metadata={"doc_id": "freeze", "title": "Freezing Rows or Columns as Headers"},
    )
    kept = ground("Choose **View - Freeze Rows and Columns** [1]. Click *OK* [1].", [freeze])
    assert kept.kept == 2 and not kept.dropped
    invented = ground("Choose View - Freeze Columns [1]. Click *Apply* [1].", [freeze])
    assert [reason for _, reason in invented.dropped] == [
        "the label or menu path 'View - Freeze Columns' does not occur in the cited source",
        "the label or menu path 'Apply' does not occur in the cited source",
    ]


def test_two_lists_quoted_one_after_the_other_stay_apart():
    team = Document(
        "To hand over the account:\n1. Make the new Owner an Admin.\n2. Click **Transfer ownership**.\n\n"
        "To invite someone:\n1. Click **Invite teammate**.\n2. Pick a role.",
        metadata={"doc_id": "team", "title": "Team"},
    )
    answer = "1. Make the new Owner an Admin.\n2. Click **Transfer ownership**. [1]\n\n1. Click **Invite teammate**.\n2. Pick a role. [1]"
    checked = ground(answer, [team])
    assert checked.text == (
        "1. Make the new Owner an Admin.\n2. Click **Transfer ownership**. [1]"
        "\n\n1. Click **Invite teammate**.\n2. Pick a role. [1]"
    )


def test_a_quoted_code_block_stays_closed_with_its_citation_on_the_sentence_that_introduces_it():
    source = Document(
        "Use the queue module, for example:\n```\nq = queue.Queue()\nq.put(job)\n```",
        metadata={"doc_id": "queues", "title": "Queues"},
    )
    draft = "Use the queue module, for example:\n```\nq = queue.Queue()\nq.put(job)\n``` [1]"
    result = ground(draft, [source])
    assert result.text == "Use the queue module, for example: [1]\n\n```\nq = queue.Queue()\nq.put(job)\n```"
    assert result.dropped == []
