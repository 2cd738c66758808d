"""``retrain(config)``: champion + new samples -> a challenger, compared on the golden set, registered.

1. The champion of the line comes from the registry; the golden set is loaded and checked (same
   fingerprint as when the champion was last scored, files unchanged, no image shared with the
   training data).
2. The old data and the new samples are merged into RUN/data (hard links, the standard layout);
   a share of the new samples goes to validation so early stopping and calibration see them.
3. The challenger is fine-tuned from the champion (new classes get fresh head rows) and its
   thresholds calibrated, by ``training.train``.
4. Both are scored on the golden set, the promotion rules decide, the challenger is registered as
   promoted or rejected with the reason, and RUN/report.html + report.json show both side by side.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from datasets.layout import Dataset, DatasetError, DatasetInfo, Sample
from inspection.atomic import atomic_dir
from inspection.bundle import load_bundle
from registry import DEFAULT_LINE, ModelRegistry
from training.config import TrainConfig
from training.golden import GoldenSet, GoldenSetError, load_golden, score_on_golden
from training.promotion import Decision, PromotionRules, decide
from training.retrain_report import write_report

# Fine-tuning starts from a trained network: fewer epochs and a gentler learning rate than from scratch.
FINE_TUNE: dict[str, Any] = {"epochs": 12, "lr": 5e-4, "min_epochs": 3, "patience": 4, "warmup_epochs": 0.5}


@dataclass(frozen=True)
class RetrainConfig:
    registry: str
    data: str  # the dataset the champion was trained on
    golden: str  # dataset folder holding the frozen golden set
    out: str  # run folder
    samples: str | None = None  # the sample dataset new labelled images went to
    line: str = DEFAULT_LINE
    golden_split: str = "test"  # or "all"
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides (epochs, lr, batch_size, ...)
    rules: PromotionRules = field(default_factory=PromotionRules)
    auto_promote: bool = True  # False: a passing challenger stays a candidate for 'models promote'
    samples_val_fraction: float = 0.2
    accept_new_golden: bool = False  # the golden set changed on purpose: score the champion again
    threads: int | None = None


@dataclass(frozen=True)
class RetrainResult:
    champion_version: str
    challenger_version: str
    status: str  # promoted, rejected, candidate
    decision: Decision
    champion: dict[str, Any]
    challenger: dict[str, Any]
    run_dir: Path
    report_html: Path
    bundle_path: Path


def _golden_summary(m: dict[str, Any]) -> dict[str, Any]:
    return {"golden_fingerprint": m["golden_fingerprint"], "golden_defect_recall": m["defect_recall"],
            "golden_escape_rate": m["escape_rate"], "golden_false_reject_rate": m["false_reject_rate"],
            "golden_class_recall": {c: v["recall"] for c, v in m["per_class"].items()}}


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def _to_val(sha: str, fraction: float) -> bool:
    return int(sha[:8], 16) % 1000 < fraction * 1000  # deterministic: the same sample always lands alike


def merge_datasets(base: Dataset, samples: Dataset | None, out: Path, first_classes: tuple[str, ...],
                   pass_classes: tuple[str, ...], val_fraction: float) -> Dataset:
    """Old data plus new samples in one dataset folder; the same image (sha256) is kept once."""
    rows: list[tuple[Dataset, Sample]] = [(base, s) for s in base.samples]
    seen = {s.sha256: s.label for s in base.samples if s.sha256}
    for s in samples.samples if samples is not None else []:
        if s.sha256 in seen:
            if seen[s.sha256] != s.label:
                raise DatasetError(f"sample {s.path} is labelled {s.label!r} but the training data has the same "
                                   f"image as {seen[s.sha256]!r}: fix one of the two labels")
            continue
        seen[s.sha256] = s.label
        split = "val" if s.split == "train" and _to_val(s.sha256, val_fraction) else s.split
        rows.append((samples, replace(s, split=split)))
    labels = {s.label for _, s in rows}
    extra = tuple(sorted(labels - set(first_classes)))
    classes = tuple(dict.fromkeys((*first_classes, *base.info.classes,
                                   *(samples.info.classes if samples else ()), *extra)))
    out_rows = []
    with atomic_dir(out) as tmp:
        for ds, s in rows:
            rel = s.path if ds is base else f"images/{s.label}/new-{Path(s.path).name}"
            _link(ds.abspath(s), tmp / rel)
            out_rows.append(replace(s, path=rel, mask=s.mask if ds is base and s.mask else ""))
            if ds is base and s.mask:
                _link(ds.abspath(replace(s, path=s.mask)), tmp / s.mask)
        Dataset(tmp, DatasetInfo(classes, pass_classes, {"merged_from": [str(base.root)] + (
            [str(samples.root)] if samples else [])}), out_rows).save()
    return Dataset.load(out)


def _check_golden(golden: GoldenSet, merged: Dataset, champion_metrics: dict[str, Any], accept_new: bool) -> None:
    pinned = champion_metrics.get("golden_fingerprint")
    if pinned is not None and pinned != golden.fingerprint and not accept_new:
        raise GoldenSetError(f"the golden set changed since the champion was scored on it (fingerprint {pinned} -> "
                             f"{golden.fingerprint}): restore it, or pass --accept-new-golden to rescore both")
    leaked = [s.path for s in merged.samples if s.split in ("train", "val") and s.sha256 in golden.shas]
    if leaked:
        raise GoldenSetError(f"{len(leaked)} golden images are also training data (e.g. {leaked[0]}): a golden set "
                             "must be unseen; pick another golden split or remove them from the samples")


def retrain(config: RetrainConfig, *, progress: bool = True) -> RetrainResult:
    from training.trainer import train

    reg = ModelRegistry(config.registry)
    champ_path = reg.champion(config.line)
    champ = load_bundle(champ_path)
    champ_info = next(i for i in reg.list() if i.version == champ.card.version)
    run = Path(config.out)
    golden = load_golden(config.golden, config.golden_split)
    base = Dataset.load(config.data)
    samples = Dataset.load(config.samples) if config.samples else None
    merged = merge_datasets(base, samples, run / "data", champ.card.classes, champ.card.pass_classes,
                            config.samples_val_fraction)
    _check_golden(golden, merged, champ_info.metrics, config.accept_new_golden)

    tc = TrainConfig.from_dict({**FINE_TUNE, **config.train, "data": str(run / "data"), "out": str(run / "train"),
                                "init_from": str(champ_path), "name": champ.card.name,
                                **({"threads": config.threads} if config.threads else {})})
    result = train(tc, progress=progress)
    threads = config.threads or 2
    champion_m = score_on_golden(champ_path, golden, threads=threads)
    challenger_m = score_on_golden(result.bundle_path, golden, threads=threads)
    decision = decide(champion_m, challenger_m, config.rules)
    reg.record_metrics(champ.card.version, _golden_summary(champion_m))
    status = "rejected" if not decision.promote else ("promoted" if config.auto_promote else "candidate")
    new_classes = [c for c in merged.info.classes if c not in champ.card.classes]
    note = f"retrained from {champ.card.version} on {len(merged.samples)} images" + (
        f"; new classes: {', '.join(new_classes)}" if new_classes else "")
    version = reg.add(result.bundle_path, line=config.line, status=status, reason=decision.reason, note=note,
                      metrics=_golden_summary(challenger_m))
    html = write_report(run, champion_m, challenger_m, decision, status,
                        {"line": config.line, "registry": str(config.registry), "golden": str(config.golden),
                         "golden_split": config.golden_split, "new_classes": new_classes,
                         "train_images": len(merged.split("train")), "val_images": len(merged.split("val")),
                         "train_result": result.to_dict()})
    return RetrainResult(champ.card.version, version, status, decision, champion_m, challenger_m, run, html,
                         result.bundle_path)
