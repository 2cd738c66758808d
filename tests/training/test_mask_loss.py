"""The training-only mask head: the right targets, unknown masks ignored, nothing left in the bundle."""

from __future__ import annotations

import pytest
import torch

from inspection.models import create_model, list_models
from training.mask_loss import NO_MASK, WithMaskHead, mask_loss

CLASSES = ("good", "scratch", "dent")


@pytest.mark.parametrize("arch", ["defectnet", "resnet18", "mobilenet_v3_small"])
def test_the_head_marks_cells_of_the_last_feature_map(arch):
    torch.manual_seed(0)
    net = WithMaskHead(create_model(arch, num_classes=3, in_channels=1), CLASSES, ("good",))
    logits, seg = net(torch.zeros(2, 1, 64, 96))
    assert logits.shape == (2, 3)
    assert seg.shape[:2] == (2, 2) and seg.shape[2] * 96 == seg.shape[3] * 64  # defect channels, spatial
    assert net.defect_index == [1, 2]


def test_every_registered_architecture_can_take_a_mask_head():
    """...every one without a map of its own: a map network is trained on its map (segdec_loss)."""
    from inspection.card import MAP_ARCHS
    from inspection.segdec import has_map

    for arch in list_models():
        model = create_model(arch, num_classes=3)
        if arch in MAP_ARCHS:
            assert has_map(model)
            continue
        WithMaskHead(model, CLASSES, ("good",))


def test_targets_follow_the_label_and_the_mask():
    seg = torch.zeros(3, 2, 2, 2, requires_grad=True)
    masks = torch.zeros(3, 1, 8, 8)
    masks[0, 0, 0, 0] = 1  # a scratch in the top-left cell
    masks[2] = NO_MASK  # a dent without a mask: left out
    labels = torch.tensor([1, 0, 2])
    loss = mask_loss(seg, labels, masks, [1, 2])
    loss.backward()
    g = seg.grad
    assert g[0, 0, 0, 0] < 0 and (g[0, 0].flatten()[1:] > 0).all()  # push up the marked cell only
    assert (g[0, 1] > 0).all() and (g[1] > 0).all()  # other channel and the good image: all clean
    assert (g[2] == 0).all()  # unknown mask: no gradient at all


def test_a_good_image_without_a_mask_counts_as_clean():
    seg = torch.zeros(2, 2, 2, 2, requires_grad=True)
    mask_loss(seg, torch.tensor([0, 1]), torch.full((2, 1, 4, 4), NO_MASK), [1, 2]).backward()
    assert (seg.grad[0] > 0).all() and (seg.grad[1] == 0).all()


def test_no_known_mask_gives_zero_loss_with_a_graph():
    seg = torch.randn(2, 2, 3, 3, requires_grad=True)
    loss = mask_loss(seg, torch.tensor([1, 2]), torch.full((2, 1, 6, 6), NO_MASK), [1, 2])
    assert float(loss.detach()) == 0.0 and loss.requires_grad


def test_the_weight_scales_the_loss():
    seg, labels, masks = torch.randn(2, 2, 3, 3), torch.tensor([1, 0]), torch.zeros(2, 1, 6, 6)
    assert float(mask_loss(seg, labels, masks, [1, 2], weight=0.5)) == pytest.approx(
        0.5 * float(mask_loss(seg, labels, masks, [1, 2])))
