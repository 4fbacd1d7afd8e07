"""Ingest: files under data/raw -> readers (pure, per file) -> loader (one transaction per file)."""
