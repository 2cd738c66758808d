"""Retraining: golden set checks, merging samples, promotion rules, and the registry wiring of retrain()."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from datasets.intake import SampleIntake
from datasets.layout import Dataset, DatasetInfo
from inspection.bundle import load_bundle
from registry import ModelRegistry
from tests.training.conftest import make_marks_dataset
from training import TrainConfig
from training.golden import GoldenSetError, load_golden
from training.promotion import PromotionRules, PromotionRulesError, decide
from training.retrain import RetrainConfig, merge_datasets, retrain
from training.trainer import train

TINY = {"epochs": 1, "min_epochs": 0, "batch_size": 8, "threads": 1, "long_side": 32, "target_recall": 0.9}


def metrics(recall: float, frr: float, per_class: dict[str, tuple[float, bool]], fp: str = "g1") -> dict:
    return {"golden_fingerprint": fp, "defect_recall": recall, "false_reject_rate": frr,
            "per_class": {c: {"recall": r, "known_to_model": k, "n": 10, "escapes": 0} for c, (r, k) in
                          per_class.items()}}


def test_promotion_rules() -> None:
    champ = metrics(0.80, 0.05, {"stain": (1.0, True), "scratch": (0.2, False)})
    good = metrics(0.98, 0.06, {"stain": (1.0, True), "scratch": (0.95, True)})
    assert decide(champ, good, PromotionRules()).promote
    worse_recall = metrics(0.79, 0.0, {"stain": (0.9, True), "scratch": (0.95, True)})
    d = decide(champ, worse_recall, PromotionRules())
    assert not d.promote and d.reason.startswith("refused: defect recall")
    more_scrap = metrics(0.99, 0.10, {"stain": (1.0, True), "scratch": (0.95, True)})
    assert not decide(champ, more_scrap, PromotionRules()).promote
    assert decide(champ, more_scrap, PromotionRules(max_false_reject_increase=0.05)).promote
    misses_new = metrics(0.9, 0.05, {"stain": (1.0, True), "scratch": (0.7, True)})
    d = decide(champ, misses_new, PromotionRules())
    assert not d.promote and "recall of new class scratch" in d.reason
    with pytest.raises(PromotionRulesError, match="different golden sets"):
        decide(champ, metrics(1, 0, {}, fp="other"), PromotionRules())
    with pytest.raises(PromotionRulesError):
        PromotionRules(max_recall_drop=2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Base data without 'spot', a champion trained on it, spot samples, and a golden set with all classes."""
    root = tmp_path_factory.mktemp("retrain")
    base = make_marks_dataset(root / "data", {"train": {"good": 16, "scratch": 12}, "val": {"good": 6, "scratch": 6}},
                              seed=1)
    Dataset(base.root, DatasetInfo(("good", "scratch")), base.samples).save()
    golden = make_marks_dataset(root / "golden", {"test": {"good": 6, "scratch": 4, "spot": 4}}, seed=2)
    pool = make_marks_dataset(root / "pool", {"train": {"spot": 12}}, seed=3)
    intake = SampleIntake(root / "samples", known_classes=("good", "scratch"))
    for s in pool.samples:
        intake.add(pool.abspath(s).read_bytes(), "spot", new_class=True)
    champ = train(TrainConfig(data=str(base.root), out=str(root / "champ"), **TINY), progress=False)
    ModelRegistry(root / "registry").add(champ.bundle_path, status="promoted")
    return {"root": root, "data": base.root, "golden": golden.root, "samples": root / "samples",
            "registry": root / "registry", "pool": pool.root}


def test_merge_keeps_each_image_once_and_sends_some_samples_to_val(world: dict[str, Path], tmp_path: Path) -> None:
    base, samples = Dataset.load(world["data"]), Dataset.load(world["samples"])
    merged = merge_datasets(base, samples, tmp_path / "m", ("good", "scratch"), ("good",), 0.3)
    assert merged.info.classes == ("good", "scratch", "spot") and merged.info.pass_classes == ("good",)
    assert len(merged.samples) == len(base.samples) + len(samples.samples)
    spots = [s for s in merged.samples if s.label == "spot"]
    assert {s.split for s in spots} == {"train", "val"}
    assert all(merged.abspath(s).is_file() for s in merged.samples)
    assert merged.fingerprint() != base.fingerprint()


def test_golden_set_is_checked(world: dict[str, Path], tmp_path: Path) -> None:
    g = load_golden(world["golden"], "test")
    assert len(g.dataset.samples) == 14 and g.fingerprint == load_golden(world["golden"], "test").fingerprint
    copy = tmp_path / "golden"
    shutil.copytree(world["golden"], copy)
    first = Dataset.load(copy).samples[0]
    (copy / first.path).write_bytes(b"changed")
    with pytest.raises(GoldenSetError, match="does not match the sha256"):
        load_golden(copy, "test")
    with pytest.raises(GoldenSetError, match="no images in split"):
        load_golden(world["golden"], "train")


def test_retrain_registers_the_challenger_with_its_verdict(world: dict[str, Path], tmp_path: Path) -> None:
    reg = ModelRegistry(world["registry"])
    champion = reg.champion_version()
    cfg = RetrainConfig(registry=str(world["registry"]), data=str(world["data"]), samples=str(world["samples"]),
                        golden=str(world["golden"]), out=str(tmp_path / "run"), train=TINY)
    res = retrain(cfg, progress=False)
    info = {i.version: i for i in reg.list()}
    new = info[res.challenger_version]
    assert res.champion_version == champion and new.parent_version == champion
    assert new.classes == ("good", "scratch", "spot")
    assert new.status["default"] == res.status == ("promoted" if res.decision.promote else "rejected")
    assert reg.champion_version() == (res.challenger_version if res.decision.promote else champion)
    assert info[champion].metrics["golden_fingerprint"] == new.metrics["golden_fingerprint"]
    assert res.champion["per_class"]["spot"]["known_to_model"] is False
    assert res.challenger["per_class"]["spot"]["known_to_model"] is True
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["decision"]["promote"] == res.decision.promote and report["new_classes"] == ["spot"]
    assert "champion" in res.report_html.read_text() and load_bundle(res.bundle_path).card.classes[-1] == "spot"

    if res.decision.promote:
        reg.rollback(reason="test")
    # the golden set must stay frozen: a changed one is refused before any training
    changed = tmp_path / "golden2"
    shutil.copytree(world["golden"], changed)
    ds = Dataset.load(changed)
    Dataset(changed, ds.info, ds.samples[1:]).save()
    with pytest.raises(GoldenSetError, match="changed since the champion"):
        retrain(RetrainConfig(registry=str(world["registry"]), data=str(world["data"]), golden=str(changed),
                              out=str(tmp_path / "run2"), train=TINY), progress=False)
    assert not (tmp_path / "run2" / "train").exists()
    # golden images may not be training data
    with pytest.raises(GoldenSetError, match="also training data"):
        retrain(RetrainConfig(registry=str(world["registry"]), data=str(world["data"]), golden=str(world["data"]),
                              golden_split="val", out=str(tmp_path / "run3"), train=TINY, accept_new_golden=True),
                progress=False)
