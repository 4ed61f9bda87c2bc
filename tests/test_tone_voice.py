"""The brand's usual wording: learnt from the tuning pairs, kept beside the adapter, and what a rewrite may add."""

from __future__ import annotations

import logging

from bot.voice.guard import check_rewrite
from bot.voice.model import ADAPTER_CONFIG, BUNDLED_ADAPTER
from bot.voice.rewriter import ToneRewriter
from bot.voice.tuning import SAMPLE_PAIRS, load_pairs, voice_words
from bot.voice.words import (
    VOICE_FILE,
    content_words,
    invented_words,
    learn_voice_words,
    load_voice_words,
    opening,
    save_voice_words,
    word_stem,
)

REFUND_ANSWER = "Most refund requests are decided within 2 business days [1]."


def test_the_inflections_of_a_word_share_one_stem():
    for forms in [
        ("day", "days"),
        ("bill", "bills", "billed", "billing"),
        ("use", "uses", "used", "using"),
        ("apply", "applies", "applied"),
        ("change", "changes", "changed", "changing"),
        ("quick", "quickly"),
    ]:
        assert len({word_stem(word) for word in forms}) == 1, forms
    assert word_stem("address") == "address" and word_stem("status") == "status"


def test_content_words_leave_out_function_words_markers_links_and_code():
    text = "You can't export them [1]; see https://acme.example/export or run `acme export --all` [2]."
    assert content_words(text) == content_words("export see run")
    assert len(content_words(text)) == 3


def test_the_voice_is_every_word_an_on_brand_rewrite_adds():
    pairs = [
        ("Refunds take 5 days [1].", "Good news! Refunds take 5 days [1]."),
        ("Exports are CSV files [1].", "Sure thing! Your exports arrive as CSV files [1]."),
    ]
    assert learn_voice_words(pairs) == content_words("Good news, sure thing: it arrives")


def test_a_rewrite_may_add_only_the_answers_words_and_the_brands_usual_ones():
    voice = frozenset(content_words("sure thing"))
    assert (
        invented_words(
            "Refunds take 5 to 10 days [1].", "Sure thing! A refund takes 5 to 10 days [1].", voice
        )
        == []
    )
    assert invented_words(
        REFUND_ANSWER, "Sure thing! You can refund a small amount in 2 days [1].", voice
    ) == [
        "amount",
        "small",
    ]


def test_the_guard_with_the_bundled_voice_refuses_invented_wording():
    """The quick start's first answer, as the bundled adapter once rewrote it: every item kept, sense not."""
    invented = "Thanks for asking! You can usually refund a small amount within 2 business days [1]."
    reword = {"keep_words": False}  # the voice check alone, as when rewording is allowed
    assert check_rewrite(REFUND_ANSWER, invented, **reword).passed  # items, negations and limits cannot tell
    verdict = check_rewrite(REFUND_ANSWER, invented, voice=load_voice_words(BUNDLED_ADAPTER), **reword)
    assert [p.split(" (")[0] for p in verdict.problems] == ["invents small"]
    faithful = "Thanks for asking! Most refund requests are decided within 2 business days [1]."
    assert check_rewrite(REFUND_ANSWER, faithful, voice=load_voice_words(BUNDLED_ADAPTER)).passed


def test_the_bundled_adapter_carries_the_voice_of_its_training_pairs():
    assert load_voice_words(BUNDLED_ADAPTER) == voice_words(load_pairs(SAMPLE_PAIRS))


def test_voice_words_are_saved_whole_and_a_missing_file_reads_as_none(tmp_path):
    assert load_voice_words(tmp_path) is None
    save_voice_words(tmp_path, frozenset({"sure", "thing"}))
    assert load_voice_words(tmp_path) == {"sure", "thing"}
    assert [path.name for path in tmp_path.iterdir()] == [VOICE_FILE]


def test_an_adapter_without_voice_words_says_so_and_lets_no_new_word_through(tmp_path, caplog):
    adapter = tmp_path / "old-adapter"
    adapter.mkdir()
    (adapter / ADAPTER_CONFIG).write_text("{}")
    with caplog.at_level(logging.WARNING, logger="bot.voice.rewriter"):
        rewriter = ToneRewriter(adapter, tmp_path / "data", backend="transformers")
    assert VOICE_FILE in caplog.text and "helpdesk tune" in caplog.text
    verdict = rewriter.check("Refunds take 5 days [1].", "Good news! Refunds take 5 days [1].")
    assert [p.split(" (")[0] for p in verdict.problems] == ["invents good, news"]
    bundled = ToneRewriter(BUNDLED_ADAPTER, tmp_path / "data", backend="transformers")
    assert bundled.check("Refunds take 5 days [1].", "Good news! Refunds take 5 days [1].").passed


def test_the_opening_of_a_rewrite_is_what_it_says_before_the_answer():
    voice = load_voice_words(BUNDLED_ADAPTER)
    rewrite = "Thanks for asking! Most refund requests go out within 2 business days [1]."
    assert opening(REFUND_ANSWER, rewrite, voice) == "Thanks for asking!"
    assert opening(REFUND_ANSWER, "Most refunds go out in 2 days [1].", voice) is None
    assert opening(REFUND_ANSWER, "Refunds are slow. Most requests are decided [1].", voice) is None
