"""The answer layer: decide whether to answer, write the answer, ground it in its sources."""
