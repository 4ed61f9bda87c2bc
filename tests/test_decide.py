"""Answer or refuse: retrieval confidence first, then the judge's reading of the passages; the named steps."""

from __future__ import annotations

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from bot.answer.decide import AnswerPolicy, answer_score, decide
from bot.answer.generators import ChatModelGenerator
from bot.chain import RagChain
from bot.models import Question
from bot.retriever import KnowledgeRetriever

PASSAGE = Document("Refunds are issued within 14 days.", metadata={"doc_id": "refunds", "title": "Refunds"})


class FixedJudge:
    """A judge that reads nothing and always gives the same answerability (fakes the model, not our code)."""

    def __init__(self, answerability: float):
        self.value = answerability
        self.calls = 0

    async def load(self):
        pass

    async def answerability(self, query, documents):
        self.calls += 1
        return self.value


async def test_low_confidence_refuses_without_asking_the_judge():
    judge = FixedJudge(0.99)
    policy = AnswerPolicy(min_confidence=0.6, min_scored_confidence=0.5, min_answer_score=0.0)
    decision = await decide("q", "q", [PASSAGE], 0.4, policy, judge)
    assert not decision.answer and judge.calls == 0
    assert decision.reason == "retrieval confidence 0.40 < 0.50"


async def test_with_a_judge_the_scored_floor_applies_and_without_one_the_plain_floor():
    policy = AnswerPolicy(min_confidence=0.6, min_scored_confidence=0.5, min_answer_score=0.0)
    judged = await decide("q", "q", [PASSAGE], 0.55, policy, FixedJudge(0.9))
    assert judged.answer and judged.answerability == 0.9
    alone = await decide("q", "q", [PASSAGE], 0.55, policy)
    assert not alone.answer and alone.reason == "retrieval confidence 0.55 < 0.60"


async def test_the_judge_decides_when_retrieval_is_confident():
    policy = AnswerPolicy(min_confidence=0.6, min_answerability=0.5)
    refused = await decide("q", "q", [PASSAGE], 0.8, policy, FixedJudge(0.3))
    assert not refused.answer and refused.answerability == 0.3
    answered = await decide("q", "q", [PASSAGE], 0.8, policy, FixedJudge(0.7))
    assert answered.answer and answered.answerability == 0.7


async def test_nothing_retrieved_is_a_refusal():
    assert not (await decide("q", "q", [], 1.0, AnswerPolicy(min_confidence=0.0))).answer


def _chain(helpdesk_bot, reply: str, judge) -> RagChain:
    kb = helpdesk_bot.chain.retriever.knowledge_base
    model = GenericFakeChatModel(messages=iter([AIMessage(content=reply)]))
    retriever = KnowledgeRetriever(knowledge_base=kb, k=3, mode="bm25")
    policy = AnswerPolicy(
        min_confidence=0.0,
        min_scored_confidence=0.0,
        min_answerability=0.5,
        min_answer_score=0.0,
        min_support=-1.0,
    )
    return RagChain(retriever, ChatModelGenerator(model, "fake"), policy, judge=judge)


async def test_a_judged_unanswerable_question_is_refused_before_writing(helpdesk_bot):
    chain = _chain(helpdesk_bot, "Refunds are issued within 14 days of a request.", FixedJudge(0.2))
    answer = await chain.runnable.ainvoke({"question": Question("are refunds paid out through paypal?")})
    assert answer.refused and answer.answerability == 0.2
    assert "generate" not in answer.timings_ms and "decide" in answer.timings_ms


async def test_an_uncited_generated_answer_is_cited_by_the_passage_that_backs_it(helpdesk_bot):
    chain = _chain(helpdesk_bot, "Refunds are issued within 14 days of a request.", FixedJudge(0.9))
    answer = await chain.runnable.ainvoke({"question": Question("How long do refunds take?")})
    assert answer.text == "Refunds are issued within 14 days of a request [1]."
    assert answer.citations[0].doc_id == "billing/refunds" and not answer.refused


class StepNames(BaseCallbackHandler):
    """Records the name of every runnable the chain starts, in order."""

    def __init__(self):
        self.names: list[str] = []

    def on_chain_start(self, serialized, inputs, **kwargs):
        self.names.append(kwargs.get("name") or "")


async def test_the_chain_is_a_pipeline_of_named_steps(helpdesk_bot):
    chain = _chain(helpdesk_bot, "Refunds are issued within 14 days of a request.", FixedJudge(0.9))
    recorder = StepNames()
    await chain.runnable.ainvoke(
        {"question": Question("How long do refunds take?")}, config={"callbacks": [recorder]}
    )
    steps = [name for name in recorder.names if name in ("retrieve", "decide", "write", "ground", "voice")]
    assert steps == ["retrieve", "decide", "write", "ground", "voice"]


async def test_a_question_no_written_answer_could_lift_over_the_answer_score_is_refused_before_writing():
    policy = AnswerPolicy(min_confidence=0.6, min_answer_score=0.9)
    judge = FixedJudge(0.7)
    refused = await decide("q", "q", [PASSAGE], 0.7, policy, judge)
    assert not refused.answer and refused.reason.startswith("answer score at most")
    assert answer_score(0.7, 0.7, 1.0) < 0.9 <= answer_score(1.0, 1.0, 1.0)
    assert (await decide("q", "q", [PASSAGE], 1.0, policy, FixedJudge(1.0))).answer


def test_the_answer_score_rises_with_each_signal():
    low = answer_score(0.6, 0.6, 0.5)
    assert answer_score(0.7, 0.6, 0.5) > low and answer_score(0.6, 0.7, 0.5) > low
    assert answer_score(0.6, 0.6, 0.6) > low and 0.0 < low < 1.0
