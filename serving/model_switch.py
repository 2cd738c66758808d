"""Hot reload: load, vet and swap in a new model while the current one keeps serving, on request
(POST /v1/model/reload) or when the registry names a new champion (``--watch``).

Requests already decoded finish on the model that prepared them (the batcher keeps models apart),
so a swap fails nothing and delays nothing beyond one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

from inspection.errors import DefectscopeError
from inspection.predictor import Predictor
from inspection.timing import ms_since
from registry import ModelRegistry
from serving.config import Settings
from serving.reload import ReloadError, ReloadOutcome, prepare, record_served
from serving.schemas import ModelRef

log = logging.getLogger("defectscope.serving")


class Serving(Protocol):
    """What the switch needs of the service (serving.service.InspectionService)."""

    settings: Settings
    predictor: Predictor | None
    batcher: Any

    def start_batcher(self) -> None: ...


class ModelSwitch:
    def __init__(self, service: Serving) -> None:
        self.service = service
        self._lock = asyncio.Lock()
        self._watch_task: asyncio.Task[None] | None = None
        self.reloads = 0

    async def reload(self, version: str | None = None, *, force: bool = False) -> ReloadOutcome:
        svc = self.service
        async with self._lock:
            old = svc.predictor
            t0 = time.perf_counter()
            loop = asyncio.get_running_loop()
            cand = await loop.run_in_executor(None, prepare, svc.settings, old.card if old else None, version, force)
            new = cand.predictor
            changed = old is None or old.card.version != new.card.version or force
            if changed:
                svc.predictor = new  # one assignment: the next request prepares with the new model
                if svc.batcher is None:
                    svc.start_batcher()
                self.reloads += 1
                await loop.run_in_executor(None, record_served, svc.settings, new.card.version, force)
                log.info("reloaded: %s -> %s@%s from %s", old.card.version if old else "(none)", new.card.name,
                         new.card.version, cand.source)
            serving = svc.predictor or new
            return ReloadOutcome(
                previous=ModelRef(name=old.card.name, version=old.card.version) if old else None,
                model=ModelRef(name=serving.card.name, version=serving.card.version), changed=changed,
                source=cand.source, load_ms=round(cand.load_ms, 1), verify_ms=round(cand.verify_ms, 1),
                total_ms=round(ms_since(t0), 1), notes=list(cand.notes))

    def start_watch(self) -> None:
        s = self.service.settings
        if s.registry is not None and s.registry_watch_s is not None:
            self._watch_task = asyncio.create_task(self._watch(s.registry_watch_s))

    async def stop_watch(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task

    async def _watch(self, every_s: float) -> None:
        """Poll the registry; a new champion for our line is loaded like POST /v1/model/reload."""
        settings = self.service.settings
        assert settings.registry is not None
        reg = ModelRegistry(settings.registry)
        refused: str | None = None
        while True:
            await asyncio.sleep(every_s)
            champ = current = None
            try:
                champ = await asyncio.get_running_loop().run_in_executor(None, reg.champion_version, settings.line)
                current = self.service.predictor.card.version if self.service.predictor else None
                if champ is None or champ in (current, refused):
                    continue
                await self.reload()
            except ReloadError as exc:
                refused = champ  # do not retry a refused champion every poll; a new one is tried
                log.error("registry watch: champion %s refused, keeping %s: %s", champ, current, exc)
            except DefectscopeError as exc:
                log.error("registry watch: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # the watch must outlive any surprise; the service keeps serving
                log.exception("registry watch failed; retrying")
