"""An independent reference for the derived reads, written from the contract's words with no
code of the ledger's: slow and literal (every rule as the contract states it, one pass per
rule, brute force where the ledger probes). The tests hold the twin and Postgres to it.

Inputs are plain dicts as the log holds them: director events {eventId, position,
timestampMs, eventType, cameraId}, stills {stillCandidateId, position, timestampMs, score},
music moments {position, timestampMs, section, tempo}. Answers are the routes' JSON.
"""

from __future__ import annotations

import statistics
from typing import Any

Event = dict[str, Any]


def _ordered(events: list[Event], types: tuple[str, ...]) -> list[Event]:
    chosen = [e for e in events if e["eventType"] in types]
    return sorted(chosen, key=lambda e: (e["timestampMs"], e["position"]))


def cut_log(events: list[Event], from_ms: int, to_ms: int, limit: int) -> dict[str, Any]:
    camera: str | None = None
    held = False
    segments: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None  # the open segment
    for e in _ordered(events, ("cut", "hold", "release")):
        # the state after the event
        if e["eventType"] == "cut" and e["cameraId"] is not None:
            camera = e["cameraId"]
        elif e["eventType"] == "hold":
            held = True
        elif e["eventType"] == "release":
            held = False
        if camera is None:
            continue  # no camera set: no segment yet
        if current is None:
            opens = True  # the first event after which a camera is set
        else:
            opens = (camera, held) != (current["cameraId"], current["held"])
        if opens:
            if current is not None:
                current["endMs"] = e["timestampMs"]
                segments.append(current)
            current = {
                "cameraId": camera,
                "startMs": e["timestampMs"],
                "endMs": None,
                "held": held,
                "startEventId": e["eventId"],
            }
    if current is not None:
        segments.append(current)
    # zero-length segments are dropped ...
    segments = [s for s in segments if s["endMs"] != s["startMs"]]
    # ... then neighbours with the same (camera, held) merged, the first startEventId staying
    merged: list[dict[str, Any]] = []
    for s in segments:
        if merged and (merged[-1]["cameraId"], merged[-1]["held"]) == (s["cameraId"], s["held"]):
            merged[-1]["endMs"] = s["endMs"]
        else:
            merged.append(dict(s))
    chosen = [
        s for s in merged if s["startMs"] <= to_ms and (s["endMs"] is None or s["endMs"] > from_ms)
    ][:limit]
    on_air: dict[str, int] = {}
    for s in chosen:
        if s["endMs"] is not None:
            on_air[s["cameraId"]] = on_air.get(s["cameraId"], 0) + s["endMs"] - s["startMs"]
    return {"segments": chosen, "onAirMs": on_air}


def hero_windows(
    events: list[Event],
    stills: list[Event],
    pad_ms: int,
    limit: int,
    from_ms: int = 0,
    to_ms: int = 1 << 62,
) -> list[dict[str, Any]]:
    intervals = [
        (m["timestampMs"] - pad_ms, m["timestampMs"] + pad_ms, m)
        for m in _ordered(events, ("hero_pose_marker",))
    ]
    intervals.sort(key=lambda item: (item[0], item[2]["position"]))
    windows: list[dict[str, Any]] = []
    for start, end, marker in intervals:
        if windows and start <= windows[-1]["endMs"]:
            windows[-1]["endMs"] = max(windows[-1]["endMs"], end)
            windows[-1]["_markers"].append(marker)
        else:
            windows.append({"startMs": start, "endMs": end, "_markers": [marker]})
    out = []
    for w in windows:
        if not (w["startMs"] <= to_ms and w["endMs"] >= from_ms):
            continue
        markers = sorted(w.pop("_markers"), key=lambda m: (m["timestampMs"], m["position"]))
        inside = [s for s in stills if w["startMs"] <= s["timestampMs"] <= w["endMs"]]
        inside.sort(key=lambda s: (-s["score"], s["timestampMs"], s["position"]))
        out.append(
            {
                "startMs": w["startMs"],
                "endMs": w["endMs"],
                "markers": [m["eventId"] for m in markers],
                "cameraIds": sorted({m["cameraId"] for m in markers if m["cameraId"] is not None}),
                "stills": [s["stillCandidateId"] for s in inside],
            }
        )
    return out[:limit]


def alignment(
    events: list[Event], moments: list[Event], from_ms: int, to_ms: int, limit: int
) -> dict[str, Any]:
    bars = [e["timestampMs"] for e in events if e["eventType"] == "bar_fire"]
    starts = [e["timestampMs"] for e in events if e["eventType"] == "music_phrase_start"]
    ends = [e["timestampMs"] for e in events if e["eventType"] == "music_phrase_end"]
    items = [
        e
        for e in _ordered(events, ("cut", "hero_pose_marker", "still_candidate_marker"))
        if from_ms <= e["timestampMs"] <= to_ms
    ][:limit]
    out = []
    for item in items:
        t = item["timestampMs"]
        bar = min(bars, key=lambda b: (abs(t - b), b)) if bars else None
        s = max((x for x in starts if x <= t), default=None)
        e = None if s is None else min((x for x in ends if x >= s), default=None)
        inside = s is not None and (e is None or e >= t)
        before = [m for m in moments if m["timestampMs"] <= t]
        moment = max(before, key=lambda m: (m["timestampMs"], m["position"])) if before else None
        out.append(
            {
                "eventId": item["eventId"],
                "eventType": item["eventType"],
                "timestampMs": t,
                "cameraId": item["cameraId"],
                "nearestBarMs": bar,
                "offsetMs": None if bar is None else t - bar,
                "phraseStartMs": s if inside else None,
                "phraseEndMs": e if inside else None,
                "section": None if moment is None else moment["section"],
                "tempo": None if moment is None else moment["tempo"],
            }
        )
    offsets = [abs(i["offsetMs"]) for i in out if i["offsetMs"] is not None]
    return {"items": out, "medianAbsOffsetMs": statistics.median(offsets) if offsets else None}
