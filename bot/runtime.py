"""Builds the knowledge base and its sources from Settings; the one place settings become objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.answer.decide import AnswerPolicy
from bot.answer.extractive import ExtractiveGenerator
from bot.answer.generators import ChatModelGenerator, openai_chat_model
from bot.chain import RagChain
from bot.journal import Journal, SqliteJournal
from bot.retriever import KnowledgeRetriever
from bot.service import HelpdeskBot
from bot.settings import Settings
from knowledge.backend import FilesBackend, IndexBackend
from knowledge.base import KnowledgeBase
from knowledge.chunking import Chunker
from knowledge.embeddings import embedding_model_name, load_embeddings, load_tokenizer, max_input_tokens
from knowledge.sources import Source, SourceOptions, open_source
from knowledge.sources.learnt import LearntAnswers, LearntStore

if TYPE_CHECKING:
    from knowledge.database import Database


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
    database = open_database(settings)  # first: says what to install when the postgres extra is missing
    from knowledge.postgres import PostgresBackend

    return PostgresBackend(database, settings.database_build_memory)


def open_database(settings: Settings) -> Database:
    """The database of HELPDESK_DATABASE_URL with its pool of connections: one per Settings, so one per
    process (settings are read once, at the edge), whichever part of the bot asks."""
    if settings.database_url is None:
        msg = "HELPDESK_DATABASE_URL is not set: there is no database to open"
        raise RuntimeError(msg)
    if settings._database is None:
        try:
            from knowledge.database import POOL_SIZE, Database
        except ImportError as error:
            msg = (
                f"HELPDESK_DATABASE_URL is set but {error.name} is not installed: "
                "run `pip install 'helpdesk-bot[postgres]'`, or unset HELPDESK_DATABASE_URL"
            )
            raise RuntimeError(msg) from None
        url = settings.database_url.get_secret_value()
        settings._database = Database(url, settings.database_pool_size or POOL_SIZE)
    return settings._database


async def close_database(settings: Settings) -> None:
    """Close the connections of the settings' database, if one was opened."""
    if settings._database is not None:
        await settings._database.close()


def open_learnt_answers(settings: Settings) -> LearntStore:
    """The answers learnt from people: in PostgreSQL with HELPDESK_DATABASE_URL (shared by replicas), else
    in the data directory."""
    if settings.database_url is None:
        return LearntAnswers.in_data_dir(settings.data_dir)
    from knowledge.sources.pg_learnt import PostgresLearntAnswers

    return PostgresLearntAnswers(open_database(settings))


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
    return [*configured, open_learnt_answers(settings)]


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
        min_scored_confidence=settings.min_scored_confidence,
        min_answerability=settings.min_answerability,
        min_answer_score=settings.min_answer_score,
        min_support=settings.min_support,
    )
    from bot.voice.rewriter import ToneRewriter

    chain = RagChain(retriever, writer, policy, judge=judge, tone=ToneRewriter.from_settings(settings))
    return HelpdeskBot(chain, open_journal(settings))


def open_journal(settings: Settings) -> Journal:
    """The journal of questions, answers, votes and hand-offs: in PostgreSQL with HELPDESK_DATABASE_URL
    (shared by replicas), else in the data directory."""
    if settings.database_url is None:
        return SqliteJournal(settings.data_dir / "journal.sqlite3")
    from bot.pg_journal import PostgresJournal

    return PostgresJournal(open_database(settings))


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
