"""fnas: fast sampling-based neural architecture search (FNAS)."""
