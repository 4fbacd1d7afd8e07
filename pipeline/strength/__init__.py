"""Strength logs (Strong, Hevy, FitNotes, generic CSV, strength FIT) and strength-block detection."""
