"""Analysis: clean runs, running-economy metrics, weekly summaries and block effects (pure functions)."""
