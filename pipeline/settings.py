"""The one parser of ``pipeline.toml`` sections and the checks of every numeric setting (ground floor: every
stage's settings and athlete.toml use them).

A stage's settings are a frozen dataclass whose fields are the valid keys, each with a documented
default; :func:`settings_from_section` builds one from the stage's section and rejects unknown keys, wrong
types, values that are not finite and values outside the setting's range, so a typo in pipeline.toml never
silently falls back to a default and ``1e300`` weeks never reaches a date computation. Every message
names the file/section and the key, and says the allowed range.

Ranges: a settings class may define ``setting_bounds(key, whole) -> Bounds`` (the analysis and block
settings do); otherwise the range comes from the key's unit suffix (:data:`SUFFIX_BOUNDS`: every setting
carries its unit in its name), else any finite number up to 1e6 in size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from pipeline.errors import PipelineError

PIPELINE_TOML = "pipeline.toml"
Settings = TypeVar("Settings")


@dataclass(frozen=True)
class Bounds:
    """Allowed values of one numeric setting: a finite number in [low, high] (``low_open``: above low)."""

    low: float = -1e6
    high: float = 1e6
    low_open: bool = False
    whole: bool = False
    unit: str = ""

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{'above' if self.low_open else 'at least'} {_plain(self.low)} and at most {_plain(self.high)}{unit}"


# Range by unit suffix: durations and distances are not negative and not absurd (a 1e300-week window
# overflows every date); speeds stay within what a runner can do (12 m/s is the ingest limit).
SUFFIX_BOUNDS = {
    "_m_s": Bounds(0, 12, unit="m/s"), "_bpm_per_c": Bounds(0, 10, unit="bpm per degC"),
    "_bpm_per_m_s": Bounds(0, 100, unit="bpm per m/s"), "_bpm": Bounds(0, 300, unit="bpm"),
    "_s": Bounds(0, 7 * 86400, unit="s"), "_m": Bounds(0, 100_000, unit="m"),
    "_weeks": Bounds(0, 520, unit="weeks"), "_days": Bounds(0, 3650, unit="days"),
    "_pct": Bounds(0, 1000, unit="%"), "_c": Bounds(-60, 60, unit="degC"),
}


def suffix_bounds(key: str, whole: bool = False) -> Bounds:
    """The range of a setting from its unit suffix (the longest that matches), else any finite number up
    to 1e6 in size; ``whole`` for settings that count something."""
    suffix = max((sfx for sfx in SUFFIX_BOUNDS if key.endswith(sfx)), key=len, default=None)
    bounds = SUFFIX_BOUNDS[suffix] if suffix else Bounds()
    return replace(bounds, whole=True) if whole else bounds


def _plain(x: float) -> str:
    """A bound as people write it: 604800, 0.45, 1e+06 only when huge."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"


def setting_number(where: str, key: str, value: Any, bounds: Bounds) -> float | int:
    """Check one numeric setting; returns it as int (``bounds.whole``) or float.

    A boolean or text is not a number; NaN and infinities are not finite; ``1e300`` is out of range.
    Every message names the file/section (``where``) and the key.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PipelineError(f"{where}: {key} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise PipelineError(f"{where}: {key} = {value} is not a finite number "
                            f"(must be {bounds.describe()})")
    too_low = value <= bounds.low if bounds.low_open else value < bounds.low
    if too_low or value > bounds.high:
        raise PipelineError(f"{where}: {key} = {_plain(value)} is out of range (must be {bounds.describe()})")
    if bounds.whole:
        if value != int(value):
            raise PipelineError(f"{where}: {key} = {_plain(value)} must be a whole number")
        return int(value)
    return float(value)


def settings_table(where: str, section: str, value: Any) -> dict[str, Any]:
    """A ``[section]`` of a settings file, checked to be a table (``analysis = 5`` is not)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PipelineError(f"{where}: [{section}] must be a table of settings (a [{section}] header with "
                            f"key = value lines), got {value!r}")
    return value


def settings_from_section(cls: type[Settings], section: Any, name: str) -> Settings:
    """The one parser of pipeline.toml sections: a frozen settings dataclass ``cls`` from ``[name]``.

    Every key must be a field of ``cls``; its value must have the type of the field's default, and a
    number must be finite and inside its range (``cls.setting_bounds(key, whole)`` when the class has
    one, else :func:`suffix_bounds`; whole numbers for int fields; a list of the same length for tuple
    fields). The result's ``validate()`` then checks what involves several settings. Any problem raises
    :class:`PipelineError` naming the section and key.
    """
    section = settings_table(PIPELINE_TOML, name, section)
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(section) - set(valid))
    if unknown:
        raise PipelineError(f"pipeline.toml [{name}]: unknown key{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(unknown)}; valid keys: {', '.join(valid)}")
    kwargs = {key: _setting_value(cls, name, key, value, getattr(cls, key)) for key, value in section.items()}
    settings = replace(cls(), **kwargs)
    settings.validate()
    return settings


def _setting_value(cls: type, section: str, key: str, value: Any, default: Any) -> Any:
    where = f"pipeline.toml [{section}]"
    bounds = getattr(cls, "setting_bounds", suffix_bounds)
    if isinstance(default, tuple):
        if not (isinstance(value, (list, tuple)) and len(value) == len(default)):
            raise PipelineError(f"{where}: {key} must be a list of {len(default)} numbers, got {value!r}")
        return tuple(setting_number(where, f"{key}[{k}]", v, bounds(key)) for k, v in enumerate(value))
    if isinstance(default, (bool, str)):
        if not isinstance(value, type(default)):
            raise PipelineError(f"{where}: {key} must be a {type(default).__name__}, got {value!r}")
        return value
    whole = isinstance(default, int) or (default is None and isinstance(value, int))
    return setting_number(where, key, value, bounds(key, whole))
