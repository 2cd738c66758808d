"""The model registry: bundle versions on disk with lineage, and one champion per line (GUIDE §3).

    REGISTRY/
      registry.json             versions (lineage, metrics, notes) and per line: champion, the
                                promotion stack that rollback walks back, candidate statuses, events
      versions/<version>/       a copy of each bundle, moved in with one rename

Every change is read-modify-write of registry.json under an exclusive file lock, written to a
temporary file and renamed, so two writers cannot lose an update and a crash leaves the previous
state. Bundle folders are copied in before registry.json names them, so a name never points at
a half-copied bundle.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from inspection.atomic import atomic_dir, write_text_atomic
from inspection.bundle import WEIGHTS, Bundle, check_weights, load_bundle
from inspection.errors import BundleError, ModelRegistryError
from inspection.filelock import file_lock

REGISTRY_JSON = "registry.json"
VERSIONS = "versions"
LOCK = ".registry.lock"
REGISTRY_FORMAT = 1
STATUSES = ("candidate", "promoted", "rejected", "rolled_back")
DEFAULT_LINE = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ModelRegistryError(f"{what} {value!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-'")
    return value


def _metrics_summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures worth listing next to a version (the full metrics stay in its card)."""
    val = metrics.get("val") or {}
    pf = val.get("pass_fail") or {}
    out = {"val_accuracy": val.get("accuracy"), "val_macro_f1": val.get("macro_f1"),
           "val_escape_rate": pf.get("escape_rate"), "val_false_reject_rate": pf.get("false_reject_rate")}
    return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class VersionInfo:
    version: str
    name: str
    arch: str
    classes: tuple[str, ...]
    parent_version: str | None
    dataset_fingerprint: str | None
    created: str
    added: str
    metrics: dict[str, Any]
    note: str | None
    status: dict[str, str]  # line -> candidate / promoted / rejected / rolled_back
    champion_of: tuple[str, ...]  # lines this version serves now


class ModelRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading --------------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        path = self.root / REGISTRY_JSON
        if not path.is_file():
            return {"format": REGISTRY_FORMAT, "versions": {}, "lines": {}}
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelRegistryError(f"{path} is unreadable ({exc}): restore it from a backup") from None
        if not isinstance(state, dict) or state.get("format", 0) > REGISTRY_FORMAT:
            raise ModelRegistryError(f"{path} has an unknown format: upgrade defectscope")
        return state

    @contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """The registry state for changing; written atomically when the block ends without error."""
        with file_lock(self.root / LOCK):
            state = self._read()
            yield state
            self._write(state)

    def _write(self, state: dict[str, Any]) -> None:
        """Write ``state`` (hold the lock)."""
        state["revision"] = int(state.get("revision", 0)) + 1
        write_text_atomic(self.root / REGISTRY_JSON, json.dumps(state, indent=2, sort_keys=True))

    def exists(self) -> bool:
        return (self.root / REGISTRY_JSON).is_file()

    def revision(self) -> int:
        """Grows with every change; cheap to poll."""
        return int(self._read().get("revision", 0))

    def _line(self, state: dict[str, Any], line: str) -> dict[str, Any]:
        return state["lines"].setdefault(_check_name(line, "line"),
                                         {"champion": None, "stack": [], "status": {}, "events": []})

    def champion_version(self, line: str = DEFAULT_LINE) -> str | None:
        entry = self._read()["lines"].get(_check_name(line, "line"))
        return entry["champion"] if entry else None

    def champion(self, line: str = DEFAULT_LINE) -> Path:
        """The champion bundle's folder for ``line``."""
        version = self.champion_version(line)
        if version is None:
            raise ModelRegistryError(f"line {line!r} has no champion in {self.root}: register one with "
                                     "'defectscope models add BUNDLE --promote'")
        return self.path_of(version)

    def path_of(self, version: str) -> Path:
        if _check_name(version, "version") not in self._read()["versions"]:
            raise ModelRegistryError(f"version {version!r} is not in {self.root}: see 'defectscope models list'")
        return self.root / VERSIONS / version

    def load(self, version: str) -> Bundle:
        """The version's bundle, hashes verified."""
        return load_bundle(self.path_of(version))

    def list(self) -> list[VersionInfo]:
        """Every version, oldest first."""
        state = self._read()
        out = []
        for v, meta in sorted(state["versions"].items(), key=lambda kv: kv[1].get("seq", 0)):
            status = {ln: e["status"][v] for ln, e in state["lines"].items() if v in e["status"]}
            champ = tuple(ln for ln, e in state["lines"].items() if e["champion"] == v)
            out.append(VersionInfo(
                version=v, name=meta["name"], arch=meta["arch"], classes=tuple(meta["classes"]),
                parent_version=meta.get("parent_version"), dataset_fingerprint=meta.get("dataset_fingerprint"),
                created=meta["created"], added=meta["added"], metrics=meta.get("metrics", {}),
                note=meta.get("note"), status=status, champion_of=champ))
        return out

    def show(self, version: str) -> dict[str, Any]:
        """Everything known about a version: registry entry, statuses, events and its full card."""
        info = next((i for i in self.list() if i.version == version), None)
        if info is None:
            raise ModelRegistryError(f"version {version!r} is not in {self.root}: see 'defectscope models list'")
        state = self._read()
        events = [{**ev, "line": ln} for ln, e in state["lines"].items() for ev in e["events"]
                  if version in (ev.get("version"), ev.get("previous"))]
        card = load_bundle(self.root / VERSIONS / version, verify=False).card.to_dict()
        return {"info": asdict(info), "events": events, "card": card}

    def lines(self) -> dict[str, dict[str, Any]]:
        return self._read()["lines"]

    # -- changing -------------------------------------------------------------------------------
    def add(self, bundle_path: str | Path, *, line: str = DEFAULT_LINE, status: str = "candidate",
            note: str | None = None, reason: str | None = None, metrics: dict[str, Any] | None = None) -> str:
        """Copy a bundle in (verified first) and record it; returns its version.

        ``status`` "promoted" makes it the champion of ``line``; ``metrics`` (e.g. golden-set
        figures) are stored next to the card's own summary. Adding the same weights again only
        updates the status.
        """
        if status not in STATUSES[:3]:
            raise ModelRegistryError(f"status must be candidate, promoted or rejected, not {status!r}")
        _check_name(line, "line")
        bundle = load_bundle(bundle_path)  # BundleError: a corrupt bundle never enters the registry
        check_weights(bundle)
        card = bundle.card
        version = _check_name(card.version, "bundle version")
        target = self.root / VERSIONS / version
        # the copy is under the lock too: two writers adding one version must not both move it in
        with file_lock(self.root / LOCK):
            self._copy_in(bundle, target)
            state = self._read()
            self._record_add(state, version, card, line, status, note, reason, metrics)
            self._write(state)
        return version

    def _record_add(self, state: dict[str, Any], version: str, card: Any, line: str, status: str,
                    note: str | None, reason: str | None, metrics: dict[str, Any] | None) -> None:
        meta = state["versions"].get(version)
        if meta is None:
            state["versions"][version] = {
                "name": card.name, "arch": card.arch, "classes": list(card.classes),
                "pass_classes": list(card.pass_classes), "parent_version": card.parent_version,
                "dataset_fingerprint": card.dataset_fingerprint, "created": card.created, "added": _now(),
                "metrics": {**_metrics_summary(card.metrics), **(metrics or {})}, "note": note,
                "weights_sha256": card.files.get(WEIGHTS), "seq": len(state["versions"]),
            }
        elif metrics:
            meta["metrics"] = {**meta.get("metrics", {}), **metrics}
        entry = self._line(state, line)
        entry["events"].append({"at": _now(), "action": "add", "version": version, "status": status,
                                "reason": reason or note})
        if status == "promoted":
            self._promote(entry, version, reason or "registered as champion")
        elif entry["champion"] == version:
            if status == "rejected":
                raise ModelRegistryError(f"{version} is the champion of {line!r}: roll back or promote "
                                         "another version before rejecting it")
        else:
            entry["status"][version] = status
            if reason:
                entry.setdefault("reasons", {})[version] = reason

    def _copy_in(self, bundle: Bundle, target: Path) -> None:
        if target.is_dir():
            try:
                existing = load_bundle(target)
            except BundleError:
                existing = None  # a damaged copy: replace it below
            if existing is not None:
                if existing.card.files.get(WEIGHTS) != bundle.card.files.get(WEIGHTS):
                    raise ModelRegistryError(f"version {target.name} is already registered with other weights: "
                                             "give the new bundle another version")
                return
        with atomic_dir(target) as tmp:
            for f in bundle.path.iterdir():
                if f.is_file():
                    shutil.copy2(f, tmp / f.name)

    def promote(self, version: str, *, line: str = DEFAULT_LINE, reason: str = "promoted by hand") -> None:
        """Make ``version`` the champion of ``line`` (the previous one stays on the rollback stack)."""
        load_bundle(self.path_of(version))  # never promote a bundle that no longer verifies
        with self._editing() as state:
            self._promote(self._line(state, line), version, reason)

    @staticmethod
    def _promote(entry: dict[str, Any], version: str, reason: str) -> None:
        previous = entry["champion"]
        if previous == version:
            return
        entry["champion"] = version
        entry["stack"].append(version)
        entry["status"][version] = "promoted"
        entry.setdefault("reasons", {})[version] = reason
        entry["events"].append({"at": _now(), "action": "promote", "version": version, "previous": previous,
                                "reason": reason})

    def status_of(self, version: str, line: str = DEFAULT_LINE) -> str | None:
        """candidate, promoted, rejected, rolled_back, or None when ``line`` never saw ``version``."""
        entry = self._read()["lines"].get(_check_name(line, "line"))
        return entry["status"].get(version) if entry else None

    def record_event(self, line: str, action: str, version: str, reason: str) -> None:
        """Note something done with a version outside the registry (a service began serving it)."""
        self.path_of(version)
        with self._editing() as state:
            self._line(state, line)["events"].append({"at": _now(), "action": action, "version": version,
                                                      "reason": reason})

    def record_metrics(self, version: str, metrics: dict[str, Any]) -> None:
        """Add figures measured later (e.g. the champion on a golden set) to a version's entry."""
        self.path_of(version)
        with self._editing() as state:
            meta = state["versions"][version]
            meta["metrics"] = {**meta.get("metrics", {}), **metrics}

    def reject(self, version: str, *, line: str = DEFAULT_LINE, reason: str) -> None:
        self.path_of(version)
        with self._editing() as state:
            entry = self._line(state, line)
            if entry["champion"] == version:
                raise ModelRegistryError(f"{version} is the champion of {line!r}: roll back or promote another first")
            entry["status"][version] = "rejected"
            entry.setdefault("reasons", {})[version] = reason
            entry["events"].append({"at": _now(), "action": "reject", "version": version, "reason": reason})

    def rollback(self, line: str = DEFAULT_LINE, *, reason: str = "rolled back by hand") -> str:
        """Put the previous champion of ``line`` back; returns its version."""
        with self._editing() as state:
            entry = self._line(state, line)
            if len(entry["stack"]) < 2:
                raise ModelRegistryError(f"line {line!r} has no earlier champion to roll back to")
            current = entry["stack"].pop()
            previous = entry["stack"][-1]
            entry["champion"] = previous
            entry["status"][current] = "rolled_back"
            entry.setdefault("reasons", {})[current] = reason
            entry["events"].append({"at": _now(), "action": "rollback", "version": previous, "previous": current,
                                    "reason": reason})
        return previous
