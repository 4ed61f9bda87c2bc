"""Whether to answer at all: the retrieval confidence, then a judge's reading of the passages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from langchain_core.documents import Document

# Fitted with `bench/fit_decision.py` on the three dev sets together (the Python FAQ, LibreOffice Help and
# the sample knowledge base; see docs/benchmarks.md), maximising the mean of their answer scores, correct −
# wrong. The surface is flat near the top: confidence 0.52 to 0.60 with answerability 0.68 were within 0.004
# of each other on one run and within 0.009 (3 LibreOffice answers) on the next; 0.60 is the threshold
# calibrated for retrieval alone. A further check of the written answer by the same model did not raise the
# score (a support threshold of 0 won), so there is none.
MIN_CONFIDENCE = 0.60
MIN_ANSWERABILITY = 0.68
# The extractive writer's support is its best sentence's similarity to the question; no floor helped.
MIN_SUPPORT = 0.0
# The local writer's support is the share of the words of its unshown sketch that the excerpts contain:
# a sketch written from the model's own knowledge rather than the excerpts means they do not answer.
MIN_SKETCH_SUPPORT = 0.0


class Judge(Protocol):
    """Reads the passages a writer would answer from and says how likely they answer the question."""

    async def load(self) -> None:
        """Load what judging needs (a model), off the event loop."""
        ...

    async def answerability(self, query: str, documents: list[Document]) -> float:
        """Probability (0–1) that the passages answer the question."""
        ...


@dataclass(frozen=True)
class AnswerPolicy:
    """When to refuse: retrieval confidence, the judge's answerability and the writer's support below these."""

    min_confidence: float = MIN_CONFIDENCE
    min_answerability: float = MIN_ANSWERABILITY
    min_support: float = MIN_SUPPORT
    refusal_sources: int = 3


@dataclass(frozen=True)
class Decision:
    """Answer or refuse, why, and the judge's answerability when it was asked."""

    answer: bool
    reason: str
    answerability: float | None = None


async def decide(
    question: str,
    query: str,
    documents: list[Document],
    confidence: float,
    policy: AnswerPolicy,
    judge: Judge | None = None,
) -> Decision:
    """Refuse when retrieval is unsure, or when the judge reads no answer in the passages."""
    if not documents or confidence < policy.min_confidence:
        return Decision(False, f"retrieval confidence {confidence:.2f} < {policy.min_confidence:.2f}")
    if judge is None:
        return Decision(True, "retrieval is confident")
    answerability = await judge.answerability(query, documents)
    if answerability < policy.min_answerability:
        reason = f"answerability {answerability:.2f} < {policy.min_answerability:.2f}"
        return Decision(False, reason, answerability)
    return Decision(True, "the passages answer it", answerability)
