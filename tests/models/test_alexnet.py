import pytest
import torch
from safetensors.torch import save_file

from privlab.errors import DataMissingError, FileFormatError
from privlab.models import build_model
from privlab.models.alexnet import FEATURE_NAMES, load_alexnet_features
from privlab.models.split import output_shape, split_model


def test_named_layout_and_cut_shape():
    m = build_model("alexnet", 7, (3, 224, 224))
    names = [n for n, _ in m.named_children()]
    assert names[:13] == list(FEATURE_NAMES) and names[-1] == "fc8"
    edge, _ = split_model(m, "pool5")
    assert output_shape(edge, (3, 224, 224)) == (256, 6, 6)  # Shredder v1's 9 216 values
    assert m(torch.rand(1, 3, 224, 224)).shape == (1, 7)
    small = build_model("alexnet", 2, (3, 32, 32))  # below min_hw 63: resized up first
    assert next(iter(dict(small.named_children()))) == "resize"


def test_same_function_as_torchvision_features(tmp_path):
    from torchvision.models import alexnet

    torch.manual_seed(0)
    tv = alexnet(weights=None).eval()
    save_file({k: v.contiguous() for k, v in tv.features.state_dict().items()}, str(tmp_path / "f.safetensors"))
    ours = load_alexnet_features(build_model("alexnet", 10, (3, 96, 96)), tmp_path / "f.safetensors").eval()
    edge, _ = split_model(ours, "pool5")
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(edge(x), tv.features(x), atol=1e-5)


def test_shared_imagenet_weights_load(shared_dir):
    path = shared_dir / "weights" / "alexnet-features-imagenet.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} absent (optional: shared weights)")
    m = load_alexnet_features(build_model("alexnet", 2, (3, 64, 64)), path)
    from safetensors.torch import load_file

    ref = load_file(str(path))
    assert torch.equal(m.conv1.weight, ref["0.weight"]) and torch.equal(m.conv5.bias, ref["10.bias"])


def test_missing_or_wrong_weights_are_clear_errors(tmp_path):
    m = build_model("alexnet", 2, (3, 64, 64))
    with pytest.raises(DataMissingError, match="never downloads"):
        load_alexnet_features(m, tmp_path / "nope.safetensors")
    save_file({"0.weight": torch.zeros(3, 3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(FileFormatError, match="shape"):
        load_alexnet_features(m, tmp_path / "bad.safetensors")
    save_file({"classifier.1.weight": torch.zeros(3)}, str(tmp_path / "keys.safetensors"))
    with pytest.raises(FileFormatError, match="unexpected key"):
        load_alexnet_features(m, tmp_path / "keys.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(FileFormatError):
        load_alexnet_features(m, tmp_path / "junk.safetensors")
