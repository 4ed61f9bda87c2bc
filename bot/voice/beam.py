"""Beam search for the tone model on llama.cpp: a few candidate replies decoded side by side, one cache each."""

from __future__ import annotations

import time

import numpy as np


class BeamSearch:
    """Keeps the `width` most likely replies at every step, like transformers' beam search (length penalty 1).

    Each candidate lives in its own sequence of one llama.cpp context, so a step decodes all of them in one
    batch; the prompt is decoded once and shared. A second set of sequences is scratch space for reordering.
    """

    def __init__(self, llama, width: int):
        import llama_cpp
        from llama_cpp import _internals

        if width < 2:
            msg = f"Beam search needs a width of 2 or more, not {width}; width 1 is greedy decoding"
            raise ValueError(msg)
        self._api = llama_cpp
        self.width = width
        params = llama_cpp.llama_context_default_params()
        for name, _ in params._fields_:
            setattr(params, name, getattr(llama.context_params, name))
        # Every candidate may grow a reply of its own beside the shared prompt.
        params.n_ctx = llama.context_params.n_ctx * width
        params.n_seq_max = 2 * width
        params.kv_unified = True
        params.n_threads_batch = params.n_threads
        self._context = _internals.LlamaContext(model=llama._model, params=params, verbose=False)
        self._batch = _internals.LlamaBatch(
            n_tokens=params.n_batch, embd=0, n_seq_max=2 * width, verbose=False
        )
        self._batch_size = params.n_batch
        self._vocab = llama.n_vocab()

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """Decode (token, position, sequence, wants logits) entries in one batch."""
        batch = self._batch.batch
        batch.n_tokens = len(entries)
        for i, (token, position, sequence, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = position
            batch.seq_id[i][0] = sequence
            batch.n_seq_id[i] = 1
            batch.logits[i] = logits
        self._context.decode(self._batch)

    def _log_probs(self, index: int) -> np.ndarray:
        """Log-probabilities of the next token after the batch entry `index`."""
        logits = np.ctypeslib.as_array(self._context.get_logits_ith(index), shape=(self._vocab,))
        logits = logits.astype(np.float64)
        top = logits.max()
        return logits - top - np.log(np.exp(logits - top).sum())

    def _copy(self, source: int, target: int) -> None:
        memory = self._context.memory
        self._api.llama_memory_seq_rm(memory, target, -1, -1)
        self._api.llama_memory_seq_cp(memory, source, target, -1, -1)

    def _reorder(self, parents: list[int]) -> None:
        """Give candidate k the cache of candidate parents[k], through the scratch sequences."""
        if parents == list(range(self.width)):
            return
        for k, parent in enumerate(parents):
            self._copy(parent, self.width + k)
        for k in range(self.width):
            self._copy(self.width + k, k)
            self._api.llama_memory_seq_rm(self._context.memory, self.width + k, -1, -1)

    def generate(
        self, prompt: list[int], eos: int, max_new_tokens: int, deadline: float | None
    ) -> tuple[list[int], bool]:
        """The most likely reply (without the end token), and whether it ended; stops early at `deadline`."""
        width = self.width
        self._api.llama_memory_clear(self._context.memory, True)
        for start in range(0, len(prompt), self._batch_size):
            part = prompt[start : start + self._batch_size]
            self._decode([(t, start + i, 0, start + i == len(prompt) - 1) for i, t in enumerate(part)])
        first = self._log_probs(len(part) - 1)
        for k in range(1, width):
            self._copy(0, k)
        # Only the first candidate is live at the start, so the first step does not pick one token `width` times.
        scores = np.full(width, -np.inf)
        scores[0] = 0.0
        rows = [first] * width
        replies: list[list[int]] = [[] for _ in range(width)]
        finished: list[tuple[float, list[int]]] = []
        for step in range(1, max_new_tokens + 1):
            totals = np.stack([rows[k] + scores[k] for k in range(width)]).ravel()
            best = np.argpartition(-totals, 2 * width)[: 2 * width]
            best = best[np.argsort(-totals[best])]
            live: list[tuple[int, int, float]] = []
            for rank, flat in enumerate(best.tolist()):
                parent, token = divmod(flat, self._vocab)
                if token == eos:
                    if rank < width:
                        finished.append((totals[flat] / step, replies[parent]))
                    continue
                live.append((parent, token, float(totals[flat])))
                if len(live) == width:
                    break
            finished = sorted(finished, key=lambda f: -f[0])[:width]
            # Done once `width` replies have ended and no live one scores better than the worst of them.
            if len(finished) == width and live[0][2] / step <= finished[-1][0]:
                return finished[0][1], True
            replies = [[*replies[parent], token] for parent, token, _ in live]
            if deadline is not None and time.monotonic() >= deadline:
                return replies[0], False
            self._reorder([parent for parent, _, _ in live])
            scores = np.array([score for _, _, score in live])
            position = len(prompt) + step - 1
            self._decode([(token, position, k, True) for k, (_, token, _) in enumerate(live)])
            rows = [self._log_probs(k) for k in range(width)]
        if finished:
            return finished[0][1], True
        return replies[0], False
