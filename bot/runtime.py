"""Builds the knowledge base and its sources from Settings; the one place settings become objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.answer.decide import AnswerPolicy
from bot.answer.extractive import ExtractiveGenerator
from bot.answer.generators import ChatModelGenerator, openai_chat_model
from bot.chain import RagChain
from bot.journal import Journal
from bot.retriever import KnowledgeRetriever
from bot.service import HelpdeskBot
from bot.settings import Settings
from knowledge.backend import FilesBackend, IndexBackend
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker
from knowledge.embeddings import embedding_model_name, load_embeddings, load_tokenizer, max_input_tokens
from knowledge.sources import Source, SourceOptions, open_source
from knowledge.sources.learnt import LearntAnswers

if TYPE_CHECKING:
    from bot.pg_journal import PostgresJournal


def open_knowledge_base(settings: Settings, backend: IndexBackend | None = None) -> KnowledgeBase:
    """The knowledge base in the configured data directory or database, with the configured embedding model."""
    embeddings = load_embeddings(settings.embedding_model, settings.embedding_dtype)
    chunker = make_chunker(settings)
    return KnowledgeBase(
        settings.data_dir,
        embeddings,
        chunker,
        embedding_model_name(settings.embedding_model),
        backend or index_backend(settings),
    )


def index_backend(settings: Settings) -> IndexBackend:
    """Where index versions live: PostgreSQL when HELPDESK_DATABASE_URL is set, else the data directory."""
    if settings.database_url is None:
        return FilesBackend.in_data_dir(settings.data_dir)
    try:
        from knowledge.postgres import PostgresBackend
    except ImportError as error:
        msg = (
            f"HELPDESK_DATABASE_URL is set but {error.name} is not installed: "
            "run `pip install 'helpdesk-bot[postgres]'`, or unset HELPDESK_DATABASE_URL"
        )
        raise RuntimeError(msg) from None
    return PostgresBackend(settings.database_url.get_secret_value())


def make_chunker(settings: Settings) -> Chunker:
    """Passages sized in the embedding model's tokens (so none is truncated), or in characters."""
    if not settings.chunk_tokens:
        return Chunker(settings.chunk_size, settings.chunk_overlap)
    # The model reads [CLS] and [SEP] around the text; they take two of its input positions.
    limit = max_input_tokens(settings.embedding_model) - 2
    size = min(settings.chunk_tokens, limit)
    tokenizer = load_tokenizer(settings.embedding_model)
    return Chunker(size, settings.chunk_overlap_tokens, tokenizer=tokenizer, document_tokens=limit)


def open_sources(settings: Settings, specs: list[str] | None = None) -> list[Source]:
    """Sources for the given specs, or the configured ones and the answers learnt from people."""
    options = SourceOptions(
        max_bytes=int(settings.max_file_mb * 1024 * 1024),
        web_concurrency=settings.web_concurrency,
        web_timeout_s=settings.web_timeout_s,
        accounts=settings.platform_accounts(),
    )
    if specs:
        return [open_source(spec, options) for spec in specs]
    configured = [open_source(spec, options) for spec in settings.source_specs()]
    return [*configured, LearntAnswers.in_data_dir(settings.data_dir)]


def build_bot(settings: Settings, knowledge_base: KnowledgeBase | None = None) -> HelpdeskBot:
    """The helpdesk bot with the configured retrieval, generator and refusal policy."""
    kb = knowledge_base or open_knowledge_base(settings)
    retriever = KnowledgeRetriever(
        knowledge_base=kb,
        k=settings.top_k,
        mode=settings.retrieval_mode,
        keyword_weight=settings.keyword_weight,
    )
    writer, judge = _writer_and_judge(settings, kb)
    policy = AnswerPolicy(
        min_confidence=settings.min_confidence,
        min_answerability=settings.min_answerability,
        min_support=settings.min_support,
    )
    from bot.voice.rewriter import ToneRewriter

    chain = RagChain(retriever, writer, policy, judge=judge, tone=ToneRewriter.from_settings(settings))
    return HelpdeskBot(chain, open_journal(settings))


def open_journal(settings: Settings) -> Journal | PostgresJournal:
    """The journal of questions, answers, votes and hand-offs: in PostgreSQL with HELPDESK_DATABASE_URL
    (shared by replicas), else in the data directory."""
    if settings.database_url is None:
        return Journal(settings.data_dir / "journal.sqlite3")
    from bot.pg_journal import PostgresJournal
    from knowledge.database import Database

    return PostgresJournal(Database(settings.database_url.get_secret_value()))


def _writer_and_judge(settings: Settings, kb: KnowledgeBase):
    """The configured answer writer, and the judge of answerability where the writer's model offers one."""
    if settings.generator == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        model = openai_chat_model(
            settings.openai_base_url, settings.openai_model, key, settings.generator_timeout_s
        )
        return ChatModelGenerator(model, "openai"), None
    if settings.generator == "local":
        from bot.answer.local_model import LocalAnswerModel
        from bot.answer.model_file import QWEN_1_5B, model_path
        from bot.answer.selector import REPLY_GRAMMAR, ExcerptSelector

        cache = settings.model_cache_dir or settings.data_dir / "models"
        model = LocalAnswerModel(lambda: model_path(QWEN_1_5B, cache), settings.answer_threads, REPLY_GRAMMAR)
        selector = ExcerptSelector(model)
        return selector, selector
    return ExtractiveGenerator(kb.embeddings, kb.embed_query), None
