import pickle

import numpy as np
import pytest
import torch

from privlab.errors import DataMissingError, FileFormatError
from privlab.store import load_array, save_tensors


def test_npy_npz_safetensors(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    np.savez(tmp_path / "one.npz", x=a)
    np.savez(tmp_path / "two.npz", x=a, z=a * 2)
    save_tensors(tmp_path / "t.safetensors", {"x": torch.from_numpy(a)})
    assert np.array_equal(load_array(tmp_path / "a.npy"), a)
    assert np.array_equal(load_array(tmp_path / "one.npz"), a)
    assert np.array_equal(load_array(f"{tmp_path}/two.npz:z"), a * 2)
    assert np.array_equal(load_array(tmp_path / "t.safetensors"), a)
    with pytest.raises(FileFormatError, match=r"holds 2 arrays \(x, z\); pick one as .*two.npz:NAME"):
        load_array(tmp_path / "two.npz")
    with pytest.raises(FileFormatError, match="no array 'q'; it holds: x, z"):
        load_array(f"{tmp_path}/two.npz:q")


def test_pickles_are_refused_without_running(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.save(tmp_path / "obj.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match="pickled Python objects"):
        load_array(tmp_path / "obj.npy")
    (tmp_path / "raw.npy").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(FileFormatError):
        load_array(tmp_path / "raw.npy")
    assert not marker.exists()


def test_bad_files(tmp_path):
    with pytest.raises(DataMissingError, match="file not found"):
        load_array(tmp_path / "none.npy")
    np.save(tmp_path / "a.npy", np.zeros((100, 10)))
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "trunc.npy").write_bytes(data[:300])
    with pytest.raises(FileFormatError, match="not a valid .npy"):
        load_array(tmp_path / "trunc.npy")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(FileFormatError, match="not a valid .npz"):
        load_array(tmp_path / "bad.npz")
    (tmp_path / "a.csv").write_text("1,2\n")
    with pytest.raises(FileFormatError, match="unsupported file type .csv"):
        load_array(tmp_path / "a.csv")
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(FileFormatError, match="expected a numeric array"):
        load_array(tmp_path / "s.npy")
