"""A lean FIT binary decoder: raw messages out of bytes, fast enough for multi-hour files.

Why not fitparse for records: fitparse builds several Python objects per field of every message and
applies every profile conversion, which makes it ~6k records/s. Ingest only needs a dozen fields of a
few message types, so this decoder compiles one :class:`struct.Struct` per definition message and
unpacks a whole data message in one call (records are converted column-wise with numpy later, in
:mod:`pipeline.ingest.fit_reader`). Names of enums (sport, manufacturer, product) still come from
fitparse's profile, and fitparse itself parses strength files' ``set`` messages.

FIT layout (FIT SDK, "FIT File Protocol"): ``header | records | crc16``, possibly several such parts
concatenated ("chained" files). A record header byte is either a normal header (bit 6: definition,
bit 5: developer fields, bits 0-3: local type) or a compressed-timestamp header (bit 7; bits 5-6:
local type, bits 0-4: time offset in seconds). Every part's CRCs are verified before its records
are decoded (:mod:`pipeline.ingest.fit_crc`, vectorised so it costs ~1 % of decoding): the header CRC of
a header of 14 or more bytes when it is non-zero, and the file CRC over header + records; a mismatch raises
:class:`FitCRCError` with the same computed/stored values fitparse reports. Truncation and structural
damage are detected and reported with the byte offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from pipeline.ingest.fit_crc import crc16
# Message numbers are named in fit_profile; re-exported because the reader and tests import them from here.
from pipeline.ingest.fit_profile import (  # noqa: F401
    FIELD_TIMESTAMP, MESG_DEVICE_INFO, MESG_FILE_ID, MESG_LAP, MESG_RECORD, MESG_SESSION, MESG_SET, MESG_SPORT,
)

FIT_EPOCH_S = 631065600  # 1989-12-31T00:00:00Z in Unix seconds
# Timestamps below this are seconds since device power-on, not since the FIT epoch (FIT SDK).
FIT_RELATIVE_TIME_MAX = 0x10000000

# base type number -> (struct code, size bytes, invalid raw value or None for floats/strings)
_BASE_TYPES = {
    0: ("B", 1, 0xFF), 1: ("b", 1, 0x7F), 2: ("B", 1, 0xFF), 3: ("h", 2, 0x7FFF), 4: ("H", 2, 0xFFFF),
    5: ("i", 4, 0x7FFFFFFF), 6: ("I", 4, 0xFFFFFFFF), 7: ("s", 1, None), 8: ("f", 4, None),
    9: ("d", 8, None), 10: ("B", 1, 0), 11: ("H", 2, 0), 12: ("I", 4, 0), 13: ("B", 1, 0xFF),
    14: ("q", 8, 0x7FFFFFFFFFFFFFFF), 15: ("Q", 8, 0xFFFFFFFFFFFFFFFF), 16: ("Q", 8, 0),
}
_STRING = 7

# Record header byte (FIT SDK): compressed-timestamp header (bits 5-6 local type, bits 0-4 time offset),
# else a normal header (bit 6: definition message, bit 5: with developer fields, bits 0-3: local type).
_HEADER_COMPRESSED_TIMESTAMP = 0x80
_HEADER_DEFINITION = 0x40
_HEADER_DEVELOPER_DATA = 0x20
_HEADER_LOCAL_TYPE = 0x0F
_INVALID_TIMESTAMP = 0xFFFFFFFF


class FitDecodeError(ValueError):
    """The bytes are not a readable FIT file; ``offset`` says where decoding stopped (bytes)."""

    def __init__(self, message: str, offset: int):
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset


class FitCRCError(FitDecodeError):
    """A header or file CRC does not match the bytes: the file is corrupt (fitparse: FitCRCError)."""

    def __init__(self, what: str, computed: int, stored: int, offset: int):
        ValueError.__init__(self, f"FIT {what} CRC mismatch (computed 0x{computed:04X}, stored 0x{stored:04X}): "
                                  f"the file is corrupt (CRC at byte {offset})")
        self.offset = offset
        self.computed, self.stored = computed, stored


@dataclass
class MessageDefinition:
    """One compiled definition message: how to unpack the data messages of a local type."""

    global_num: int
    size_bytes: int                 # total data message size, developer fields included
    unpacker: struct.Struct
    field_nums: tuple[int, ...]
    invalid: tuple[int | None, ...]  # raw invalid value per field (None: no check, e.g. float)
    kinds: tuple[str, ...]          # 'n' number, 's' string, 'b' raw bytes (arrays, odd sizes)

    def index(self, field_num: int) -> int | None:
        try:
            return self.field_nums.index(field_num)
        except ValueError:
            return None


@dataclass
class DecodedFit:
    """Raw content of a FIT file: record tuples grouped by definition, other messages as dicts.

    ``records`` holds ``(definition, timestamp_raw, values)`` in file order; ``timestamp_raw`` is the
    FIT timestamp (s since the FIT epoch) including compressed-timestamp headers, or None.
    Dict messages map field number -> value with invalid values removed.
    """

    records: list[tuple[MessageDefinition, int | None, tuple]] = field(default_factory=list)
    messages: dict[int, list[dict[int, object]]] = field(default_factory=dict)
    n_parts: int = 0


def _compile_definition(buf: bytes, pos: int, has_dev: bool) -> tuple[MessageDefinition, int]:
    arch = buf[pos + 1]
    endian = ">" if arch == 1 else "<"
    (global_num,) = struct.unpack_from(endian + "H", buf, pos + 2)
    n_fields = buf[pos + 4]
    pos += 5
    codes, nums, invalid, kinds = [], [], [], []
    size_total = 0
    for _ in range(n_fields):
        num, size, base = buf[pos], buf[pos + 1], buf[pos + 2] & 0x1F
        pos += 3
        code, base_size, inv = _BASE_TYPES.get(base, ("s", 1, None))
        if base == _STRING:
            codes.append(f"{size}s"); kinds.append("s"); invalid.append(None)
        elif size == base_size:
            codes.append(code); kinds.append("n"); invalid.append(inv)
        else:  # arrays and sizes that are not a multiple of the base type: keep the raw bytes
            codes.append(f"{size}s"); kinds.append("b"); invalid.append(None)
        nums.append(num)
        size_total += size
    if has_dev:
        n_dev = buf[pos]
        pos += 1
        for _ in range(n_dev):
            size_total += buf[pos + 1]
            pos += 3
        dev_size = size_total - sum(struct.calcsize(endian + c) for c in codes)
        if dev_size:
            codes.append(f"{dev_size}x")  # developer fields are skipped
    unpacker = struct.Struct(endian + "".join(codes))
    return MessageDefinition(global_num, size_total, unpacker, tuple(nums), tuple(invalid), tuple(kinds)), pos


def _as_dict(defn: MessageDefinition, values: tuple) -> dict[int, object]:
    out: dict[int, object] = {}
    for num, value, inv, kind in zip(defn.field_nums, values, defn.invalid, defn.kinds):
        if kind == "s":
            text = value.split(b"\0", 1)[0].decode("utf-8", "replace")
            if text:
                out[num] = text
        elif kind == "b":  # arrays / odd sizes: not needed from dict messages
            continue
        elif value != inv and value == value:  # value == value drops float NaN (invalid)
            out[num] = value
    return out


def decode_fit(data: bytes, keep: frozenset[int]) -> DecodedFit:
    """Decode every part of a (possibly chained) FIT file.

    Args:
        data: the file's bytes.
        keep: global message numbers to return as dicts (records are always returned as tuples).

    Raises:
        FitCRCError: a header or file CRC does not match (the file is corrupt).
        FitDecodeError: not a FIT file, truncated, or a data message of an undefined local type.
    """
    result = DecodedFit()
    buf = memoryview(data)
    pos = 0
    end_all = len(data)
    while pos < end_all:
        if end_all - pos < 12:
            if result.n_parts and not any(data[pos:]):  # zero padding after the last part
                break
            raise FitDecodeError("truncated FIT header", pos)
        header_size = data[pos]
        # 12 or 14 bytes today; the SDK allows longer headers later (CRC still at 12-13, the rest skipped)
        if header_size < 12 or header_size == 13 or data[pos + 8:pos + 12] != b".FIT":
            raise FitDecodeError("not a FIT file header", pos)
        if end_all - pos < header_size:
            raise FitDecodeError("truncated FIT header", pos)
        (data_size,) = struct.unpack_from("<I", data, pos + 4)
        start = pos
        pos += header_size
        end = pos + data_size
        if end > end_all:
            raise FitDecodeError(f"truncated: header announces {data_size} bytes of records", end_all)
        _check_crcs(buf, start, header_size, end)
        _decode_part(data, buf, pos, end, keep, result)
        result.n_parts += 1
        pos = end + 2  # file CRC
    if result.n_parts == 0:
        raise FitDecodeError("empty file", 0)
    return result


def _check_crcs(buf: memoryview, start: int, header_size: int, end: int) -> None:
    """Verify one part's header CRC (header of 14+ bytes, when not 0) and its file CRC (FIT SDK)."""
    if header_size >= 14:
        (stored,) = struct.unpack_from("<H", buf, start + 12)
        if stored:
            computed = crc16(buf[start:start + 12])
            if computed != stored:
                raise FitCRCError("header", computed, stored, start + 12)
    if end + 2 > len(buf):
        raise FitDecodeError("truncated: the 2-byte file CRC after the records is missing", len(buf))
    (stored,) = struct.unpack_from("<H", buf, end)
    computed = crc16(buf[start:end])
    if computed != stored:
        raise FitCRCError("file", computed, stored, end)


