"""What one ingest run did, on one screen (also the layout of ``pipeline status``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from pipeline.ingest.parsed import UNCHANGED


@dataclass
class IngestSummary:
    """What one ingest run did, counted from the warehouse at the end of the run (so a file loaded ``ok``
    and later demoted to ``duplicate`` by a richer copy counts once, as ``duplicate``).

    ``files`` counts the files this run wrote by their final status (``unchanged`` = already in the
    warehouse with the same content, not read); ``sports`` counts the activities they hold by sport.
    ``removed_files`` / ``removed_athletes``: what reconciliation with data/raw deleted; ``promoted``:
    files read again because the data they duplicated was removed.
    """

    files: Counter = field(default_factory=Counter)
    sports: Counter = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_samples: int = 0
    n_strength_sessions: int = 0
    athletes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    removed_athletes: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)
    # Largest peak RSS of a parser process (MB), as each worker reports it; None when parsing ran in
    # this process (jobs=1) or the platform cannot tell. Workers are forkserver children, so the
    # caller's RUSAGE_CHILDREN never sees them.
    worker_peak_rss_mb: float | None = None
    # Files loaded in batches (one transaction per batch; pipeline.ingest.load_batch), not rendered: for
    # the bench and the tests, which check that batching happens.
    n_batched: int = 0

    def render(self) -> str:
        """One screen: files by status, activities by sport, errors (and skips) with reasons."""
        extra = [f"samples loaded: {self.n_samples}", f"athletes: {', '.join(self.athletes) or '-'}"]
        if self.n_strength_sessions:
            extra.append(f"strength sessions loaded: {self.n_strength_sessions}")
        if self.removed_files:
            shown = ", ".join(self.removed_files[:3]) + (", ..." if len(self.removed_files) > 3 else "")
            extra.append(f"removed: {len(self.removed_files)} file(s) no longer in data/raw and what they held "
                         f"({shown})")
        if self.removed_athletes:
            extra.append(f"removed athlete(s): {', '.join(self.removed_athletes)} (folder gone: every staging and "
                         "analysis row deleted)")
        if self.promoted:
            extra.append(f"read again: {len(self.promoted)} file(s) that duplicated removed data (now loaded in "
                         "its place)")
        return render_summary("Ingest", self.files, self.sports, self.errors, self.skipped, extra=extra + self.notes)


def render_summary(title: str, files: Counter, sports: Counter, errors: list[tuple[str, str]],
                   skipped: list[tuple[str, str]], extra: list[str] | None = None, max_listed: int = 12) -> str:
    """Shared one-screen layout of ``pipeline ingest`` and ``pipeline status``."""
    total = sum(files.values())
    lines = [f"{title}: {total} file(s)"]
    order = ["ok", "duplicate", "skipped", "error", UNCHANGED]
    lines.append("  files:      " + ", ".join(f"{k} {files[k]}" for k in order if files.get(k))
                 if total else "  files:      none")
    lines.append("  activities: " + (", ".join(f"{s} {n}" for s, n in sorted(sports.items(), key=lambda kv: (-kv[1], kv[0])))
                                     or "none"))
    for line in extra or []:
        lines.append(f"  {line}")
    for label, items in (("errors", errors), ("skipped", skipped)):
        if items:
            lines.append(f"  {label}:")
            for path, message in items[:max_listed]:
                lines.append(f"    {path}: {message}")
            if len(items) > max_listed:
                lines.append(f"    ... and {len(items) - max_listed} more (pipeline sql \"SELECT path, message "
                             f"FROM source_files WHERE status = '{label.rstrip('s') if label == 'errors' else 'skipped'}'\")")
    return "\n".join(lines)
