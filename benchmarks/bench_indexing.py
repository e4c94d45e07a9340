"""Indexing with the course CLIP: images per second, and memory for 2,000 vs 20,000 images.

An index should embed a collection in batches, so that its memory is one batch of
images plus the stored vectors (N x D float16), whatever N is. This script checks
that: each size is indexed in a fresh process, which samples its resident memory
(RSS) every few milliseconds and reports the peak above the level just before
indexing started (model loaded, warmed up). Images are drawn on demand from
ShapeWorld's generator, so the dataset itself takes no memory either.

Throughput is reported two ways: end to end (draw + preprocess + encode + store)
and the encoder alone (time spent inside ``encode_images``).

Needs mmlearn/shapes.py, mmlearn/clip.py and the shipped course weights
mmlearn/weights/clip_shapeworld.safetensors (made by scripts/train_clip.py); until they
exist, ``--weights FILE`` takes any checkpoint of the same architecture, e.g. one
with random weights (speed and memory do not depend on the values).

Run from the repository root, on an otherwise idle machine:
    python benchmarks/bench_indexing.py                 # 2,000 and 20,000 images, 1 thread
    python benchmarks/bench_indexing.py --threads 2
Results go to benchmarks/results/indexing.json.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).parent / "results"
WEIGHTS = ROOT / "mmlearn" / "weights" / "clip_shapeworld.safetensors"


def missing_prerequisites() -> str | None:
    """Why this benchmark cannot run yet, or None when it can."""
    for module in ("shapes", "clip"):
        if not (ROOT / "mmlearn" / f"{module}.py").is_file():
            return f"mmlearn/{module}.py does not exist yet"
    if not WEIGHTS.is_file():
        return f"the course CLIP weights {WEIGHTS.relative_to(ROOT)} do not exist yet"
    return None


def resident_mb() -> float:
    """This process's resident memory in MB (Linux /proc; psutil elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import psutil
        return psutil.Process().memory_info().rss / 2**20


class PeakMemory:
    """``with PeakMemory() as peak:`` samples RSS in a thread; ``peak.mb`` is the maximum."""

    def __init__(self, every_s: float = 0.005):
        self.every_s, self.mb, self._stop = every_s, 0.0, threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            self.mb = max(self.mb, resident_mb())
            time.sleep(self.every_s)

    def __enter__(self):
        self.mb = resident_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.mb = max(self.mb, resident_mb())


class DrawnOnDemand:
    """ShapeWorld items made when asked for: ``[i]`` -> (PIL image, caption)."""

    def __init__(self, n: int, split: str = "test_seen", seed: int = 0, resolution: int = 32):
        self.n, self.split, self.seed, self.resolution = n, split, seed, resolution

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        from PIL import Image

        from mmlearn.shapes import make_item
        pixels, caption, _ = make_item(i, self.split, self.seed, self.resolution)
        return Image.fromarray(pixels), caption


class TimedEncoder:
    """Wraps an encoder and adds up the seconds spent in ``encode_images``."""

    def __init__(self, encoder):
        self.encoder, self.name, self.seconds = encoder, encoder.name, 0.0

    def encode_images(self, images):
        begin = time.perf_counter()
        vectors = self.encoder.encode_images(images)
        self.seconds += time.perf_counter() - begin
        return vectors

    def encode_texts(self, texts):
        return self.encoder.encode_texts(texts)


def measure(n: int, threads: int, batch_size: int, weights: str | None) -> dict:
    """Index n images in this process; return throughput and memory figures."""
    import gc

    import torch

    from mmlearn.clip import COURSE_MODEL, load_clip
    from mmlearn.search import ImageIndex

    torch.set_num_threads(threads)
    clip = (load_clip(weights, model=COURSE_MODEL, device="cpu", verbose=False) if weights
            else load_clip("course", device="cpu", verbose=False))
    encoder = TimedEncoder(clip)
    data = DrawnOnDemand(n)
    ImageIndex.build(encoder, DrawnOnDemand(batch_size), batch_size, progress=False)  # warm-up
    encoder.seconds = 0.0
    gc.collect()
    begin = time.perf_counter()
    with PeakMemory() as peak:
        baseline_mb = peak.mb
        index = ImageIndex.build(encoder, data, batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - begin
    return {"images": n, "threads": threads, "batch_size": batch_size, "encoder": clip.name,
            "dim": index.dim, "seconds": round(seconds, 2),
            "images_per_second_end_to_end": round(n / seconds, 1),
            "images_per_second_encoder_only": round(n / encoder.seconds, 1),
            "rss_before_mb": round(baseline_mb, 1), "rss_peak_mb": round(peak.mb, 1),
            "growth_mb": round(peak.mb - baseline_mb, 1),
            "stored_vectors_mb": round(index.vectors.numel() * 2 / 2**20, 2),
            "metadata_mb_approx": round(python_size(index.items) / 2**20, 2)}


def python_size(items: list[dict]) -> int:
    """Approximate bytes held by the metadata: the dicts and the values they hold."""
    return sum(sys.getsizeof(item) + sum(sys.getsizeof(value) for value in item.values())
               for item in items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2000,20000")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--weights", help="a checkpoint of the course architecture instead of the "
                        "shipped weights (speed and memory do not depend on the weights' values)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one size, in a subprocess
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.threads, args.batch_size, args.weights)))
        return
    reason = None if args.weights else missing_prerequisites()
    if reason:
        sys.exit(f"PENDING: cannot measure indexing yet: {reason}. Run this script again once "
                 f"ShapeWorld and the course CLIP are in the repository.")
    runs = []
    for n in [int(s) for s in args.sizes.split(",")]:
        command = [sys.executable, __file__, "--child", str(n), "--threads", str(args.threads),
                   "--batch-size", str(args.batch_size)] + (
                       ["--weights", args.weights] if args.weights else [])
        output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        runs.append(json.loads(output.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]))
    report = {"command": " ".join(["python"] + sys.argv), "load_average": os.getloadavg(),
              "weights": args.weights or str(WEIGHTS.relative_to(ROOT)), "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    tmp = RESULTS / ".indexing.json.tmp"
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, RESULTS / "indexing.json")
    print(f"Wrote {RESULTS / 'indexing.json'}")


if __name__ == "__main__":
    main()
