"""How fast is brute-force search? mmlearn's ImageIndex against faiss, in the same run.

Two measurements:

1. speed: top-10 over 100,000 x 512 random unit vectors, stored in float16 as the
   index stores them. mmlearn's ``ImageIndex.topk`` (see mmlearn/brute_force.py: one
   query reads the float16 vectors and rescores a short list in float32; a batch
   multiplies a float32 copy) against faiss-cpu's exact ``IndexFlatIP`` (float32), with
   the same data, queries and thread count. Single-query latency (one query at a time,
   as a search box sends them) and batched throughput (many queries in one call) are
   reported separately, because batching changes the cost per query several-fold.
   Also timed: ranking by float16 scores alone ("plain_float16", fast but not exact) and
   torch's float32 multiply + ``torch.topk`` on the float32 copy (the index's old design).
2. scaling: cost of one query and of a batch vs collection size, 1k .. 1M vectors,
   for the lesson's plot.

faiss and threadpoolctl are only for this comparison, not course dependencies:
    pip install faiss-cpu threadpoolctl
Without faiss, the mmlearn figures are still measured and faiss is reported as missing.
threadpoolctl holds numpy's BLAS (which multiplies mmlearn's batches) to the same
thread count as torch and faiss; without it the thread counts are not comparable.

Run from the repository root (the machine should be otherwise idle):
    python benchmarks/bench_search.py                # speed, 1 and 2 threads
    python benchmarks/bench_search.py --scaling      # plus the size table (up to 1M, ~3 GB)
Results go to benchmarks/results/search_speed.json and benchmarks/results/scaling.csv.
"""

import argparse
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmlearn.search import ImageIndex  # noqa: E402

try:
    import faiss
except ImportError:
    faiss = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

RESULTS = Path(__file__).parent / "results"


def random_unit_vectors(n: int, dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=generator), dim=1)


def random_index(n: int, dim: int, seed: int, chunk: int = 100_000) -> ImageIndex:
    """An ImageIndex of n random unit vectors (stored float16, as when built from images),
    made in chunks so that 1M x 512 never needs a full float32 copy."""
    index = ImageIndex(encoder_name="random-vectors")
    for start in range(0, n, chunk):
        index.add_vectors(random_unit_vectors(min(chunk, n - start), dim, seed + start))
    return index


def interleaved_ms(engines: dict, queries: torch.Tensor, per_call: int,
                   rounds: int = 5) -> dict[str, list[float]]:
    """Milliseconds per call of each engine, one call per block of ``per_call`` queries.

    The engines take turns, round after round (in alternating order), so that load
    from other programs on the machine, and what sits in the CPU cache, fall on all
    of them alike: the ratio between them is then fairer than the absolute times.
    """
    blocks = [queries[i:i + per_call] for i in range(0, len(queries) - per_call + 1, per_call)]
    times = {name: [] for name in engines}
    for engine in engines.values():
        engine(blocks[0])  # warm-up
    for round_ in range(rounds):
        order = list(engines) if round_ % 2 == 0 else list(engines)[::-1]
        for name in order:
            for block in blocks:
                begin = time.perf_counter()
                engines[name](block)
                times[name].append((time.perf_counter() - begin) * 1e3)
    return times


def summary(times_ms: list[float], queries_per_call: int) -> dict:
    median = statistics.median(times_ms)
    return {"median_ms_per_call": round(median, 3),
            "p90_ms_per_call": round(float(np.percentile(times_ms, 90)), 3),
            "ms_per_query": round(median / queries_per_call, 4),
            "queries_per_second": round(1e3 * queries_per_call / median, 1),
            "calls": len(times_ms)}


def engines_for(index: ImageIndex, k: int, with_fp16: bool) -> dict:
    """Functions ``f(query_block)`` returning top-k: mmlearn, plain float16, faiss."""
    engines = {"mmlearn": lambda q: index.topk(q, k)}
    if with_fp16:  # float16 scores alone (fast, not exact); torch's own float32 multiply
        engines["plain_float16"] = lambda q: torch.topk(q.half() @ index.vectors.T, k, dim=1)
        engines["torch_float32_topk"] = lambda q: torch.topk(q @ index.search_matrix().T, k, dim=1)
    if faiss is not None:
        flat = faiss.IndexFlatIP(index.dim)
        for start in range(0, len(index), 100_000):  # the same (float16-rounded) vectors
            flat.add(index.vectors[start:start + 100_000].float().numpy())
        engines["faiss_IndexFlatIP"] = lambda q: flat.search(q.numpy(), k)
    return engines


