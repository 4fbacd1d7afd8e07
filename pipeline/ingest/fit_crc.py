"""FIT CRC-16, vectorised with numpy: fast enough to verify every file without slowing ingest.

The FIT SDK's CRC ("FIT File Protocol", section CRC) is CRC-16/ARC: reflected polynomial 0xA001,
initial value 0, no final XOR. The SDK computes it a nibble at a time from a 16-entry table;
:func:`crc16_reference` is that algorithm verbatim (also what fitparse does), kept as the test oracle.
A pure-Python loop costs ~0.5 µs per byte, more than decoding the file, so :func:`crc16` uses
linearity instead:

- With initial value 0 and no final XOR the CRC is linear over GF(2):
  ``crc(A + B) = shift_len(B)(crc(A)) XOR crc(B)``, where ``shift_L(c)`` is the register ``c`` after
  ``L`` zero bytes. ``shift_L`` is itself linear in ``c``, so it is two 256-entry tables (low and high
  byte of ``c``), and ``shift_2L = shift_L o shift_L`` builds the tables for every power of two.
- Leading zero bytes leave a zero register at zero, so the data is left-padded with zeros to
  ``K`` chunks of ``L`` bytes (this takes care of the tail); the byte-wise table update then runs on
  all ``K`` chunks at once (one numpy step per byte position, vectors of length ``K``).
- The ``K`` chunk CRCs are folded pairwise, ``crc = shift_len(right)(left) XOR right``, doubling the
  chunk length at each level (``log2 K`` numpy steps; an odd count gets a zero chunk in front).

About 5 ns per byte on one core for large files (~0.1 ms for 10 kB), ~20-50x a pure-Python
byte-table loop and far below the cost of decoding the records.
"""

from __future__ import annotations

import numpy as np

# FIT SDK nibble table (CRC-16/ARC, reflected polynomial 0xA001).
SDK_NIBBLE_TABLE = (
    0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
    0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
)

# Below this size the plain byte-table loop (~90 ns per byte) is as fast as numpy.
_SMALL = 1024
# Chunks of 2**4 = 16 bytes: few numpy steps per byte position, and the pairwise fold takes
# log2(chunks) steps; measured fastest from 1 kB to 4 MB (chunk lengths 8..4096 tried).
_CHUNK_BITS = 4
_MAX_LEVEL = 40  # shift tables for chunk lengths 2**0 .. 2**39 bytes


def crc16_reference(data: bytes, crc: int = 0) -> int:
    """The FIT SDK's nibble-wise CRC-16 (plain Python; ~0.5 µs per byte)."""
    table = SDK_NIBBLE_TABLE
    for byte in data:
        tmp = table[crc & 0xF]
        crc = (crc >> 4) & 0x0FFF
        crc = crc ^ tmp ^ table[byte & 0xF]
        tmp = table[crc & 0xF]
        crc = (crc >> 4) & 0x0FFF
        crc = crc ^ tmp ^ table[(byte >> 4) & 0xF]
    return crc


def _byte_table() -> np.ndarray:
    """Byte-wise table: ``crc' = (crc >> 8) ^ T[(crc ^ byte) & 0xFF]`` (derived from the nibble table)."""
    return np.array([crc16_reference(bytes([b])) for b in range(256)], dtype=np.uint16)


_TABLE = _byte_table()
_TABLE_LIST = _TABLE.tolist()


def _shift_tables() -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(low, high)]`` per level k: ``shift_{2**k}(c) = low[c & 0xFF] ^ high[c >> 8]``."""
    x = np.arange(256, dtype=np.uint16)
    low = (x >> 8) ^ _TABLE[x & 0xFF]                      # one zero byte
    high = ((x << 8) >> 8) ^ _TABLE[(x << 8) & 0xFF]
    levels = [(low, high)]
    for _ in range(1, _MAX_LEVEL):
        def apply(c: np.ndarray, lo=low, hi=high) -> np.ndarray:
            return lo[c & 0xFF] ^ hi[c >> 8]
        low, high = apply(apply(x)), apply(apply(x << 8))
        levels.append((low, high))
    return levels


_SHIFT = _shift_tables()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/ARC of ``data`` as the FIT SDK defines it (initial value 0)."""
    n = len(data)
    if n < _SMALL:
        crc = 0
        table = _TABLE_LIST
        for byte in bytes(data):
            crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
        return crc
    bits = _CHUNK_BITS
    chunk = 1 << bits
    n_chunks = -(-n // chunk)
    buf = np.zeros(n_chunks * chunk, dtype=np.uint8)
    buf[n_chunks * chunk - n:] = np.frombuffer(data, dtype=np.uint8)  # zeros in front change nothing
    columns = np.ascontiguousarray(buf.reshape(n_chunks, chunk).T)  # row j: byte j of every chunk
    crc = np.zeros(n_chunks, dtype=np.uint16)
    table = _TABLE
    for column in columns:
        crc = (crc >> 8) ^ table[(crc ^ column) & 0xFF]
    level = bits
    while len(crc) > 1:
        if len(crc) % 2:
            crc = np.concatenate((np.zeros(1, dtype=np.uint16), crc))
        low, high = _SHIFT[level]
        left, right = crc[0::2], crc[1::2]
        crc = low[left & 0xFF] ^ high[left >> 8] ^ right
        level += 1
    return int(crc[0])
