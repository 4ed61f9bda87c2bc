"""The tone model on llama.cpp: the adapter merged once; greedy and beam search agree with transformers."""

from __future__ import annotations

import shutil

import gguf
import numpy as np
import pytest
import sacrebleu
from safetensors.numpy import save_file
from test_tuning import PAIRS, converted_base_model, tone_data_dir  # noqa: F401  (fixtures)

from bot.voice.beam import BeamSearch
from bot.voice.llama import lora_deltas, tuned_gguf
from bot.voice.model import ADAPTER_CONFIG, ADAPTER_WEIGHTS, BUNDLED_ADAPTER, packaged_gguf
from bot.voice.rewriter import ToneRewriter, resolve_backend
from bot.voice.tuning import load_pairs

HELDOUT = [p.input for p in load_pairs(PAIRS) if p.split == "heldout"]


def test_the_adapter_is_merged_once_per_content(tmp_path):
    merged = tuned_gguf(BUNDLED_ADAPTER, tmp_path, packaged_gguf())
    base = gguf.GGUFReader(str(packaged_gguf()))
    reader = gguf.GGUFReader(str(merged))
    assert [t.name for t in reader.tensors] == [t.name for t in base.tensors]
    assert (
        reader.fields["tokenizer.chat_template"].contents()
        == base.fields["tokenizer.chat_template"].contents()
    )
    eight_bit = gguf.GGMLQuantizationType.Q8_0
    adapted = {t.name: t for t in reader.tensors if t.tensor_type == eight_bit and t.name.startswith("blk.")}
    assert len(adapted) == 30 * 7
    # Each adapted weight is the packaged weight plus the adapter's scale * B @ A, to 8-bit precision: the
    # weight moved by exactly the adapter's change (and not by a shuffled copy of it), give or take rounding.
    deltas = lora_deltas(BUNDLED_ADAPTER, 9, 3)
    for name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.ffn_down.weight"):
        original = next(t for t in base.tensors if t.name == name)
        before = gguf.quants.dequantize(original.data, original.tensor_type)
        change = gguf.quants.dequantize(adapted[name].data, adapted[name].tensor_type) - before
        delta = deltas[name]
        assert np.linalg.norm(change - delta) < 0.01 * np.linalg.norm(before)
        assert (change * delta).sum() / (delta**2).sum() == pytest.approx(1.0, abs=0.05)
        assert abs((change * np.roll(delta, 1, axis=0)).sum() / (delta**2).sum()) < 0.3
    stamp = merged.stat().st_mtime_ns
    assert tuned_gguf(BUNDLED_ADAPTER, tmp_path, packaged_gguf()) == merged
    assert merged.stat().st_mtime_ns == stamp
    other = tmp_path / "other-adapter"
    shutil.copytree(BUNDLED_ADAPTER, other)
    (other / ADAPTER_CONFIG).write_text((other / ADAPTER_CONFIG).read_text() + "\n")
    assert tuned_gguf(other, tmp_path, packaged_gguf()) != merged
    assert not list(merged.parent.glob(".tone-*"))


def test_an_adapter_of_other_weights_is_refused_clearly(tmp_path):
    adapter = tmp_path / "odd"
    shutil.copytree(BUNDLED_ADAPTER, adapter)
    save_file(
        {"base_model.model.lm_head.lora_A.weight": np.zeros((8, 576), np.float16)}, adapter / ADAPTER_WEIGHTS
    )
    with pytest.raises(ValueError, match="helpdesk tune"):
        tuned_gguf(adapter, tmp_path, packaged_gguf())
    assert not list((tmp_path / "models").glob("*.gguf"))


def test_backends_are_checked_by_name():
    assert resolve_backend("auto") == "llama.cpp"
    assert resolve_backend("transformers") == "transformers"
    with pytest.raises(ValueError, match=r"llama\.cpp, transformers"):
        resolve_backend("onnx")


@pytest.mark.slow
async def test_llama_cpp_rewrites_agree_with_the_transformers_model(tone_data_dir):  # noqa: F811
    fast = ToneRewriter(BUNDLED_ADAPTER, tone_data_dir, backend="llama.cpp")
    reference = ToneRewriter(BUNDLED_ADAPTER, tone_data_dir, backend="transformers")
    base = ToneRewriter(None, tone_data_dir, backend="llama.cpp")
    texts = HELDOUT[:3]
    fast_out = [fast.generate(t).text for t in texts]
    reference_out = [reference.generate(t).text for t in texts]
    base_out = [base.generate(t).text for t in texts]
    # The same weights on both engines: near-identical greedy text, unlike the base model without the adapter.
    agreement = sacrebleu.corpus_chrf(fast_out, [reference_out]).score
    assert agreement >= 80, (fast_out, reference_out)
    assert sacrebleu.corpus_chrf(base_out, [reference_out]).score < agreement - 10


def test_beam_search_needs_two_candidates_or_more():
    with pytest.raises(ValueError, match="greedy"):
        BeamSearch(None, 1)


@pytest.mark.slow
async def test_llama_cpp_beam_search_agrees_with_transformers_beam_search(tone_data_dir):  # noqa: F811
    fast = ToneRewriter(BUNDLED_ADAPTER, tone_data_dir, backend="llama.cpp", beams=3)
    reference = ToneRewriter(BUNDLED_ADAPTER, tone_data_dir, backend="transformers", beams=3)
    greedy = ToneRewriter(BUNDLED_ADAPTER, tone_data_dir, backend="llama.cpp")
    texts = HELDOUT[:2]
    fast_out = [fast.generate(t) for t in texts]
    reference_out = [reference.generate(t).text for t in texts]
    assert all(g.finished for g in fast_out)
    agreement = sacrebleu.corpus_chrf([g.text for g in fast_out], [reference_out]).score
    assert agreement >= 80, (fast_out, reference_out)
    # Beam search is a different search: it does not just repeat greedy decoding.
    assert [g.text for g in fast_out] != [greedy.generate(t).text for t in texts]
    # Out of time, it stops with the best reply so far, unfinished.
    assert not fast.generate(texts[0], max_seconds=0.05).finished
