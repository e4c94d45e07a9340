"""scripts/download_sizes.py picks, for each platform, the wheel pip would (offline check)."""

import importlib.util
import sys

import pytest
from notebook_skeleton import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
spec = importlib.util.spec_from_file_location("download_sizes",
                                              ROOT / "scripts" / "download_sizes.py")
sizes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sizes)

FILES = [{"filename": name, "size": size} for name, size in [
    ("torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl", 555),
    ("torch-2.14.1-cp311-cp311-manylinux_2_28_aarch64.whl", 454),
    ("torch-2.14.1-cp311-cp311-macosx_14_0_arm64.whl", 127),
    ("torch-2.14.1-cp311-cp311-win_amd64.whl", 124),
    ("torch-2.14.1-cp312-cp312-win_amd64.whl", 1),          # another Python
    ("torch-2.13.0-cp311-cp311-win_amd64.whl", 2),          # another version
    ("torch-2.14.1.tar.gz", 3),                             # not a wheel
]]
NVRTC = [{"filename": "nvidia_cuda_nvrtc-13.0.88-py3-none-manylinux2010_x86_64."
                      "manylinux_2_12_x86_64.whl", "size": 90},
         {"filename": "nvidia_cuda_nvrtc-13.0.88-py3-none-win_amd64.whl", "size": 77}]


@pytest.mark.parametrize("platform, size", [("linux-x86_64", 555), ("linux-aarch64", 454),
                                            ("macos-arm64", 127), ("windows-amd64", 124)])
def test_each_platform_gets_its_own_wheel(platform, size):
    chosen = sizes.chosen_file(FILES, "torch", "2.14.1", sizes.platform_tags(platform))
    assert chosen["size"] == size


def test_an_old_manylinux_wheel_counts_and_a_missing_one_is_an_error():
    assert sizes.chosen_file(NVRTC, "nvidia-cuda-nvrtc", "13.0.88",
                             sizes.platform_tags("linux-x86_64"))["size"] == 90
    with pytest.raises(ValueError, match="no wheel"):
        sizes.chosen_file(NVRTC, "nvidia-cuda-nvrtc", "13.0.88", sizes.platform_tags("macos-arm64"))
