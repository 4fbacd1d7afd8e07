"""The one parser of ``pipeline.toml`` sections (ground floor: every stage's settings use it).

A stage's settings are a frozen dataclass whose fields are the valid keys, each with a documented
default; :func:`settings_from_section` builds one from the stage's section and rejects unknown keys and
wrong types, so a typo in pipeline.toml never silently falls back to a default.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any, TypeVar

from pipeline.errors import PipelineError

Settings = TypeVar("Settings")


def settings_from_section(cls: type[Settings], section: Any, name: str) -> Settings:
    """The one parser of pipeline.toml sections: a frozen settings dataclass ``cls`` from ``[name]``.

    Every key must be a field of ``cls``; its value must have the type of the field's default (numbers
    finite; whole numbers for int fields; a list of the same length for tuple fields). The result's
    ``validate()`` then checks ranges. Any problem raises :class:`PipelineError` naming the section and
    key, so a typo never silently falls back to a default.
    """
    section = {} if section is None else section
    if not isinstance(section, dict):
        raise PipelineError(f"pipeline.toml: [{name}] must be a table of settings, got {section!r}")
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(section) - set(valid))
    if unknown:
        raise PipelineError(f"pipeline.toml [{name}]: unknown key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(unknown)}; valid keys: {', '.join(valid)}")
    kwargs = {key: _setting_value(name, key, value, getattr(cls, key)) for key, value in section.items()}
    settings = replace(cls(), **kwargs)
    settings.validate()
    return settings


def _setting_value(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"pipeline.toml [{section}]: {key}"
    if isinstance(default, tuple):
        if not (isinstance(value, (list, tuple)) and len(value) == len(default)):
            raise PipelineError(f"{where} must be a list of {len(default)} numbers, got {value!r}")
        return tuple(_setting_value(section, key, v, 0.0) for v in value)
    if isinstance(default, (bool, str)):
        if not isinstance(value, type(default)):
            raise PipelineError(f"{where} must be a {type(default).__name__}, got {value!r}")
        return value
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise PipelineError(f"{where} must be a number, got {value!r}")
    if isinstance(default, int) or (default is None and isinstance(value, int)):
        if value != int(value):
            raise PipelineError(f"{where} must be a whole number, got {value!r}")
        return int(value)
    return float(value)
