import pytest

from privlab.data import DATASETS
from privlab.errors import PrivlabError, UnknownNameError
from privlab.models import MODELS
from privlab.pipelines import PIPELINES
from privlab.registry import Registry


def test_duplicate_name_is_refused_unless_forced():
    reg: Registry[int] = Registry("thing")
    reg.add("a", 1, aliases=["alpha"])
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", 2)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("b", 2, aliases=["alpha"])
    reg.add("a", 3, force=True)
    assert reg.get("a") == 3


def test_unknown_name_suggests_the_closest_and_lists_all():
    reg: Registry[int] = Registry("widget")
    reg.add("lenet5", 1)
    reg.add("resnet18", 2)
    with pytest.raises(UnknownNameError, match=r"unknown widget 'lenet' ?\. Did you mean 'lenet5'\?") as e:
        reg.get("lenet")
    assert "Registered: lenet5, resnet18" in str(e.value)
    assert isinstance(e.value, PrivlabError)


def test_alias_resolves_to_entry():
    reg: Registry[str] = Registry("x")
    reg.add("inverting_gradients", "ig", aliases=("ig",), paper="Geiping 2020")
    assert reg.get("ig") == "ig"
    assert reg.entry("ig").meta["paper"] == "Geiping 2020"
    assert "ig" in reg and reg.names() == ["inverting_gradients"]


def test_every_stage_registered_its_files():
    assert {"digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn", "image_folder"} <= set(DATASETS)
    assert {"lenet5", "lenet_dlg", "convnet64", "resnet20_4", "resnet18", "mnist_cnn_shallow", "mnist_cnn_deep"} <= set(
        MODELS
    )
    assert "train" in PIPELINES
