"""The answering core: settings, the RAG chain, citations, grounding, tone, and the command line."""
