"""API keys with roles. A station key may inspect; an engineer key may also read logs and manage models.

Keys are kept as SHA-256 digests and compared in constant time against every configured key,
so neither timing nor logs reveal them.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import Enum

from serving.config import Settings


class Role(str, Enum):
    STATION = "station"
    ENGINEER = "engineer"


# What each role may do: an engineer may do everything a station may.
_GRANTS = {Role.STATION: {Role.STATION}, Role.ENGINEER: {Role.STATION, Role.ENGINEER}}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        self.disabled = settings.auth_disabled
        self._keys = [(_digest(k.get_secret_value()), Role.STATION) for k in settings.station_keys]
        self._keys += [(_digest(k.get_secret_value()), Role.ENGINEER) for k in settings.engineer_keys]

    def __repr__(self) -> str:  # never print key material
        return f"KeyRing(disabled={self.disabled}, keys={len(self._keys)})"

    def role_of(self, presented: str) -> Role | None:
        d = _digest(presented)
        found: Role | None = None
        for digest, role in self._keys:  # no early exit: same time whichever key matches
            if hmac.compare_digest(d, digest):
                found = role
        return found

    @staticmethod
    def allows(role: Role, needed: Role) -> bool:
        return needed in _GRANTS[role]
