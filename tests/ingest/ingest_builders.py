"""Small real input files for ingest tests: FIT written with fit_tool, GPX/TCX written as text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fit_tool.fit_file_builder import FitFileBuilder
from fit_tool.profile.messages.file_id_message import FileIdMessage
from fit_tool.profile.messages.lap_message import LapMessage
from fit_tool.profile.messages.record_message import RecordMessage
from fit_tool.profile.messages.session_message import SessionMessage
from fit_tool.profile.profile_type import FileType, Manufacturer, Sport, SubSport

START = dt.datetime(2024, 5, 1, 6, 15, 0, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Segment:
    """One session of a synthetic FIT file: ``n`` one-second records at constant values."""

    sport: Sport = Sport.RUNNING
    sub_sport: SubSport = SubSport.GENERIC
    n: int = 120
    speed_m_s: float = 3.0
    heart_rate_bpm: int = 150
    cadence: int = 85          # FIT unit: strides/min for running, rpm otherwise
    offset_s: int = 0          # start relative to START


def _ms(t: dt.datetime) -> int:
    return round(t.timestamp() * 1000)


def fit_bytes(segments: list[Segment] | None = None, start: dt.datetime = START) -> bytes:
    """A FIT activity file with one session (and one lap) per segment and its records."""
    segments = segments or [Segment()]
    builder = FitFileBuilder(auto_define=True, min_string_size=50)
    fid = FileIdMessage()
    fid.type = FileType.ACTIVITY
    fid.manufacturer = Manufacturer.GARMIN.value
    fid.product = 2697  # fenix5
    fid.time_created = _ms(start)
    fid.serial_number = 1234
    builder.add(fid)
    summaries = []
    for seg in segments:
        t0 = start + dt.timedelta(seconds=seg.offset_s)
        distance = 0.0
        for i in range(seg.n):
            rec = RecordMessage()
            rec.timestamp = _ms(t0 + dt.timedelta(seconds=i))
            rec.position_lat = 46.05 + i * 1e-5
            rec.position_long = 14.50
            rec.distance = distance
            rec.enhanced_speed = seg.speed_m_s
            rec.enhanced_altitude = 300.0 + i * 0.1
            rec.heart_rate = seg.heart_rate_bpm
            rec.cadence = seg.cadence
            rec.temperature = 21
            builder.add(rec)
            distance += seg.speed_m_s
        lap = LapMessage()
        lap.timestamp = _ms(t0 + dt.timedelta(seconds=seg.n - 1))
        lap.start_time = _ms(t0)
        lap.total_elapsed_time = seg.n - 1
        lap.total_timer_time = seg.n - 1
        lap.total_distance = distance - seg.speed_m_s
        lap.avg_heart_rate = seg.heart_rate_bpm
        summaries.append(lap)
        sess = SessionMessage()
        sess.timestamp = _ms(t0 + dt.timedelta(seconds=seg.n - 1))
        sess.start_time = _ms(t0)
        sess.sport = seg.sport
        sess.sub_sport = seg.sub_sport
        sess.total_elapsed_time = seg.n - 1
        sess.total_timer_time = seg.n - 1
        sess.total_distance = distance - seg.speed_m_s
        sess.avg_heart_rate = seg.heart_rate_bpm
        summaries.append(sess)
    builder.add_all(summaries)
    return builder.build().to_bytes()


def gpx_bytes(n: int = 120, start: dt.datetime = START, sport: str | None = "running", hr_style: str = "gpxtpx",
              times: bool = True, bom: bool = False, empty_segment: bool = False) -> bytes:
    """A GPX 1.1 track; ``hr_style`` picks the extension style: gpxtpx | ns3 | plain."""
    pts = []
    for i in range(n):
        t = (start + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if hr_style == "gpxtpx":
            ext = f"<gpxtpx:TrackPointExtension><gpxtpx:hr>150</gpxtpx:hr><gpxtpx:cad>85</gpxtpx:cad></gpxtpx:TrackPointExtension>"
        elif hr_style == "ns3":
            ext = f"<ns3:TrackPointExtension><ns3:hr>150</ns3:hr><ns3:cad>85</ns3:cad></ns3:TrackPointExtension>"
        else:
            ext = "<heartrate>150</heartrate><cadence>85</cadence>"
        time = f"<time>{t}</time>" if times else ""
        pts.append(f'<trkpt lat="{46.05 + i * 1e-5:.6f}" lon="14.5"><ele>{300 + i * 0.1:.1f}</ele>{time}'
                   f"<extensions>{ext}</extensions></trkpt>")
    seg = "<trkseg></trkseg>" if empty_segment else ""
    typ = f"<type>{sport}</type>" if sport else ""
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1" '
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1" '
        'xmlns:ns3="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">'
        f"<trk><name>Morning Run</name>{typ}{seg}<trkseg>{''.join(pts)}</trkseg></trk></gpx>"
    )
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def tcx_bytes(n: int = 120, start: dt.datetime = START, sport: str = "Running", leading_ws: bool = True) -> bytes:
    """A TCX activity with one lap; Strava-style whitespace before ``<?xml`` when ``leading_ws``."""
    pts = []
    for i in range(n):
        t = (start + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        pts.append(f"<Trackpoint><Time>{t}</Time><Position><LatitudeDegrees>{46.05 + i * 1e-5:.6f}</LatitudeDegrees>"
                   f"<LongitudeDegrees>14.5</LongitudeDegrees></Position><AltitudeMeters>300</AltitudeMeters>"
                   f"<DistanceMeters>{i * 3.0:.1f}</DistanceMeters><HeartRateBpm><Value>150</Value></HeartRateBpm>"
                   f"<Cadence>85</Cadence></Trackpoint>")
    t0 = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = (
        ("          " if leading_ws else "") + '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">'
        f'<Activities><Activity Sport="{sport}"><Id>{t0}</Id><Lap StartTime="{t0}">'
        f"<TotalTimeSeconds>{n - 1}</TotalTimeSeconds><DistanceMeters>{(n - 1) * 3.0}</DistanceMeters>"
        f"<AverageHeartRateBpm><Value>150</Value></AverageHeartRateBpm><Track>{''.join(pts)}</Track></Lap>"
        "<Creator><Name>Forerunner 935</Name></Creator></Activity></Activities></TrainingCenterDatabase>"
    )
    return text.encode()
