"""Fine-tuning starts from a bundle's weights; known classes keep their head rows, new ones are fresh."""

from __future__ import annotations

import torch

from training.model_init import from_bundle, head_name


def test_head_rows_follow_class_names(tiny_bundle) -> None:
    old = tiny_bundle.state_dict()
    model, parent = from_bundle(str(tiny_bundle.path), ("dent", "good", "crack"))
    assert parent.classes == ("good", "scratch", "dent")
    new = model.state_dict()
    head = head_name(model)
    w_old, w_new = old[f"{head}.weight"], new[f"{head}.weight"]
    assert torch.equal(w_new[0], w_old[2]) and torch.equal(w_new[1], w_old[0])  # dent, good copied
    assert not torch.equal(w_new[2], w_old[1])  # crack is new
    backbone = [k for k in old if not k.startswith(head)]
    assert all(torch.equal(new[k], old[k]) for k in backbone)
