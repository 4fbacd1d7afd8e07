"""Errors that reach the user as one clear line (``Error: ...``) and exit code 1."""


class PipelineError(Exception):
    """A problem the user can act on; the CLI prints ``Error: <message>`` without a traceback."""


class WorkspaceBusy(PipelineError):
    """Another pipeline process holds the workspace lock."""
