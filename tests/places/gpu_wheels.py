"""Wheels for running every lesson on a lent GPU machine (tests/places/cuda_run.sh).

That machine (Python 3.12, torch 2.11 with CUDA, NumPy, Pillow, matplotlib, pytest; no
network) lacks the course's few extra packages and the notebook-testing stack. This asks
pip which wheels the course, nbval and a kernel need on Python 3.12 (a dry run with a
report), drops the packages the machine already has (its list is below, as read on that
image), and downloads the rest, without their dependencies, into .whl/ (git-ignored).

    python tests/places/gpu_wheels.py        then, with the device tool:
    run(command="bash tests/places/cuda_run.sh", carry=[".whl"])
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".whl"
WANTED = ["open-clip-torch==3.3.0", "ftfy==6.3.1", "taming-transformers==0.0.1",
          "omegaconf", "ipywidgets", "nbval", "ipykernel", "jupyter-client", "nbformat"]
# What the GPU image already holds (read on it, 2026-11): never carried.
ON_THE_MACHINE = set("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub
humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-
cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-
utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-
extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas
nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx
onnx-ir onnxruntime onnxscript opencv-python-headless opt-einsum opt-einsum-fx optax
optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
portalocker prometheus-client propcache protobuf psutil py-cpuinfo pyarrow pybind11
pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov
pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex
requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy
seaborn sentence-transformers sentencepiece setuptools shellingham simplejson six
sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server
tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torch-geometric
torchaudio torchdiffeq torchmetrics torchvision tqdm transformers treescope triton typer
typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt
xarray xxhash yarl zipp
""".split())
PLATFORM = ["--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
            *[f"--platform=manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34, 35)],
            "--platform=manylinux2014_x86_64", "--platform=any"]


def needed() -> list[str]:
    """name==version of every wheel the wanted packages pull in, minus the machine's."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet",
                        "--ignore-installed", "--target", folder, *PLATFORM,
                        "--report", str(report), *WANTED], check=True)
        items = json.loads(report.read_text())["install"]
    pins = [f"{i['metadata']['name']}=={i['metadata']['version']}" for i in items]
    return [p for p in pins if not _on_the_machine(p.split("==")[0])]


def _on_the_machine(name: str) -> bool:
    name = name.lower().replace("_", "-")
    return name in ON_THE_MACHINE or name.startswith(("nvidia-", "cuda-"))


def main() -> int:
    pins = needed()
    WHEELS.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    *PLATFORM, "-d", str(WHEELS), *pins], check=True)
    size = sum(f.stat().st_size for f in WHEELS.glob("*.whl")) / 2**20
    print(f"{len(pins)} wheels in {WHEELS.relative_to(ROOT)} ({size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
