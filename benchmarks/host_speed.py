"""How fast is this machine right now? One fixed piece of the course's own work, timed.

    python benchmarks/host_speed.py

The project's machines are shared, and their speed drifts by a third within a session: the
same unchanged lesson 04 ran 47.5 s in one hour and 66.7 s two hours later. Print this
figure next to every timing you report (recorded.md), so that a slow hour is told apart
from slow code. It times a 100-step VQGAN+CLIP generation with the course models on one
thread, three times, and prints the fastest: 2.50 s on the project's 2-core CPU at its
usual speed (session 12, 15:51), 3.2-3.4 s when it ran slow.
"""

import time

import torch

from mmlearn import vqgan_clip
from mmlearn.clip import load_clip
from mmlearn.vqgan import load_course_vqgan


def main() -> None:
    torch.set_num_threads(1)
    clip, vqgan = load_clip("course", "cpu"), load_course_vqgan("cpu")
    vqgan_clip.generate("a red star", clip, vqgan, steps=5)  # warm up
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        vqgan_clip.generate("a red star", clip, vqgan, steps=100)
        seconds.append(time.perf_counter() - start)
    print(f"host speed: 100 VQGAN+CLIP steps in {min(seconds):.2f} s on one thread "
          f"(fastest of 3; 2.50 s at the usual speed)")


if __name__ == "__main__":
    main()
