"""Interview invitations as iCalendar (RFC 5545) events in the applicant's time zone.

The event carries DTSTART/DTEND with a TZID parameter and a VTIMEZONE component for that
zone (RFC 5545 §3.6.5; §3.3.5 form 3, local time with time-zone reference), so calendar
programmes show the interview at the applicant's local time; the zone's rules for the
year of the interview (standard/daylight offsets and their transitions) are computed from
the IANA database through :mod:`zoneinfo`. Lines are CRLF-terminated and folded at 75
octets (§3.1); text values escaped (§3.3.11).

>>> import datetime as dt
>>> ics = invitation("uid-1@oncohybrid", dt.datetime(2021, 7, 5, 8, 0, tzinfo=dt.UTC), 30,
...                  "Europe/Rome", "Interview", "video call", "director@example.org")
>>> "DTSTART;TZID=Europe/Rome:20210705T100000" in ics
True
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

__all__ = ["invitation", "escape_text"]


def escape_text(text: str) -> str:
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _fold(line: str) -> str:
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    out, cur = [], b""
    for ch in line:
        b = ch.encode("utf-8")
        if len(cur) + len(b) > (75 if not out else 74):
            out.append(cur.decode("utf-8"))
            cur = b""
        cur += b
    out.append(cur.decode("utf-8"))
    return "\r\n ".join(out)


def _offset(td: dt.timedelta) -> str:
    minutes = int(td.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}{m:02d}"


def _vtimezone(zone: str, year: int) -> list[str]:
    """The zone's offsets in ``year``: one STANDARD/DAYLIGHT block per transition (found
    hour by hour, so a transition off the full hour is placed at the next hour), or a
    single STANDARD block for a zone without summer time."""
    tz = ZoneInfo(zone)
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone}"]
    t = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    prev = t.astimezone(tz)
    blocks = []
    while t < end:
        t += dt.timedelta(hours=1)
        cur = t.astimezone(tz)
        if cur.utcoffset() != prev.utcoffset():
            blocks.append((t, cur, prev.utcoffset(), cur.utcoffset(), bool(cur.dst())))
        prev = cur
    if not blocks:
        off = _offset(prev.utcoffset() or dt.timedelta(0))
        blocks_lines = ["BEGIN:STANDARD", f"DTSTART:{year}0101T000000", f"TZOFFSETFROM:{off}",
                        f"TZOFFSETTO:{off}", f"TZNAME:{prev.tzname()}", "END:STANDARD"]
        return [*lines, *blocks_lines, "END:VTIMEZONE"]
    for instant, local, before, after, is_dst in blocks:
        kind = "DAYLIGHT" if is_dst else "STANDARD"
        # DTSTART is the onset in the local time that was in effect before it (§3.6.5).
        onset = (instant + (before or dt.timedelta(0))).replace(tzinfo=None)
        lines += [f"BEGIN:{kind}", f"DTSTART:{onset:%Y%m%dT%H%M%S}",
                  f"TZOFFSETFROM:{_offset(before)}", f"TZOFFSETTO:{_offset(after)}",
                  f"TZNAME:{local.tzname()}", f"END:{kind}"]
    return [*lines, "END:VTIMEZONE"]


def invitation(uid: str, start_utc: dt.datetime, minutes: int, zone: str, summary: str,
               location: str, organizer: str, description: str = "",
               stamp: dt.datetime | None = None) -> str:
    """One VEVENT in ``zone`` (the applicant's), as the text of an .ics file."""
    tz = ZoneInfo(zone)
    start = start_utc.astimezone(tz)
    end = (start_utc + dt.timedelta(minutes=minutes)).astimezone(tz)
    stamp = stamp or dt.datetime.now(dt.UTC)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//oncohybrid//fellowship//EN",
             "CALSCALE:GREGORIAN", "METHOD:REQUEST", *_vtimezone(zone, start.year),
             "BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{stamp.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}",
             f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}",
             f"DTEND;TZID={zone}:{end:%Y%m%dT%H%M%S}",
             f"SUMMARY:{escape_text(summary)}", f"LOCATION:{escape_text(location)}",
             f"ORGANIZER:mailto:{organizer}"]
    if description:
        lines.append(f"DESCRIPTION:{escape_text(description)}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(_fold(line) + "\r\n" for line in lines)
