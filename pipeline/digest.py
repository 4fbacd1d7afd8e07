"""Digests (sha256, hex) of what a result was computed from: source code, frames, named parts.

The incremental stages compare a stored digest of their inputs with the current one and redo only what
changed: the analysis per athlete (:mod:`pipeline.analyze.fingerprint`), the per-run reductions
(:mod:`pipeline.analyze.run_cache`) and the report per page (:mod:`pipeline.report.manifest`). Their rules
are written down in docs/scaling.md ("Re-runs").
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import pandas as pd

import pipeline

PACKAGE_DIR = Path(pipeline.__file__).resolve().parent
# Files whose bytes are code: a change to any of them can change what the code computes.
CODE_SUFFIXES = (".py", ".sql", ".j2", ".css", ".html")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=None)
def code_digest(*parts: str) -> str:
    """Digest of the pipeline's version and the source files of ``parts`` (package-relative files or folders,
    e.g. ``"analyze"``, ``"formulas.py"``).

    Why the code and not only the version: a development checkout changes code without changing the version;
    results computed by other code must not pass as current. Cached per process (code does not change
    while it runs).
    """
    h = hashlib.sha256(f"pipeline {pipeline.__version__}\n".encode())
    for part in sorted(parts):
        root = PACKAGE_DIR / part
        files = sorted(p for p in (root.rglob("*") if root.is_dir() else [root])
                       if p.is_file() and p.suffix in CODE_SUFFIXES and "__pycache__" not in p.parts)
        for f in files:
            h.update(f.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
            h.update(sha256_hex(f.read_bytes()).encode() + b"\n")
    return h.hexdigest()


def frame_digest(frame: pd.DataFrame) -> str:
    """Digest of a DataFrame's values, column names and dtypes (row order matters; the index does not)."""
    h = hashlib.sha256(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    for name in frame.columns:
        col = frame[name]
        try:
            values = pd.util.hash_pandas_object(col, index=False)
        except TypeError:   # unhashable cells (lists, dicts): their text stands for them
            values = pd.util.hash_pandas_object(col.map(repr), index=False)
        h.update(values.to_numpy().tobytes())
    return h.hexdigest()


def parts_digest(parts: dict[str, str | None]) -> str:
    """One digest of named parts (each itself a digest or a short text); the names are part of it."""
    return sha256_hex(json.dumps(parts, sort_keys=True).encode())


def file_digest(path: Path) -> str | None:
    """sha256 of a file's bytes; None when it does not exist (absence is a state too)."""
    try:
        return sha256_hex(path.read_bytes())
    except FileNotFoundError:
        return None
