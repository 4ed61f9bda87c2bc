"""The tone model on llama.cpp: the adapter converted once, applied, and agreeing with the transformers path."""

from __future__ import annotations

import shutil

import gguf
import numpy as np
import pytest
import sacrebleu
from safetensors.numpy import save_file
from test_tuning import PAIRS, converted_base_model, tone_data_dir  # noqa: F401  (fixtures)

from bot.tone import ToneRewriter, resolve_backend
from bot.tone_llama import adapter_gguf
from bot.tone_model import ADAPTER_CONFIG, ADAPTER_WEIGHTS, BUNDLED_ADAPTER, packaged_gguf
from bot.tuning import load_pairs

HELDOUT = [p.input for p in load_pairs(PAIRS) if p.split == "heldout"]


def test_the_adapter_is_converted_once_per_content(tmp_path):
    converted = adapter_gguf(BUNDLED_ADAPTER, tmp_path, packaged_gguf())
    reader = gguf.GGUFReader(str(converted))
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 16.0
    names = {t.name for t in reader.tensors}
    assert "blk.0.attn_q.weight.lora_a" in names and "blk.29.ffn_down.weight.lora_b" in names
    assert len(names) == 30 * 7 * 2
    stamp = converted.stat().st_mtime_ns
    assert adapter_gguf(BUNDLED_ADAPTER, tmp_path, packaged_gguf()) == converted
    assert converted.stat().st_mtime_ns == stamp
    other = tmp_path / "other-adapter"
    shutil.copytree(BUNDLED_ADAPTER, other)
    (other / ADAPTER_CONFIG).write_text((other / ADAPTER_CONFIG).read_text().replace('"r": 8', '"r": 8 '))
    assert adapter_gguf(other, tmp_path, packaged_gguf()) != converted
    assert not list(converted.parent.glob(".tone-lora-*"))


def test_an_adapter_of_other_weights_is_refused_clearly(tmp_path):
    adapter = tmp_path / "odd"
    shutil.copytree(BUNDLED_ADAPTER, adapter)
    save_file(
        {"base_model.model.lm_head.lora_A.weight": np.zeros((8, 576), np.float16)}, adapter / ADAPTER_WEIGHTS
    )
    with pytest.raises(ValueError, match="helpdesk tune"):
        adapter_gguf(adapter, tmp_path, packaged_gguf())
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
