"""Report: per-athlete HTML + PNG and the squad overview, read only from the analysis tables."""
