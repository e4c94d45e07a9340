"""Speeds the lessons rely on, measured here rather than asserted in unit tests.

A unit test with a time limit fails on a busy machine although nothing is wrong, so
the figures live here: run it on a quiet machine (it prints the load average) and
compare with benchmarks/README.md.

    python benchmarks/bench_timings.py
"""

import time

import torch

from mmlearn import dalle, shapes
from mmlearn.clip import load_clip
from mmlearn.vqgan import load_course_vqgan


def images_per_second(n: int = 2000, resolution: int = 32, max_objects: int = 1) -> float:
    """How many ShapeWorld images this machine draws per second (one core, no batching)."""
    start = time.perf_counter()
    for i in range(n):
        shapes.make_item(i, "train", 0, resolution, max_objects)
    return n / (time.perf_counter() - start)


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def seconds_of(work, repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    print(f"load average before: {load_average()}")
    print(f"ShapeWorld pictures per second (32 px, one object): "
          f"{images_per_second(2000):8.0f}   (lesson bar: >= 300)")
    print(f"load_clip('course'), offline:                      "
          f"{seconds_of(lambda: load_clip('course', device='cpu', verbose=False)):8.2f} s")
    model, vqgan = dalle.load_course_dalle("cpu"), load_course_vqgan("cpu")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        dalle.sample(model, vqgan, "a red circle", n=8)  # warm-up
        seconds = seconds_of(lambda: dalle.sample(model, vqgan, "a big blue triangle", n=8,
                                                    seed=1))
        print(f"8 tiny-DALL-E samples, {threads} thread(s):                  "
              f"{seconds:8.2f} s   (lesson bar: <= 5 s)")
    print(f"load average after:  {load_average()}")


if __name__ == "__main__":
    main()
