"""Generator paths of the chain with LangChain's fake chat model and a fake OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from bot.answer.decide import AnswerPolicy
from bot.answer.generators import ChatModelGenerator, openai_chat_model
from bot.chain import RagChain
from bot.models import Question
from bot.retriever import KnowledgeRetriever


def _chain(helpdesk_bot, model) -> RagChain:
    kb = helpdesk_bot.chain.retriever.knowledge_base
    retriever = KnowledgeRetriever(knowledge_base=kb, k=3, mode="bm25")
    policy = AnswerPolicy(min_confidence=0.0, min_support=-1.0)
    return RagChain(retriever, ChatModelGenerator(model, "fake"), policy)


def _model(*replies: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=r) for r in replies]))


async def _ask(chain: RagChain, text: str, on_delta=None):
    return await chain.runnable.ainvoke({"question": Question(text), "on_delta": on_delta})


async def test_a_grounded_generated_answer_is_posted(helpdesk_bot):
    chain = _chain(helpdesk_bot, _model("Refunds are issued within 14 days of a request [1]."))
    deltas = []

    async def on_delta(text):
        deltas.append(text)

    answer = await _ask(chain, "How long do refunds take?", on_delta)
    assert answer.text == "Refunds are issued within 14 days of a request [1]."
    assert answer.generator == "fake" and not answer.refused
    assert answer.citations[0].doc_id == "billing/refunds"
    assert "".join(deltas).startswith("Refunds are issued")  # the fake model streams word by word
    assert len(deltas) > 1


async def test_an_invented_number_is_removed_from_a_generated_answer(helpdesk_bot):
    reply = (
        "Refunds are issued within 14 days of a request [1]. Annual plans are refunded within 90 days [1]."
    )
    answer = await _ask(_chain(helpdesk_bot, _model(reply)), "How long do refunds take?")
    assert "90" not in answer.text and "14 days" in answer.text


async def test_a_wrongly_cited_answer_is_not_posted(helpdesk_bot):
    reply = "The reset link expires after 60 minutes [1]."  # [1] is the refunds article here
    answer = await _ask(_chain(helpdesk_bot, _model(reply)), "refunds request days")
    assert answer.refused
    assert answer.citations[0].doc_id == "billing/refunds"
    assert "60 minutes" not in answer.text


async def test_the_model_saying_not_in_context_is_a_refusal(helpdesk_bot):
    answer = await _ask(_chain(helpdesk_bot, _model("NOT_IN_CONTEXT")), "refunds for annual plans?")
    assert answer.refused
    assert answer.text.startswith("I couldn't find an answer to this in the knowledge base.")
    assert "These might help: Refunds [1]" in answer.text


async def test_low_retrieval_confidence_is_a_refusal_without_generating(helpdesk_bot):
    kb = helpdesk_bot.chain.retriever.knowledge_base
    retriever = KnowledgeRetriever(knowledge_base=kb, k=3, mode="bm25")
    model = _model()  # would raise StopIteration if called
    chain = RagChain(retriever, ChatModelGenerator(model, "fake"), AnswerPolicy(min_confidence=0.9))
    answer = await _ask(chain, "quickbooks integration sync settings")
    assert answer.refused and "generate" not in answer.timings_ms


class FakeOpenAI:
    """An OpenAI-compatible chat completions endpoint on 127.0.0.1 that streams a fixed reply."""

    def __init__(self, reply: str):
        self.reply = reply
        self.requests: list[dict] = []

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"body": body, "auth": request.headers.get("Authorization")})
        if not body.get("stream"):
            message = {"role": "assistant", "content": self.reply}
            return web.json_response(
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in self.reply.split(" "):
            chunk = {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response


@pytest.fixture
async def fake_openai():
    fake = FakeOpenAI("Annual plans are refunded pro rata for the unused months [1].")
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"
    yield fake
    await runner.cleanup()


async def test_openai_compatible_endpoint_with_streaming(helpdesk_bot, fake_openai):
    model = openai_chat_model(fake_openai.url, "local-model", "sk-test", timeout_s=10)
    deltas = []

    async def on_delta(text):
        deltas.append(text)

    answer = await _ask(_chain(helpdesk_bot, model), "Are annual plans refunded?", on_delta)
    assert answer.text == "Annual plans are refunded pro rata for the unused months [1]."
    assert answer.citations[0].doc_id == "billing/refunds" and not answer.refused
    assert len(deltas) >= 5
    request = fake_openai.requests[0]
    assert request["auth"] == "Bearer sk-test" and request["body"]["model"] == "local-model"
    assert request["body"]["stream"] is True
    system, human = request["body"]["messages"]
    assert "ONLY the numbered context passages" in system["content"]
    assert "[1] Refunds" in human["content"] and "Question: Are annual plans refunded?" in human["content"]
