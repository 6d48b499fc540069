"""Stage 3: multi-task instruction tuning and honest evaluation (reference §4)."""
