"""The knowledge base: sources, chunking, embeddings, the hybrid index, sync and its schedule."""
