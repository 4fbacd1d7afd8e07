"""Seeded mutants of small valid FIT/GPX/TCX/CSV files, as an attacker or an unlucky user makes them.

Byte-level mutations (bit flips, byte stamps, truncation, chunk duplication/removal) and, for the text
formats, token-level ones (a number replaced by an extreme value, a time by an impossible or shuffled
one). FIT mutants get their header and file CRCs recomputed after the mutation, so the decoder really
parses the garbage instead of stopping at the CRC check.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from dataclasses import dataclass

import numpy as np
from fit_tool.profile.profile_type import Sport

from ingest_builders import START, Segment, fit_bytes, gpx_bytes, tcx_bytes
from pipeline.ingest.fit_crc import crc16

STRONG = ("Date,Workout Name,Duration,Exercise Name,Set Order,Weight,Reps,Distance,Seconds,RPE\n"
          + "".join(f"2024-03-{d:02d} 18:00:00,Legs,45m,Squat (Barbell),{k},{90 + 5 * k},5,0,0,8\n"
                    for d in (1, 5, 9) for k in (1, 2, 3))).encode()
EXTREME_NUMBERS = ("0", "-1", "1e308", "-1e308", "inf", "nan", "4294967295", "254", "-400", "99999999",
                   "0.0000001", "1e-300", "", "12abc")
WEIRD_TIMES = ("1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
               "7494-03-08T11:42:17Z", "May 1 2024 6:15am", "2024-13-45T99:99:99Z", "2024-05-01T06:15:00+25:00",
               "2024-05-01T06:15:00.123456789123Z", "1714544100", "")
_NUMBER = re.compile(rb"(?<![A-Za-z0-9])-?\d+(\.\d+)?")
_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?")


@dataclass(frozen=True)
class Mutant:
    name: str
    data: bytes


def base_files() -> dict[str, bytes]:
    """The valid files mutated: small, with every channel, a multisport FIT among them."""
    return {
        "run.fit": fit_bytes([Segment(n=40)]),
        "multi.fit": fit_bytes([Segment(n=30), Segment(sport=Sport.CYCLING, n=30, offset_s=40, cadence=90)]),
        "run.gpx": gpx_bytes(n=40),
        "run.tcx": tcx_bytes(n=40),
        "strong.csv": STRONG,
    }


def fix_fit_crcs(data: bytearray) -> bytes:
    """Recompute the header CRC (14-byte headers) and the file CRC of a single-part FIT file."""
    if len(data) < 14 or data[8:12] != b".FIT":
        return bytes(data)
    header = data[0]
    if header == 14:
        struct.pack_into("<H", data, 12, crc16(bytes(data[:12])))
    data_size = struct.unpack_from("<I", data, 4)[0]
    end = header + data_size
    if header in (12, 14) and end + 2 <= len(data):
        struct.pack_into("<H", data, end, crc16(bytes(data[:end])))
    return bytes(data)


def _byte_mutation(data: bytes, rng: np.random.Generator, kind: str) -> bytearray:
    out = bytearray(data)
    if kind == "flip":
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(0, len(out)))
            out[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == "stamp":
        for _ in range(int(rng.integers(1, 5))):
            i = int(rng.integers(0, len(out)))
            out[i] = int(rng.choice([0x00, 0xFF, 0x7F, 0x80, 0xFE]))
    elif kind == "truncate":
        out = out[: int(rng.integers(1, len(out)))]
    elif kind == "duplicate":
        i, j = sorted(int(x) for x in rng.integers(0, len(out), 2))
        out = out[:j] + out[i:j] + out[j:]
    elif kind == "remove":
        i, j = sorted(int(x) for x in rng.integers(0, len(out), 2))
        out = out[:i] + out[j:]
    return out


def _token_mutation(data: bytes, rng: np.random.Generator) -> bytes:
    """Replace a few numbers by extreme values and a few times by impossible or shuffled ones."""
    text = data
    numbers = list(_NUMBER.finditer(text))
    times = list(_TIME.finditer(text))
    edits = []
    for _ in range(int(rng.integers(1, 6))):
        if times and rng.random() < 0.4:
            m = times[int(rng.integers(0, len(times)))]
            if rng.random() < 0.5:
                new = WEIRD_TIMES[int(rng.integers(0, len(WEIRD_TIMES)))].encode()
            else:  # another time of the same file: shuffled order, repeated times
                new = times[int(rng.integers(0, len(times)))].group(0)
        elif numbers:
            m = numbers[int(rng.integers(0, len(numbers)))]
            new = EXTREME_NUMBERS[int(rng.integers(0, len(EXTREME_NUMBERS)))].encode()
        else:
            continue
        edits.append((m.start(), m.end(), new))
    for start, end, new in sorted(set(edits), reverse=True):
        if all(not (start < e2 and s2 < end) for s2, e2, _ in edits if (s2, e2) != (start, end)):
            text = text[:start] + new + text[end:]
    return text


def mutants(n_per_base: int, seed: int = 20240501) -> list[Mutant]:
    """``n_per_base`` mutants of each base file (seeded; the same list on every run)."""
    rng = np.random.default_rng(seed)
    out = []
    kinds = ("flip", "stamp", "truncate", "duplicate", "remove")
    for base_name, data in base_files().items():
        stem, ext = base_name.rsplit(".", 1)
        for k in range(n_per_base):
            if ext in ("gpx", "tcx", "csv") and k % 2 == 0:
                kind, mutated = "token", _token_mutation(data, rng)
            else:
                kind = kinds[k % len(kinds)]
                mutated = _byte_mutation(data, rng, kind)
                if ext == "fit":
                    mutated = fix_fit_crcs(mutated)
            out.append(Mutant(f"{stem}-{k:03d}-{kind}.{ext}", bytes(mutated)))
    return out


def start_hour_shift(k: int) -> dt.datetime:
    return START + dt.timedelta(hours=k)
