import os
from pathlib import Path

import pytest
import torch

from inspection.errors import ModelRegistryError
from inspection.models import create_model, list_models

REQUIRED = ["mobilenet_v3_small", "mobilenet_v3_large", "resnet18", "resnet50", "efficientnet_b0"]


@pytest.mark.parametrize("name", REQUIRED)
def test_every_required_architecture_builds_with_our_head(name):
    assert name in list_models()
    model = create_model(name, num_classes=3).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 45, 37)).shape == (1, 3)


def test_gray_input_adapts_the_stem_by_summing_rgb_filters():
    torch.manual_seed(0)
    rgb = create_model("resnet18", num_classes=2)
    gray = create_model("resnet18", num_classes=2, in_channels=1)
    assert gray.conv1.in_channels == 1 and rgb.conv1.in_channels == 3


def test_local_pth_weights_are_loaded_then_the_head_replaced(tmp_path):
    torch.manual_seed(1)
    imagenet_like = create_model("mobilenet_v3_small", num_classes=1000)
    file = tmp_path / "mnv3s_imagenet.pth"
    torch.save(imagenet_like.state_dict(), file)
    model = create_model("mobilenet_v3_small", num_classes=4, weights=file)
    stem = "features.0.0.weight"
    assert torch.equal(model.state_dict()[stem], imagenet_like.state_dict()[stem])
    assert model.classifier[-1].out_features == 4
    gray = create_model("mobilenet_v3_small", num_classes=4, weights=file, in_channels=1)
    assert torch.allclose(gray.state_dict()[stem], imagenet_like.state_dict()[stem].sum(1, keepdim=True))


def test_torchvision_weights_name_is_read_from_the_local_cache(tmp_path, monkeypatch):
    from torchvision.models import MobileNet_V3_Small_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    reference = create_model("mobilenet_v3_small", num_classes=1000)
    torch.save(reference.state_dict(), cache / Path(MobileNet_V3_Small_Weights.IMAGENET1K_V1.url).name)
    model = create_model("mobilenet_v3_small", num_classes=2, weights="MobileNet_V3_Small_Weights.IMAGENET1K_V1")
    assert torch.equal(model.features[0][0].weight, reference.features[0][0].weight)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/defectscope-pwned",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    file = tmp_path / "evil.pth"
    torch.save({"state_dict": _Exploit()}, file)
    with pytest.raises(ModelRegistryError, match="safely"):
        create_model("resnet18", num_classes=2, weights=file)
    assert not Path("/tmp/defectscope-pwned").exists()


def test_clear_errors_for_unknown_names(tmp_path):
    with pytest.raises(ModelRegistryError, match="choose one of"):
        create_model("vgg_tiny", num_classes=2)
    with pytest.raises(ModelRegistryError, match="IMAGENET1K_V1"):
        create_model("resnet18", num_classes=2, weights="IMAGENET9K")
    with pytest.raises(ModelRegistryError, match="does not exist"):
        create_model("resnet18", num_classes=2, weights=tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save(create_model("mobilenet_v3_small", num_classes=3).state_dict(), wrong)
    with pytest.raises(ModelRegistryError, match="does not fit"):
        create_model("resnet18", num_classes=2, weights=wrong)
