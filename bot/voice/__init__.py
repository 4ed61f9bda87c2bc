"""The brand voice: a LoRA-tuned small model rewrites answers, and a guard keeps every fact."""
