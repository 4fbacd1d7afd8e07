"""FIT CRC-16: the vectorised CRC equals the SDK's nibble algorithm, real files' stored CRCs, and
corrupt files are errors with the computed and stored values (as fitparse reports them)."""

from __future__ import annotations

import random
import struct

import pytest
from fitparse.records import Crc as FitparseCrc

from ingest_builders import fit_bytes
from pipeline.ingest.common import ReadContext
from pipeline.ingest.dispatch import read_bytes
from pipeline.ingest.fit_crc import crc16, crc16_reference

LENGTHS = [0, 1, 2, 3, 7, 15, 16, 17, 63, 64, 65, 255, 1023, 1024, 1025, 1031, 4096, 4097, 12345,
           65535, 65536, 65537, 100_003]


@pytest.mark.parametrize("n", LENGTHS)
def test_vectorised_crc_equals_reference_on_random_data(n):
    rng = random.Random(n)
    data = rng.randbytes(n)
    expected = crc16_reference(data)
    assert crc16(data) == expected
    assert crc16(memoryview(data)) == expected  # the decoder passes memoryview slices
    assert FitparseCrc.calculate(data) == expected  # the reference is the SDK's (and fitparse's) algorithm


def test_crc_of_zero_bytes_and_known_check_value():
    assert crc16(b"123456789") == 0xBB3D  # CRC-16/ARC check value (catalogue of parametrised CRCs)
    assert crc16(b"\0" * 5000) == 0
    big = random.Random(7).randbytes(300_001)
    assert crc16(b"\0" * 999 + big) == crc16(big)  # leading zeros change nothing (used for padding)


def _parts(data: bytes):
    """(start, header_size, end) of every part of a (chained) FIT file."""
    pos = 0
    while pos + 12 <= len(data) and data[pos + 8:pos + 12] == b".FIT":
        header_size = data[pos]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        yield pos, header_size, pos + header_size + size
        pos += header_size + size + 2


def test_crc_matches_stored_crcs_of_real_files(corpus_dir):
    n_checked = 0
    for path in sorted(corpus_dir.rglob("*.fit")):
        if "filecrc" in path.name or path.name == "nick.fit":
            continue  # corrupt on purpose (tested below)
        data = path.read_bytes()
        for start, header_size, end in _parts(data):
            if end + 2 > len(data):
                continue  # truncated on purpose
            if header_size == 14 and data[start + 12:start + 14] != b"\0\0":
                assert crc16(data[start:start + 12]) == struct.unpack_from("<H", data, start + 12)[0], path.name
            assert crc16(data[start:end]) == struct.unpack_from("<H", data, end)[0], path.name
            n_checked += 1
    assert n_checked >= 60


def _read(data: bytes, name: str = "x.fit"):
    return read_bytes(data, name, ReadContext(path=name, file_id="f", athlete_id="anna"))


@pytest.mark.parametrize("name", ["activity-filecrc.fit", "activity-activity-filecrc.fit"])
def test_corpus_files_with_a_bad_crc_are_errors(corpus_dir, name):
    p = _read((corpus_dir / "dtcooper__python-fitparse/tests/files" / name).read_bytes(), name)
    assert p.status == "error"
    # fitparse 1.2.0: "FitCRCError: CRC Mismatch [computed: 0xA1D5, read: 0xB1D5]"
    assert p.message.startswith("FIT file CRC mismatch (computed 0xA1D5, stored 0xB1D5): the file is corrupt")
    assert p.activities.empty and p.samples.empty


def test_one_flipped_bit_in_the_records_is_an_error():
    data = bytearray(fit_bytes())
    assert _read(bytes(data)).status == "ok"
    data[len(data) // 2] ^= 0x04
    p = _read(bytes(data))
    assert p.status == "error" and "file CRC mismatch" in p.message and "corrupt" in p.message


def _with_header(data: bytes, header_crc: int | None, size: int = 14) -> bytes:
    """fit_tool writes 12-byte headers; rebuild with a ``size``-byte one (header CRC computed, or the given
    value; bytes past the CRC are zeros, as a future SDK might add)."""
    assert data[0] == 12
    head = bytes([size]) + data[1:12]
    head += struct.pack("<H", crc16(head) if header_crc is None else header_crc) + b"\0" * (size - 14)
    body = head + data[12:-2]
    return body + struct.pack("<H", crc16(body))


def test_header_crc_is_checked_when_not_zero():
    good = _with_header(fit_bytes(), None)
    assert _read(good).status == "ok"
    bad = _with_header(fit_bytes(), crc16(good[:12]) ^ 0x0100)  # file CRC right, header CRC wrong
    p = _read(bad)
    assert p.status == "error" and p.message.startswith("FIT header CRC mismatch")
    # a zero header CRC means "not computed" (FIT SDK): only the file CRC is checked then
    assert _read(_with_header(fit_bytes(), 0)).status == "ok"


def test_longer_header_is_read_like_fitparse_does():
    """The SDK lets the header grow; fitparse skips the extra bytes, so does the decoder."""
    plain = _read(fit_bytes())
    longer = _read(_with_header(fit_bytes(), None, size=16))
    assert longer.status == "ok" and not longer.warnings and longer.samples.equals(plain.samples)


def test_missing_file_crc_is_a_truncation_error():
    p = _read(fit_bytes()[:-2])
    assert p.status == "error" and "file CRC after the records is missing" in p.message
