"""Which station ids may post verdicts: the keys' bindings, and a cap on ids no key names.

Station ids come from clients, and everything per station (its SPC monitor and alarms, its
metric labels) is kept per id. So ids are admitted here once, before a verdict is made: a
key bound to stations may use only those (and needs to send none when it has one); any other
id is admitted while fewer than ``max_stations`` are known, and refused with a clear 4xx after
that. Nothing is ever evicted, so a flood of made-up ids cannot push a real station's monitor
and its active alarm out. Ids seen in the verdict log count as known at start.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from serving.auth import Principal
from serving.errors import ApiError

MAX_ID = 128


def check_ident(value: str | None, name: str) -> str | None:
    """A client-given id (station, part): printable, at most MAX_ID characters; empty is None."""
    if value is not None and (len(value) > MAX_ID or not value.isprintable()):
        raise ApiError(422, "invalid_request", f"{name} must be printable and at most {MAX_ID} characters")
    return value or None


def clean_ident(value: str | None) -> str | None:
    """A name from a file (a batch item's file name as its part id) made to follow the same rule."""
    if not value:
        return None
    clean = "".join(ch if ch.isprintable() else "?" for ch in value)
    return clean if len(clean) <= MAX_ID else "…" + clean[-(MAX_ID - 1):]


class StationRegistry:
    def __init__(self, max_stations: int, known: Iterable[str] = ()) -> None:
        self.max_stations = max_stations
        self._known: set[str] = set()
        self._lock = threading.Lock()
        for s in known:
            if len(self._known) < max_stations:
                self._known.add(s)

    def __len__(self) -> int:
        return len(self._known)

    def __contains__(self, station: object) -> bool:
        return station in self._known

    def admit(self, station: str | None, who: Principal | None) -> str | None:
        """The station id this request speaks for, or an ApiError saying why it may not."""
        bound = who.stations if who is not None else None
        if station is None:
            if bound is not None and len(bound) == 1:
                return next(iter(bound))  # a key bound to one station need not repeat its id
            if bound is not None:
                raise ApiError(422, "station_required", "this key serves several stations: send the station id "
                               "in X-Station-Id")
            return None
        if bound is not None and station not in bound:
            raise ApiError(403, "station_not_allowed", f"this key may not post as station {station[:64]!r}: it is "
                           "bound to other stations (DEFECTSCOPE_STATION_KEYS)")
        with self._lock:
            if station in self._known:
                return station
            if bound is None and len(self._known) >= self.max_stations:
                raise ApiError(422, "too_many_stations", f"the service already knows {self.max_stations} station "
                               "ids and takes no new one: use an existing id, bind station keys to their ids, "
                               "or raise DEFECTSCOPE_MAX_STATIONS")
            self._known.add(station)
            return station
