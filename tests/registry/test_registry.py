"""The on-disk model registry: versions with lineage, champion per line, promote and rollback, crash safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inspection import atomic as atomic_mod
from inspection.bundle import load_bundle
from inspection.errors import BundleError, ModelRegistryError
from registry import REGISTRY_JSON, ModelRegistry
from tests.support import make_tiny_bundle, run_in_threads
from training.export import save_bundle


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three bundles with different weights (so different versions), the later ones children of the first."""
    root = tmp_path_factory.mktemp("bundles")
    first = make_tiny_bundle(root / "a")
    out = [first.path]
    for i, name in enumerate(("b", "c"), start=1):
        model = first.build_torch_model()
        with torch.no_grad():
            next(model.parameters()).add_(0.01 * i)
        card = first.card.with_(version="", parent_version=first.card.version, dataset_fingerprint=f"fp{i}")
        out.append(save_bundle(root / name, model, card, export=False).path)
    return out


def versions(paths: list[Path]) -> list[str]:
    return [load_bundle(p).card.version for p in paths]


def test_add_promote_rollback(tmp_path: Path, bundles: list[Path]) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    a, b, c = versions(bundles)
    assert reg.add(bundles[0], line="line-1", status="promoted") == a
    assert reg.champion("line-1") == tmp_path / "reg" / "versions" / a
    assert load_bundle(reg.champion("line-1")).card.version == a  # a verified copy, independent of the source
    reg.add(bundles[1], line="line-1", status="rejected", reason="escape rate 3% > 0%")
    reg.add(bundles[2], line="line-1", note="with new chipped_edge samples")
    assert reg.champion_version("line-1") == a
    reg.promote(c, line="line-1", reason="golden recall 100%")
    assert reg.champion_version("line-1") == c
    infos = {i.version: i for i in reg.list()}
    assert infos[b].status == {"line-1": "rejected"} and infos[c].champion_of == ("line-1",)
    assert infos[c].parent_version == a and infos[c].dataset_fingerprint == "fp2"
    assert infos[c].note == "with new chipped_edge samples"
    assert reg.rollback("line-1") == a
    assert reg.champion_version("line-1") == a
    assert reg.list()[2].status == {"line-1": "rolled_back"}
    with pytest.raises(ModelRegistryError, match="no earlier champion"):
        reg.rollback("line-1")
    shown = reg.show(c)
    assert shown["card"]["version"] == c and [e["action"] for e in shown["events"]] == ["add", "promote", "rollback"]


def test_lines_are_independent_and_errors_are_clear(tmp_path: Path, bundles: list[Path]) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    a, b, _ = versions(bundles)
    reg.add(bundles[0], line="l1", status="promoted")
    reg.add(bundles[1], line="l2", status="promoted")
    assert (reg.champion_version("l1"), reg.champion_version("l2")) == (a, b)
    with pytest.raises(ModelRegistryError, match="no champion"):
        reg.champion("l3")
    with pytest.raises(ModelRegistryError, match="not in"):
        reg.promote("0123456789ab", line="l1")
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(ModelRegistryError, match="not allowed"):
            reg.champion_version(bad)
    with pytest.raises(ModelRegistryError, match="status"):
        reg.add(bundles[0], status="champion")


def test_corrupt_bundle_never_enters(tmp_path: Path, bundles: list[Path]) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(bundles[0], bad)
    (bad / "weights.safetensors").write_bytes((bad / "weights.safetensors").read_bytes()[:-10] + b"0" * 10)
    reg = ModelRegistry(tmp_path / "reg")
    with pytest.raises(BundleError, match="corrupt"):
        reg.add(bad, status="promoted")
    assert not reg.exists() and reg.list() == []


def test_promote_refuses_a_copy_damaged_on_disk(tmp_path: Path, bundles: list[Path]) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    reg.add(bundles[0], status="promoted")
    b = reg.add(bundles[1])
    (reg.path_of(b) / "card.json").write_text("{}")
    with pytest.raises(BundleError):
        reg.promote(b)
    assert reg.champion_version() == versions(bundles)[0]


def test_failed_write_leaves_registry_intact(tmp_path: Path, bundles: list[Path],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    a = reg.add(bundles[0], status="promoted")
    b = reg.add(bundles[1])
    before = (tmp_path / "reg" / REGISTRY_JSON).read_bytes()

    def crash(fd: int) -> None:  # the disk fails while the new registry.json is being written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_mod.os, "fsync", crash)
    with pytest.raises(OSError):
        reg.promote(b, reason="x")
    monkeypatch.undo()
    assert (tmp_path / "reg" / REGISTRY_JSON).read_bytes() == before
    assert reg.champion_version() == a
    assert not [p for p in (tmp_path / "reg").iterdir() if p.name.endswith(".tmp")]  # no temp file left behind
    json.loads(before)


def test_concurrent_writers_lose_no_update(tmp_path: Path, bundles: list[Path]) -> None:
    reg_root = tmp_path / "reg"
    ModelRegistry(reg_root).add(bundles[0], status="promoted")

    def writer(i: int) -> None:
        for j in range(5):
            ModelRegistry(reg_root).add(bundles[1 + (i + j) % 2], line=f"line-{i}", reason=f"{i}-{j}")

    assert not run_in_threads(writer, 4)
    lines = ModelRegistry(reg_root).lines()
    assert all(len(lines[f"line-{i}"]["events"]) == 5 for i in range(4))
    assert ModelRegistry(reg_root).revision() == 1 + 20


def test_models_cli(tmp_path: Path, bundles: list[Path]) -> None:
    from typer.testing import CliRunner

    from defectscope.cli import app

    reg = str(tmp_path / "reg")
    a, b, _ = versions(bundles)
    run = CliRunner().invoke
    assert run(app, ["models", "add", str(bundles[0]), "--registry", reg, "--promote"]).exit_code == 0
    r = run(app, ["models", "add", str(bundles[1]), "--registry", reg, "--note", "challenger"])
    assert r.exit_code == 0 and b in r.output
    assert run(app, ["models", "promote", b, "--registry", reg, "--reason", "better"]).exit_code == 0
    listing = run(app, ["models", "list", "--registry", reg, "--json"])
    assert listing.exit_code == 0 and '"champion_of"' in listing.output
    assert ModelRegistry(reg).champion_version() == b
    r = run(app, ["models", "rollback", "--registry", reg])
    assert r.exit_code == 0 and ModelRegistry(reg).champion_version() == a
    r = run(app, ["models", "rollback", "--registry", reg])
    assert r.exit_code == 2 and "no earlier champion" in r.output and "Traceback" not in r.output
    assert run(app, ["models", "show", "nope", "--registry", reg]).exit_code == 2