def time_engines(index: ImageIndex, queries: torch.Tensor, k: int, batch: int,
                 with_fp16: bool, rounds: int = 5) -> dict:
    """Single-query and batched timings of mmlearn (and faiss, and plain fp16) on ``index``."""
    begin = time.perf_counter()
    index.search_matrix()  # the one-off float32 copy, made at the first search
    results = {"float32_copy_ms": round((time.perf_counter() - begin) * 1e3, 1)}
    engines = engines_for(index, k, with_fp16)
    single = interleaved_ms(engines, queries[:40], 1, rounds)
    batched = interleaved_ms(engines, queries[:batch], batch, rounds)
    for name in engines:
        results[name] = {"single": summary(single[name], 1),
                         "batched": summary(batched[name], batch)}
    if "faiss_IndexFlatIP" in engines:
        _, faiss_ids = engines["faiss_IndexFlatIP"](queries[:100])
        _, our_ids = index.topk(queries[:100], k)
        overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(faiss_ids, our_ids.numpy(),
                                                                     strict=True)])
        results["same_results_as_faiss"] = round(float(overlap), 4)
        for mode in ("single", "batched"):
            results[f"ratio_to_faiss_{mode}"] = round(
                results["mmlearn"][mode]["median_ms_per_call"]
                / results["faiss_IndexFlatIP"][mode]["median_ms_per_call"], 3)
    return results


def float16_without_avx512_fp16(n: int, dim: int, k: int, batch: int, threads: int) -> dict:
    """Time the plain float16 path as on a CPU without AVX512-FP16 instructions.

    This machine may have them (recent Intel Xeons do; most laptops, AMD CPUs and
    cloud notebooks do not), and then float16 looks as fast as float32. oneDNN, which
    PyTorch uses for float16 matrix multiplies on the CPU, can be told to pretend the
    CPU has only AVX2 (and ATen, its own kernels, likewise); that must be set before
    torch starts, so it runs in a subprocess.
    """
    command = [sys.executable, __file__, "--fp16-child", "--n", str(n), "--dim", str(dim),
               "--k", str(k), "--batch", str(batch), "--threads", str(threads)]
    output = subprocess.run(command, check=True, capture_output=True, text=True,
                            env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2",
                                 "ATEN_CPU_CAPABILITY": "avx2"})
    return json.loads(output.stdout.strip().splitlines()[-1])


def float16_child(n: int, dim: int, k: int, batch: int, threads: int) -> dict:
    set_threads(threads)
    index = random_index(n, dim, seed=0)
    queries = random_unit_vectors(batch, dim, seed=10**9)
    engines = {"mmlearn": lambda q: index.topk(q, k),
               "plain_float16": lambda q: torch.topk(q.half() @ index.vectors.T, k, dim=1)}
    single = interleaved_ms(engines, queries[:20], 1, rounds=3)
    batched = interleaved_ms(engines, queries[:batch], batch, rounds=3)
    return {"setting": "ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2", "threads": threads,
            **{name: {"single": summary(single[name], 1),
                      "batched": summary(batched[name], batch)} for name in engines}}


def set_threads(threads: int) -> None:
    """The same thread count for torch, faiss (OpenMP) and numpy's BLAS."""
    torch.set_num_threads(threads)
    if faiss is not None:
        faiss.omp_set_num_threads(threads)
    if threadpool_limits is not None:
        threadpool_limits(threads, user_api="blas")


def speed(n: int, dim: int, k: int, batch: int, thread_counts: list[int]) -> dict:
    index = random_index(n, dim, seed=0)
    queries = random_unit_vectors(max(batch, 100), dim, seed=10**9)
    report = {"n": n, "dim": dim, "k": k, "storage_dtype": str(index.vectors.dtype),
              "search_dtype": str(index.search_matrix().dtype), "batch_queries": batch,
              "runs": {}}
    for threads in thread_counts:
        set_threads(threads)
        index._search_matrix = None  # time the float32 copy afresh for this thread count
        report["runs"][str(threads)] = run = time_engines(index, queries, k, batch, True, rounds=10)
        mm, fx = run["mmlearn"], run.get("faiss_IndexFlatIP")
        print(f"\n{threads} thread(s): top-{k} over {n:,} x {dim} (float16 stored, float32 "
              f"search copy made in {run['float32_copy_ms']} ms)")
        for name, result in run.items():
            if isinstance(result, dict):
                print(f"  {name:25s} single {result['single']['median_ms_per_call']:8.2f} ms/query"
                      f" (p90 {result['single']['p90_ms_per_call']:.2f})   batched x{batch}: "
                      f"{result['batched']['ms_per_query']:7.3f} ms/query "
                      f"({result['batched']['queries_per_second']:,.0f} q/s)")
        if fx:
            print(f"  ratio mmlearn/faiss: single {run['ratio_to_faiss_single']}, batched "
                  f"{run['ratio_to_faiss_batched']}; same top-{k}: {run['same_results_as_faiss']}")
        single = mm["single"]["median_ms_per_call"]
        print(f"  bar <= 30 ms per single query: {'PASS' if single <= 30 else 'FAIL'} "
              f"({single:.2f} ms)")
        if fx:
            for mode, bar in (("single", 1.0), ("batched", 1.2)):
                ratio = run[f"ratio_to_faiss_{mode}"]
                print(f"  bar {mode} <= {bar}x faiss: {'PASS' if ratio <= bar else 'FAIL'} "
                      f"({ratio}x)")
    return report