def _decode_part(data: bytes, buf: memoryview, pos: int, end: int, keep: frozenset[int],
                 result: DecodedFit) -> None:
    """Decode the messages of one part (``data[pos:end]``) into ``result``.

    Records go to ``result.records`` as tuples, messages in ``keep`` to ``result.messages`` as dicts,
    each with its timestamp: its own field 253, else the one a compressed-timestamp header implies.
    This loop runs once per message (~1M for a long run), so data messages are handled inline.
    """
    defs: dict[int, MessageDefinition] = {}
    ts_index: dict[int, int | None] = {}  # id(defn) -> index of field 253, cached
    last_ts: int | None = None
    records = result.records
    messages = result.messages
    while pos < end:
        header = data[pos]
        pos += 1
        if header & _HEADER_COMPRESSED_TIMESTAMP:
            local = (header >> 5) & 0x3
            ts = last_ts = _compressed_timestamp(header & 0x1F, last_ts)
        elif header & _HEADER_DEFINITION:
            defn, pos = _read_definition(data, pos, end, header)
            defs[header & _HEADER_LOCAL_TYPE] = defn
            ts_index[id(defn)] = defn.index(FIELD_TIMESTAMP)
            continue
        else:
            local = header & _HEADER_LOCAL_TYPE
            ts = None
        defn = defs.get(local)
        if defn is None:
            raise FitDecodeError(f"data message for undefined local message type {local}", pos - 1)
        if pos + defn.size_bytes > end:
            raise FitDecodeError("truncated data message", pos)
        values = defn.unpacker.unpack_from(buf, pos)
        pos += defn.size_bytes
        i_ts = ts_index[id(defn)]
        if i_ts is not None and values[i_ts] != _INVALID_TIMESTAMP:
            ts = last_ts = values[i_ts]
        gnum = defn.global_num
        if gnum == MESG_RECORD:
            records.append((defn, ts, values))
        elif gnum in keep:
            msg = _as_dict(defn, values)
            if ts is not None:
                msg[FIELD_TIMESTAMP] = ts
            messages.setdefault(gnum, []).append(msg)


def _read_definition(data: bytes, pos: int, end: int, header: int) -> tuple[MessageDefinition, int]:
    """The definition message at ``pos`` (just after its header byte) and the position after it."""
    if pos + 5 > end:
        raise FitDecodeError("truncated definition message", pos)
    try:
        return _compile_definition(data, pos, bool(header & _HEADER_DEVELOPER_DATA))
    except (IndexError, struct.error) as e:
        raise FitDecodeError(f"corrupt definition message ({e})", pos) from e


def _compressed_timestamp(offset: int, last_ts: int | None) -> int | None:
    """The timestamp of a compressed-timestamp header: the last full timestamp with its low 5 bits
    replaced by ``offset`` (s), rolled over into the next 32 s when ``offset`` is smaller (FIT SDK).
    None while no full timestamp has been seen."""
    if last_ts is None:
        return None
    ts = (last_ts & ~0x1F) + offset
    if offset < (last_ts & 0x1F):
        ts += 0x20
    return ts
