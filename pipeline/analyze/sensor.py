"""Sensor-change guard: a new heart-rate device around a block shifts HR and looks like an economy change.

A chest strap reads HR differently from an optical wrist sensor (optical sensors lag, drop out and
lock onto cadence; a new watch has its own smoothing), so a device change between the pre-block period and
the response window shifts HR at a given pace for reasons that have nothing to do with economy.

Each run's HR device is labelled from ``activities.device`` (the FIT file's product), or, without one, by
the file format. A change is flagged when the device most common in the block's response window covers
less than ``sensor_change_share`` (50 %) of the pre-block runs (unlabelled devices ignored). Beside the
estimate, the same model with one level shift per device (indicator covariates) is stored: where both
devices were used outside the block it separates the shift from the block; where the new device starts at
the block and never leaves, the two cannot be told apart and the verdict says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.analyze.effects import BlockWindows

UNKNOWN_DEVICE = ""


def device_labels(activities: pd.DataFrame) -> pd.Series:
    """Per activity_id: the HR device label (device product, else 'unknown <format> device')."""
    dev = activities["device"] if "device" in activities else pd.Series(None, index=activities.index)
    fmt = activities["source_format"] if "source_format" in activities else pd.Series(None, index=activities.index)
    label = [str(d).strip() if isinstance(d, str) and d.strip() else
             (f"unknown {f} device" if isinstance(f, str) and f else UNKNOWN_DEVICE) for d, f in zip(dev, fmt)]
    return pd.Series(label, index=activities["activity_id"].to_numpy())


@dataclass(frozen=True)
class SensorCheck:
    """Whether the HR device changed around a block, and the device columns for the adjusted model."""

    changed: bool
    before: str
    after: str
    share_before: float              # share of pre-block runs on the response window's main device
    covariates: tuple[str, ...] = ()  # indicator columns (``_device_<k>``) added to the runs frame


NO_CHANGE = SensorCheck(False, "", "", 1.0)


def _known(labels: pd.Series) -> pd.Series:
    return labels[labels.fillna("").astype(str).str.len() > 0]


def sensor_check(runs: pd.DataFrame, windows: BlockWindows, min_share: float = 0.5) -> SensorCheck:
    """Compare the devices of the pre-block runs (ITS pre-period) with the response window's.

    ``runs`` carries ``hr_device`` per run (see :func:`device_labels`); without it: no change.
    """
    if "hr_device" not in runs:
        return NO_CHANGE
    t = pd.to_datetime(runs["start_time"], utc=True)
    pre = _known(runs.loc[(t >= windows.its_pre_start) & (t < windows.block_start), "hr_device"])
    resp = _known(runs.loc[(t >= windows.response_start) & (t < windows.response_end), "hr_device"])
    if pre.empty or resp.empty:
        return NO_CHANGE
    main_after = resp.value_counts().index[0]
    share = float((pre == main_after).mean())
    main_before = pre.value_counts().index[0]
    return SensorCheck(share < min_share, str(main_before), str(main_after), share)


def with_device_indicators(runs: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The runs plus one 0/1 column per device other than the most common (known devices with >= 3
    runs; unknown devices count as the most common), for the device-shift model."""
    if "hr_device" not in runs:
        return runs, ()
    labels = runs["hr_device"].fillna("").astype(str)
    counts = _known(labels).value_counts()
    counts = counts[counts >= 3]
    if len(counts) < 2:
        return runs, ()
    extra = {f"_device_{k}": (labels == dev).to_numpy(dtype=float) for k, dev in enumerate(counts.index[1:])}
    return runs.assign(**extra), tuple(extra)


def sensor_note(check: SensorCheck) -> str:
    """One sentence for the verdict."""
    if not check.changed:
        return ""
    return (f"HR device changed around the block ({check.before or 'unknown'} before, {check.after} in the "
            f"response window; {check.share_before * 100:.0f} % of pre-block runs on the new one)")


def device_indicator_varies(runs: pd.DataFrame, names: tuple[str, ...]) -> bool:
    return bool(names) and all(np.std(runs[n].to_numpy(float)) > 0 for n in names)