def scaling(sizes: list[int], dim: int, k: int, batch: int, threads: int) -> list[dict]:
    """Brute-force cost against collection size (one thread count), for the lesson's plot."""
    set_threads(threads)
    queries = random_unit_vectors(max(batch, 100), dim, seed=10**9)
    rows = []
    for n in sizes:
        index = random_index(n, dim, seed=0)
        run = time_engines(index, queries, k, batch, with_fp16=False, rounds=3)
        row = {"n": n, "threads": threads,
               "float16_storage_mb": round(index.vectors.numel() * 2 / 1e6, 1),   # MB: 10^6 bytes
               "float32_search_copy_mb": round(index.vectors.numel() * 4 / 1e6, 1),
               "mmlearn_single_ms": run["mmlearn"]["single"]["median_ms_per_call"],
               f"mmlearn_batched{batch}_ms_per_query": run["mmlearn"]["batched"]["ms_per_query"]}
        if "faiss_IndexFlatIP" in run:
            row["faiss_single_ms"] = run["faiss_IndexFlatIP"]["single"]["median_ms_per_call"]
            row[f"faiss_batched{batch}_ms_per_query"] = (
                run["faiss_IndexFlatIP"]["batched"]["ms_per_query"])
        rows.append(row)
        print("  " + "  ".join(f"{key}={value}" for key, value in row.items()))
        del index
    return rows


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "faiss": getattr(faiss, "__version__", None), "cpu": platform.processor() or
            platform.machine(), "cpu_count": os.cpu_count(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "blas_threads_limited": threadpool_limits is not None,
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256, help="queries per batched call")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--scaling", action="store_true", help="also time 1k..1M vectors")
    parser.add_argument("--sizes", default="1000,3000,10000,30000,100000,300000,1000000")
    parser.add_argument("--fp16-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fp16_child:
        print(json.dumps(float16_child(args.n, args.dim, args.k, args.batch, int(args.threads))))
        return
    if faiss is None:
        print("faiss not installed: timing mmlearn only. For the comparison: pip install faiss-cpu")
    if threadpool_limits is None:
        print("threadpoolctl not installed: numpy's BLAS uses all cores whatever --threads "
              "says (pip install threadpoolctl)")
    info = machine()
    print(json.dumps(info))
    threads = [int(t) for t in args.threads.split(",")]
    report = {"machine": info, "command": " ".join(["python"] + sys.argv),
              "speed": speed(args.n, args.dim, args.k, args.batch, threads)}
    report["float16_without_avx512_fp16"] = slow = float16_without_avx512_fp16(
        args.n, args.dim, args.k, args.batch, threads[0])
    print(f"\nAs on a CPU without AVX512-FP16 (oneDNN, ATen limited to AVX2), {threads[0]} "
          f"thread(s):")
    for name in ("mmlearn", "plain_float16"):
        print(f"  {name:25s} single {slow[name]['single']['median_ms_per_call']:8.2f} ms/query   "
              f"batched x{args.batch}: {slow[name]['batched']['ms_per_query']:7.3f} ms/query")
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_atomically(RESULTS / "search_speed.json", json.dumps(report, indent=1) + "\n")
    if args.scaling:
        print(f"\nScaling, {threads[0]} thread(s):")
        rows = scaling([int(s) for s in args.sizes.split(",")], args.dim, args.k, args.batch,
                       threads[0])
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_atomically(RESULTS / "scaling.csv", table.getvalue())
    print(f"\nWrote results to {RESULTS}/")


if __name__ == "__main__":
    main()
