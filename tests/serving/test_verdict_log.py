"""The verdict log under real faults, on SQLite and on a real PostgreSQL server: a database another
process locks or that cuts its sessions, a full disk, rows it cannot take, a full queue, a stop
with work left. Nothing appended is lost; the writer never dies."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from serving.verdict_log import VerdictLog, VerdictLogFull, VerdictRecord
from tests.serving.conftest import LogDb


def record(i: int = 0, **kw) -> VerdictRecord:
    base = dict(ts=time.time(), request_id=uuid.uuid4().hex, station="st", part_id=f"p{i}", image_sha256="0" * 64,
                verdict="fail", label="scratch", confidence=0.9, defect_score=0.9, scores={"good": 0.1},
                model_name="m", model_version="v", latency_ms=1.0, batch_size=1)
    return VerdictRecord(**{**base, **kw})


def wait_for(cond, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_a_row_it_cannot_write_goes_to_the_dead_letters_and_the_writer_goes_on(log_db: LogDb,
                                                                             tmp_path: Path) -> None:
    vlog = VerdictLog(log_db.where, spill_dir=tmp_path)
    vlog.start()
    deep: dict = {}
    node = deep
    for _ in range(3000):  # json.dumps recurses: this one cannot be serialised
        node["a"] = {}
        node = node["a"]
    bad, good = record(0, metadata=deep), [record(i) for i in range(1, 6)]
    vlog.append(bad)
    for r in good:
        vlog.append(r)
    assert vlog.flush(10) and vlog.alive
    assert log_db.ids() == {r.request_id for r in good}
    assert bad.request_id in vlog.dead_letter.path.read_text() and vlog.counts["dead_letters"] == 1
    assert vlog.status() == ("ok", None)
    vlog.close()


def test_a_row_the_server_refuses_is_found_among_its_batch(postgres_url: str, tmp_path: Path) -> None:
    """PostgreSQL text cannot hold a NUL character: that row is a dead letter, its batch is written."""
    vlog = VerdictLog(postgres_url, spill_dir=tmp_path)
    vlog.start()
    bad, good = record(0, part_id="p\x00"), [record(i) for i in range(1, 6)]
    for r in (good[0], bad, *good[1:]):
        vlog.append(r)
    assert vlog.flush(10) and vlog.alive
    assert LogDb(postgres_url).ids() == {r.request_id for r in good}
    assert vlog.counts["dead_letters"] == 1 and bad.request_id in vlog.dead_letter.path.read_text()
    vlog.close()


def test_an_unavailable_database_is_spilled_around_then_replayed(log_db: LogDb, tmp_path: Path) -> None:
    vlog = VerdictLog(log_db.where, spill_dir=tmp_path)
    vlog.start()
    recs = [record(i) for i in range(100)]
    with log_db.unavailable():
        for r in recs:
            vlog.append(r)
        assert wait_for(lambda: vlog.backlog == 0)  # every record is safe: in the spill file
        assert vlog.status()[0] == "failing" and vlog.spill.exists()
    assert wait_for(lambda: log_db.ids() == {r.request_id for r in recs})
    assert wait_for(lambda: vlog.status()[0] == "ok") and not vlog.spill.exists()
    vlog.close()


def test_a_full_queue_refuses_new_records_and_loses_none(log_db: LogDb, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # the spill file cannot be created under a file: both stores refuse
    vlog = VerdictLog(log_db.where, max_backlog=50, spill_dir=blocker / "spill")
    vlog.start()
    with log_db.unavailable():
        taken = []
        for i in range(50):
            r = record(i)
            vlog.append(r)
            taken.append(r.request_id)
        with pytest.raises(VerdictLogFull, match="records behind"):
            vlog.append(record(99))
        assert wait_for(lambda: vlog.status()[0] == "failing")
    assert wait_for(lambda: log_db.ids() == set(taken))
    vlog.close()


def test_a_stop_meets_its_deadline_and_saves_what_is_left(log_db: LogDb, tmp_path: Path) -> None:
    vlog = VerdictLog(log_db.where, spill_dir=tmp_path)
    vlog.start()
    recs = [record(i) for i in range(20)]
    with log_db.unavailable(60):
        for r in recs:
            vlog.append(r)
        t0 = time.monotonic()
        vlog.close(timeout=2.0)
        assert time.monotonic() - t0 < 4.0
    spilled = {row["request_id"] for row in vlog.spill.read()}
    assert spilled == {r.request_id for r in recs}
    again = VerdictLog(log_db.where, spill_dir=tmp_path)  # the next start replays the spill file
    again.start()
    assert wait_for(lambda: log_db.ids() == spilled)
    again.close()
    assert not again.spill.exists()


def test_a_full_disk_costs_no_verdict(small_disk: Path, tmp_path: Path) -> None:
    db = small_disk / "v.sqlite"
    vlog = VerdictLog(db, images_dir=small_disk / "kept", keep_images_for=("fail",), spill_dir=tmp_path / "spill")
    vlog.start()
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as fh:  # fill the disk to the last block
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    recs = [record(i, metadata={"n": "x" * 400}) for i in range(300)]
    for r in recs:
        vlog.append(r, image=os.urandom(20_000), image_format="png")
    assert wait_for(lambda: vlog.backlog == 0)
    assert vlog.spill.exists()  # the rows the full disk refused are on the other disk
    filler.unlink()  # space again: the writer replays what it spilled
    assert wait_for(lambda: LogDb(db).ids() == {r.request_id for r in recs}, timeout=30)
    assert vlog.counts["images_not_kept"] > 0  # a full disk cost images, never rows
    vlog.close()
