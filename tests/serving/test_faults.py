"""Real faults under a real server with stations posting: a full disk under the verdict database, the
database locked by another process, and SIGTERM mid-load. No answered verdict is lost, and the
stop keeps its deadline."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from serving.loadgen import StationLoad
from serving.spill import JsonLines
from tests.serving.conftest import STATION_KEY, LogDb, jpeg
from tests.serving.live import ST, serve
from tests.serving.test_verdict_log import wait_for
from tests.support import make_tiny_bundle

pytestmark = pytest.mark.slow
IMAGES = [jpeg(i) for i in range(20)]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("faults") / "tiny").path


def _spilled(live, spill_dir: Path | None = None) -> set[str]:
    folder = spill_dir or live.db.parent
    return {r["request_id"] for p in folder.glob("*.spill.jsonl*") for r in JsonLines(p).read()}


def test_a_full_disk_under_the_verdict_log_loses_no_answered_verdict(bundle: Path, tmp_path: Path,
                                                                     small_disk: Path) -> None:
    spill = tmp_path / "spill"
    env = {"DEFECTSCOPE_VERDICT_SPILL_DIR": str(spill)}
    with serve(bundle, tmp_path, "--keep-images", str(small_disk / "kept"), env=env, db=small_disk / "v.sqlite") \
            as live:
        filler = small_disk / "filler"
        with open(filler, "wb", buffering=0) as fh:  # fill the disk to its last block while the service runs
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        with StationLoad(live.url, STATION_KEY, IMAGES, stations=4) as stations:
            time.sleep(6)
        health = httpx.get(f"{live.url}/readyz", headers=ST, timeout=10).json()
        assert stations.answered and not stations.failed, stations.failed[:3]
        assert health["status"] == "not_ready" and "verdict log failing" in health["detail"]
        filler.unlink()  # space again: the spilled verdicts go into the database
        assert wait_for(lambda: httpx.get(f"{live.url}/readyz", headers=ST, timeout=10).status_code == 200, 30)
        code, out = live.stop()
    assert code == 0, out[-2000:]
    missing = set(stations.answered) - {r[0] for r in live.rows()}
    assert not missing, f"{len(missing)} of {len(stations.answered)} answered verdicts are not in the log"


def test_a_database_locked_by_another_process_loses_no_answered_verdict(bundle: Path, tmp_path: Path) -> None:
    with serve(bundle, tmp_path) as live:
        with StationLoad(live.url, STATION_KEY, IMAGES, stations=4) as stations, LogDb(live.db).unavailable(60):
            time.sleep(5)
            assert httpx.get(f"{live.url}/readyz", headers=ST, timeout=10).status_code == 503
        assert wait_for(lambda: httpx.get(f"{live.url}/readyz", headers=ST, timeout=10).status_code == 200, 30)
        code, out = live.stop()
    assert code == 0 and stations.answered and not stations.failed, out[-2000:]
    assert set(stations.answered) <= {r[0] for r in live.rows()}


def test_sigterm_under_load_stops_within_its_deadline_and_loses_nothing(bundle: Path, tmp_path: Path) -> None:
    env = {"DEFECTSCOPE_SHUTDOWN_TIMEOUT_S": "10"}
    with serve(bundle, tmp_path, env=env) as live, LogDb(live.db).unavailable(120), \
            StationLoad(live.url, STATION_KEY, IMAGES, stations=8) as stations:
        time.sleep(4)  # the database is locked too: the stop has verdicts it cannot write
        t0 = time.monotonic()
        code, out = live.stop(signal.SIGTERM, timeout=60)
        took = time.monotonic() - t0
    assert took < 10 + 5, f"stopping took {took:.1f} s"
    assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in out, out[-2000:]
    assert stations.answered
    saved = {r[0] for r in live.rows()} | _spilled(live)
    missing = set(stations.answered) - saved
    assert not missing, f"{len(missing)} of {len(stations.answered)} answered verdicts lost"
