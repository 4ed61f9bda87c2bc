"""Whether to answer at all: the retrieval confidence, then a judge's reading of the passages."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from langchain_core.documents import Document

# Below this retrieval confidence nothing is written when retrieval alone decides (no judge): the threshold
# calibrated for retrieval alone.
MIN_CONFIDENCE = 0.60
# With a judge, its floor: below it nothing is judged, above it the answer score decides. The lowest
# confidence the refusal was fitted on (the lowered runs answered from 0.50 up). Fitted above 0.50 rather
# than 0.60, the answer score carried over better to the set left out of the fit (mean 0.510 against 0.488;
# every set gained) and scored 0.551 against 0.542 in-sample; above 0.55, 0.499 and 0.539.
MIN_SCORED_CONFIDENCE = 0.50
# An extra floor on the judge's answerability alone (none by default: the answer score weighs it).
MIN_ANSWERABILITY = 0.0
# The answer score: a logistic model of how likely a written answer holds every fact asked for, from the
# retrieval confidence, the judge's answerability and the writer's support. Fitted with
# `bench/fit_decision.py` on the three dev sets together (the Python FAQ, LibreOffice Help and the sample
# knowledge base; see docs/benchmarks.md): the model on their answers above MIN_SCORED_CONFIDENCE, the
# threshold maximising the mean of their scores, correct − wrong (0.551, against 0.511 for the best pair of
# separate thresholds on the confidence and the answerability). Scored by a rule fitted on the other two sets
# alone, every set gains over the best pair of thresholds fitted the same way: LibreOffice Help 0.418
# against 0.409, the Python FAQ 0.529 against 0.403, the sample knowledge base 0.583 against 0.517.
ANSWER_SCORE_WEIGHTS = (4.528, 5.052, 1.629)
ANSWER_SCORE_INTERCEPT = -7.362
MIN_ANSWER_SCORE = 0.56
# A floor on the writer's support alone: none helped. The local writer's support (the share of the words of
# its unshown sketch that the excerpts contain) counts through the answer score instead; the extractive
# writer's is its best sentence's similarity to the question.
MIN_SUPPORT = 0.0


def answer_score(
    confidence: float,
    answerability: float,
    support: float,
    weights: tuple[float, float, float] = ANSWER_SCORE_WEIGHTS,
    intercept: float = ANSWER_SCORE_INTERCEPT,
) -> float:
    """How likely (0–1) an answer written from these passages holds every fact asked for."""
    logit = intercept + sum(w * x for w, x in zip(weights, (confidence, answerability, support), strict=True))
    return 1.0 / (1.0 + math.exp(-logit))


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
    """When to refuse: retrieval confidence (its own floor when a judge and the answer score decide above
    it), the judge's answerability, the answer score and the writer's support below these."""

    min_confidence: float = MIN_CONFIDENCE
    min_scored_confidence: float = MIN_SCORED_CONFIDENCE
    min_answerability: float = MIN_ANSWERABILITY
    min_answer_score: float = MIN_ANSWER_SCORE
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
    """Refuse when retrieval is unsure, or when the judge reads no answer in the passages.

    The answer score is known once the writer's support is; here it is taken at full support, so a question
    that no written answer could lift over the threshold is refused before anything is written.
    """
    floor = policy.min_confidence if judge is None else policy.min_scored_confidence
    if not documents or confidence < floor:
        return Decision(False, f"retrieval confidence {confidence:.2f} < {floor:.2f}")
    if judge is None:
        return Decision(True, "retrieval is confident")
    answerability = await judge.answerability(query, documents)
    if answerability < policy.min_answerability:
        reason = f"answerability {answerability:.2f} < {policy.min_answerability:.2f}"
        return Decision(False, reason, answerability)
    best_possible = answer_score(confidence, answerability, 1.0)
    if best_possible < policy.min_answer_score:
        reason = f"answer score at most {best_possible:.2f} < {policy.min_answer_score:.2f}"
        return Decision(False, reason, answerability)
    return Decision(True, "the passages answer it", answerability)
