"""How much `make lab` downloads on each platform a learner brings (the README quotes it).

For each platform of ``check_platforms.py``, take the lock's pins that apply there, pick
the wheel pip would pick (the most specific tag the platform supports) from the package
index's JSON listing, and add up the file sizes. Needs the package index.

    python scripts/download_sizes.py [requirements-lock.txt] [--out FILE.json]
"""

import argparse
import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.tags import compatible_tags, cpython_tags, mac_platforms
from packaging.utils import parse_wheel_filename

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_platforms import PLATFORMS, requirements_for  # noqa: E402

INDEX = "https://pypi.org/simple/{name}/"
JSON_LISTING = "application/vnd.pypi.simple.v1+json"


def platform_tags(platform: str) -> list:
    """The wheel tags a CPython 3.11 on ``platform`` accepts, most specific first."""
    if platform.startswith("macos"):
        platforms = list(mac_platforms((14, 0), "arm64"))
    elif platform.startswith("linux"):  # a glibc 2.39 Linux: every manylinux, newest first
        arch = platform.split("-")[1]
        platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(39, 4, -1)] + [
            f"{legacy}_{arch}" for legacy in ("manylinux2014", "manylinux2010", "manylinux1")]
    else:
        platforms = PLATFORMS[platform]["tags"]
    return [*cpython_tags((3, 11), platforms=platforms),
            *compatible_tags((3, 11), "cp311", platforms=platforms)]


def listing(name: str) -> list[dict]:
    """Every file the index holds for ``name``: filename and size."""
    request = urllib.request.Request(INDEX.format(name=name), headers={"Accept": JSON_LISTING})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["files"]


def chosen_file(files: list[dict], name: str, version: str, tags: list) -> dict:
    """The wheel of ``name==version`` pip would take with these tags (best tag wins)."""
    rank = {tag: i for i, tag in enumerate(tags)}
    best, best_rank = None, len(rank)
    for file in files:
        if not file["filename"].endswith(".whl"):
            continue
        wheel_name, wheel_version, _, wheel_tags = parse_wheel_filename(file["filename"])
        if str(wheel_version) != version:
            continue
        file_rank = min((rank[t] for t in wheel_tags if t in rank), default=len(rank))
        if file_rank < best_rank:
            best, best_rank = file, file_rank
    if best is None:
        raise ValueError(f"no wheel of {name}=={version} fits these tags")
    return best


def is_torch_or_cuda(name: str) -> bool:
    return name in {"torch", "torchvision", "triton"} or name.startswith(("nvidia-", "cuda-"))


def download_sizes(lock: Path) -> dict[str, dict]:
    """For each platform: how many wheels, their total size in MB, the five largest."""
    lines = lock.read_text().splitlines()
    pins = {p: [pin.split("==") for pin in requirements_for(lines, p)] for p in PLATFORMS}
    names = sorted({name for pinned in pins.values() for name, _ in pinned})
    with ThreadPoolExecutor(8) as pool:
        files = dict(zip(names, pool.map(listing, names)))
    sizes = {}
    for platform, pinned in pins.items():
        tags = platform_tags(platform)
        chosen = {name: chosen_file(files[name], name, version, tags)["size"]
                  for name, version in pinned}
        largest = sorted(chosen.items(), key=lambda item: -item[1])[:5]
        # What a CPU-only install (binder/requirements.txt) shares with this one: all but
        # torch, torchvision and the CUDA stack (whose CPU builds live on PyTorch's index).
        rest = sum(size for name, size in chosen.items() if not is_torch_or_cuda(name))
        sizes[platform] = {"wheels": len(chosen), "total_mb": round(sum(chosen.values()) / 1e6),
                           "without_torch_and_cuda_mb": round(rest / 1e6),
                           "largest_mb": {n: round(s / 1e6) for n, s in largest}}
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", nargs="?", default="requirements-lock.txt", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sizes = download_sizes(args.lock)
    for platform, size in sizes.items():
        print(f"{platform:14} {size['total_mb']:>6,} MB in {size['wheels']} wheels "
              f"({size['without_torch_and_cuda_mb']} MB without torch and CUDA); largest: "
              + ", ".join(f"{n} {mb:,}" for n, mb in size["largest_mb"].items()))
    if args.out:
        args.out.write_text(json.dumps({"lock": args.lock.name, "platforms": sizes}, indent=1)
                            + "\n")


if __name__ == "__main__":
    main()
