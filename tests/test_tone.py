"""The tone rewriter with the real bundled adapter: guarded rewrites, and the unchanged answer as fallback."""

from __future__ import annotations

import json

import pytest
from test_tuning import PAIRS, _cli, converted_base_model, tone_data_dir  # noqa: F401  (fixtures)
from typer.testing import CliRunner

from bot.settings import Settings
from bot.voice.guard import check_rewrite
from bot.voice.model import BUNDLED_ADAPTER, INSTRUCTION, rewrite_messages
from bot.voice.rewriter import RewriteResult, ToneRewriter
from bot.voice.tuning import load_pairs
from bot.voice.words import load_voice_words

HELDOUT = [p.input for p in load_pairs(PAIRS) if p.split == "heldout"]
needs_adapter = pytest.mark.skipif(
    not (BUNDLED_ADAPTER / "adapter_config.json").is_file(), reason="no bundled tone adapter"
)


def test_from_settings_is_none_when_off_and_refuses_a_missing_adapter(tmp_path):
    assert ToneRewriter.from_settings(Settings(data_dir=tmp_path, tone_enabled=False)) is None
    with pytest.raises(FileNotFoundError, match="helpdesk tune"):
        ToneRewriter.from_settings(Settings(data_dir=tmp_path, tone_adapter=tmp_path / "nowhere"))


@needs_adapter
def test_from_settings_uses_the_bundled_adapter(tmp_path):
    rewriter = ToneRewriter.from_settings(Settings(data_dir=tmp_path, tone_timeout_s=2.5))
    assert rewriter.adapter_dir == BUNDLED_ADAPTER and rewriter.timeout_s == 2.5 and not rewriter.loaded
    assert rewriter.beams == 1 and rewriter.copy_bias == 1.0
    assert ToneRewriter.from_settings(Settings(data_dir=tmp_path, tone_beams=3)).beams == 3
    assert ToneRewriter.from_settings(Settings(data_dir=tmp_path, tone_copy_bias=0)).copy_bias == 0


@pytest.mark.parametrize(
    "text",
    [
        "To export:\n- open Reports [1]\n- click Export [1]",
        "Users — Starter: 1; Growth: 5; Business: 25 [1].",
        "It depends on your plan. Late fees — Starter: no; Growth: yes [1].",
    ],
)
async def test_lists_table_rows_and_several_paragraphs_are_posted_as_written(tmp_path, text):
    rewriter = ToneRewriter(BUNDLED_ADAPTER, tmp_path)
    result = await rewriter.rewrite(text)
    assert (result.output, result.fallback, result.guard_passed) == (text, True, False)
    assert not rewriter.loaded


def test_the_prompt_lists_what_the_rewrite_must_keep():
    text = "Exports run under Settings → Data in Acme Payroll [1]. Up to 3 per hour [2]."
    system, user = rewrite_messages(text)
    assert system["content"] == (f"{INSTRUCTION}\nKeep exactly: Settings → Data; Acme Payroll; [1]; 3; [2]")
    assert user == {"role": "user", "content": text}
    # With nothing to keep, the instruction stands alone.
    assert rewrite_messages("Sure, that works.")[0]["content"] == INSTRUCTION


def test_the_json_shape_is_exactly_the_documented_one():
    result = RewriteResult("a", "b", True, False, 12.5, ("ignored",))
    assert result.to_dict() == {
        "input": "a",
        "output": "b",
        "guard_passed": True,
        "fallback": False,
        "ms": 12.5,
    }


@pytest.fixture(params=["llama.cpp", "transformers"])
async def rewriter(request, tone_data_dir):  # noqa: F811
    tuned = ToneRewriter(BUNDLED_ADAPTER, tone_data_dir, timeout_s=60, backend=request.param)
    await tuned.load()
    return tuned


@needs_adapter
@pytest.mark.slow
async def test_rewrites_keep_every_fact_or_fall_back(rewriter):
    results = [await rewriter.rewrite(text) for text in HELDOUT[:3]]
    for result in results:
        if result.guard_passed:
            assert not result.fallback and result.output != result.input
            assert check_rewrite(result.input, result.output, voice=load_voice_words(BUNDLED_ADAPTER)).passed
        else:
            assert result.fallback and result.output == result.input and result.problems
    assert any(r.guard_passed for r in results), [r.problems for r in results]


@needs_adapter
@pytest.mark.slow
async def test_a_rewrite_that_takes_too_long_posts_the_answer_unchanged(rewriter):
    rewriter.timeout_s = 0.05
    result = await rewriter.rewrite(HELDOUT[0])
    assert result.fallback and not result.guard_passed and result.output == HELDOUT[0]
    assert any("longer than" in p for p in result.problems)
    assert result.ms < 2000


@needs_adapter
@pytest.mark.slow
def test_the_rewrite_command_prints_json(tone_data_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tone_data_dir))
    monkeypatch.setenv("HELPDESK_TONE_TIMEOUT_S", "60")
    run = CliRunner().invoke(_cli(), ["rewrite", HELDOUT[1], "--json"])
    assert run.exit_code == 0, run.output
    printed = json.loads(run.stdout)
    assert set(printed) == {"input", "output", "guard_passed", "fallback", "ms"}
    assert printed["input"] == HELDOUT[1]
    assert printed["fallback"] != printed["guard_passed"]


def _copied_word_pairs(source: str, reply: str) -> float:
    """The share of the reply's consecutive word pairs that also occur in the source."""
    pairs = lambda text: list(zip(text.split(), text.split()[1:], strict=False))  # noqa: E731
    theirs = set(pairs(source))
    ours = pairs(reply)
    return sum(pair in theirs for pair in ours) / max(1, len(ours))


@needs_adapter
@pytest.mark.slow
def test_a_strong_copy_bias_keeps_more_of_the_answers_wording(rewriter):
    texts = HELDOUT[:4]
    rewriter.copy_bias = 0.0
    plain = [_copied_word_pairs(t, rewriter.generate(t).text) for t in texts]
    rewriter.copy_bias = 12.0
    copying = [_copied_word_pairs(t, rewriter.generate(t).text) for t in texts]
    assert sum(copying) > sum(plain), (plain, copying)
