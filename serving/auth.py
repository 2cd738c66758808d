"""API keys with roles. A station key may inspect; an engineer key may also read logs and manage models.

Keys are kept as SHA-256 digests and compared in constant time against every configured key,
so neither timing nor logs reveal them. A station key may be bound to the station ids it posts
as (``line3-cam1|line3-cam2:KEY``), so one leaked key cannot speak for the whole line.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum

from serving.config import Settings, parse_key_entry


class Role(str, Enum):
    STATION = "station"
    ENGINEER = "engineer"


# What each role may do: an engineer may do everything a station may.
_GRANTS = {Role.STATION: {Role.STATION}, Role.ENGINEER: {Role.STATION, Role.ENGINEER}}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class Principal:
    """Who sent a request: the key's role, a short non-secret id for per-client limits, its stations."""

    role: Role
    client: str  # "key:<digest prefix>", or "addr:<ip>" with auth off
    stations: frozenset[str] | None = None  # None: any station id (subject to the service's cap)


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        self.disabled = settings.auth_disabled
        self._keys: list[tuple[bytes, Role, frozenset[str] | None]] = []
        for k in settings.station_keys:
            key, stations = parse_key_entry(k.get_secret_value())
            self._keys.append((_digest(key), Role.STATION, stations))
        self._keys += [(_digest(k.get_secret_value()), Role.ENGINEER, None) for k in settings.engineer_keys]

    def __repr__(self) -> str:  # never print key material
        return f"KeyRing(disabled={self.disabled}, keys={len(self._keys)})"

    def identify(self, presented: str) -> Principal | None:
        d = _digest(presented)
        found: Principal | None = None
        for digest, role, stations in self._keys:  # no early exit: same time whichever key matches
            if hmac.compare_digest(d, digest):
                found = Principal(role, "key:" + digest[:6].hex(), stations)
        return found

    def role_of(self, presented: str) -> Role | None:
        p = self.identify(presented)
        return p.role if p is not None else None

    @staticmethod
    def allows(role: Role, needed: Role) -> bool:
        return needed in _GRANTS[role]
