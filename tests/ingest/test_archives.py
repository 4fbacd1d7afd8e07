"""Archives as they come: members that cannot be read are per-member errors, never a stopped batch;
member access is linear in the member count; export clutter is skipped saying what it is."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile

import pytest

from ingest_builders import START, Segment, fit_bytes, gpx_bytes
from pipeline.ingest import archives
from pipeline.ingest.run import ingest_paths
from pipeline.warehouse.db import connect


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _patch_member(data: bytes, name: str, *, flag: int | None = None, method: int | None = None) -> bytes:
    """Set a member's general-purpose flag bits / compression method in its local and central headers,
    as an encrypting (ZipCrypto: flag bit 0; WinZip AES: method 99) or PPMd/Deflate64 zipper writes them."""
    out = bytearray(data)
    zf = zipfile.ZipFile(io.BytesIO(data))
    local = zf.getinfo(name).header_offset
    pos = zf.start_dir
    while out[pos:pos + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack_from("<HHH", out, pos + 28)
        if out[pos + 46:pos + 46 + n].decode() == name:
            for offset, (flag_at, method_at) in ((local, (6, 8)), (pos, (8, 10))):
                if flag is not None:
                    struct.pack_into("<H", out, offset + flag_at, struct.unpack_from("<H", out, offset + flag_at)[0] | flag)
                if method is not None:
                    struct.pack_into("<H", out, offset + method_at, method)
        pos += 46 + n + m + k
    return bytes(out)


def _day(day: int) -> bytes:
    return fit_bytes([Segment(n=30)], start=START.replace(day=day))


def _statuses(ws) -> dict[str, str]:
    con = connect(ws, read_only=True)
    try:
        return dict(con.execute("SELECT regexp_replace(path, '.*/anna/', ''), status || ': ' || coalesce(message, '') "
                                "FROM source_files").fetchall())
    finally:
        con.close()


def test_unreadable_members_are_per_member_errors(workspace):
    data = _zip({f"m{i}.fit": _day(1 + i) for i in range(6)}, method=zipfile.ZIP_STORED)
    data = _patch_member(data, "m1.fit", flag=0x1)        # ZipCrypto
    data = _patch_member(data, "m2.fit", method=99)       # WinZip AES
    data = _patch_member(data, "m3.fit", method=98)       # PPMd
    data = _patch_member(data, "m4.fit", method=9)        # Deflate64
    anna = workspace.raw_dir / "anna"
    anna.mkdir()
    (anna / "export.zip").write_bytes(data)
    (anna / "plain.fit").write_bytes(_day(20))
    summary = ingest_paths(workspace, None, jobs=1, progress=False)
    rows = _statuses(workspace)
    assert rows["export.zip!m1.fit"] == ("error: cannot read from archive: member m1.fit is encrypted (ZipCrypto, "
                                         "password-protected); not read: export or re-pack the archive without a "
                                         "password")
    assert rows["export.zip!m2.fit"].startswith("error: cannot read from archive: member m2.fit is encrypted "
                                                "(WinZip AES, password-protected)")
    assert rows["export.zip!m3.fit"] == ("error: cannot read from archive: member m3.fit is compressed with PPMd "
                                         "(zip method 98), which cannot be read here; re-pack the archive with "
                                         "standard Deflate compression")
    assert "compressed with Deflate64 (zip method 9)" in rows["export.zip!m4.fit"]
    for ok in ("export.zip", "export.zip!m0.fit", "export.zip!m5.fit", "plain.fit"):
        assert rows[ok].startswith("ok"), ok
    assert summary.files == {"ok": 4, "error": 4} and summary.sports == {"running": 3}


def test_corrupt_member_data_is_that_member_s_error(workspace):
    good, bad = _day(1), _day(2)
    data = bytearray(_zip({"good.fit": good, "bad.fit": bad}, method=zipfile.ZIP_STORED))
    at = bytes(data).index(bad[40:60])
    data[at] ^= 0xFF                                      # stored bytes no longer match the member's CRC-32
    (workspace.raw_dir / "anna").mkdir()
    (workspace.raw_dir / "anna" / "a.zip").write_bytes(bytes(data))
    ingest_paths(workspace, None, jobs=1, progress=False)
    rows = _statuses(workspace)
    assert rows["a.zip!bad.fit"].startswith("error: cannot read from archive: member bad.fit is corrupt or "
                                            "unreadable (BadZipFile: Bad CRC-32 for file 'bad.fit')")
    assert rows["a.zip!good.fit"].startswith("ok")


@pytest.mark.parametrize("index", [
    b"Activity ID,Activity Date,Activity Name,Activity Type,Filename\r11,\"May 1, 2024\",Run\rX,Run,activities/11.fit\n",
    b"Activity ID,Activity Date,Activity Name,Activity Type,Filename\n\x00\x01\x02\xff\xfe binary \x00\n",
])
def test_strava_index_with_a_bare_cr_or_binary_bytes_never_stops_the_batch(workspace, index):
    export = _zip({"activities.csv": index, "activities/11.fit": _day(1), "activities/12.gpx.gz":
                   gzip.compress(gpx_bytes(start=START.replace(day=3)))})
    (workspace.raw_dir / "anna").mkdir()
    (workspace.raw_dir / "anna" / "export_1.zip").write_bytes(export)
    (workspace.raw_dir / "anna" / "loose.fit").write_bytes(_day(5))
    summary = ingest_paths(workspace, None, jobs=1, progress=False)
    assert summary.sports == {"running": 3}
    assert summary.files["ok"] == 4 and summary.files.get("error", 0) == 0


def test_member_access_is_linear_in_the_member_count(workspace):
    """A zip of 3,000 members and a nested zip of 1,000: each archive's central directory is read a
    constant number of times (once to list, once to read), never once per member."""
    members = {f"clutter/{i:05d}.txt": b"x" for i in range(3000)}
    members.update({"runs/a.fit": _day(1), "runs/b.fit": _day(2)})
    members["nested.zip"] = _zip({f"inner/{i:05d}.txt": b"y" for i in range(1000)} | {"inner/c.fit": _day(3)})
    (workspace.raw_dir / "anna").mkdir()
    (workspace.raw_dir / "anna" / "big.zip").write_bytes(_zip(members, method=zipfile.ZIP_STORED))
    before = archives.zip_open_count()
    summary = ingest_paths(workspace, None, jobs=1, progress=False)
    opens = archives.zip_open_count() - before
    assert summary.sports == {"running": 3} and summary.files["error"] == 4000
    assert opens <= 4, f"{opens} zip opens for 4,003 members"


def test_export_clutter_is_skipped_with_what_it_is(workspace):
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(200)
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    heic = b"\x00\x00\x00\x18ftypheic" + bytes(100)
    mp4 = b"\x00\x00\x00\x18ftypmp42" + bytes(100)
    export = _zip({
        "activities.csv": b"Activity ID,Activity Date,Activity Name,Activity Type,Filename\n"
                          b"11,\"May 1, 2024, 6:15:00 AM\",Run,Run,activities/11.fit\n",
        "activities/11.fit": _day(1), "media/abc.jpg": jpeg, "media/def.png": png, "media/g.heic": heic,
        "media/h.mp4": mp4, "profile.jpg": jpeg, "messaging.json": b'{"conversations": []}',
        "blocks.csv": b"Athlete ID,Blocked Athlete ID\n1,2\n", "profile.csv": b"Athlete ID,Email Address\n1,a@b.c\n",
    })
    (workspace.raw_dir / "anna").mkdir()
    (workspace.raw_dir / "anna" / "export_1.zip").write_bytes(export)
    summary = ingest_paths(workspace, None, jobs=1, progress=False)
    rows = _statuses(workspace)
    assert summary.files == {"ok": 2, "skipped": 9} and not summary.errors
    assert rows["export_1.zip!media/abc.jpg"] == ("skipped: image (JPEG): not activity data (export clutter such "
                                                  "as photos or account data)")
    assert rows["export_1.zip!media/def.png"].startswith("skipped: image (PNG)")
    assert rows["export_1.zip!media/g.heic"].startswith("skipped: image (HEIC)")
    assert rows["export_1.zip!media/h.mp4"].startswith("skipped: video (MP4/MOV)")
    assert rows["export_1.zip!messaging.json"].startswith("skipped: JSON data: not activity data")
    assert rows["export_1.zip!blocks.csv"] == ("skipped: Strava export: athletes you blocked (not declared strength "
                                               "blocks, which go in data/raw/<athlete>/blocks.csv): not activity data")
    assert rows["export_1.zip!profile.csv"] == "skipped: Strava export: profile: not activity data"
    con = connect(workspace, read_only=True)
    assert con.execute("SELECT count(*) FROM declared_blocks").fetchone() == (0,)
    con.close()


def test_unpacked_export_blocks_csv_in_a_subfolder_is_not_declared_blocks(workspace):
    export = workspace.raw_dir / "anna" / "export_1"
    export.mkdir(parents=True)
    (export / "blocks.csv").write_text("Athlete ID,Blocked Athlete ID\n1,2\n")
    (export / "run.fit").write_bytes(_day(1))
    (workspace.raw_dir / "anna" / "blocks.csv").write_text("label,start,end\nWinter,2024-01-08,2024-03-10\n")
    summary = ingest_paths(workspace, None, jobs=1, progress=False)
    assert summary.files == {"ok": 1, "skipped": 1}
    assert _statuses(workspace)["export_1/blocks.csv"].startswith("skipped: Strava export: athletes you blocked")
    con = connect(workspace, read_only=True)
    assert con.execute("SELECT label FROM declared_blocks").fetchall() == [("Winter",)]
    con.close()
