"""How fast is the Histograms page's core? summary() + emd_plan() on 2 x 200 bins, against POT's
ot.emd2 (network simplex, cost matrix built beforehand) and scipy.stats.wasserstein_distance called
directly on the same histograms, in the same run. Prints milliseconds (median of repeats) and ratios.

    python bench/distances_speed.py [--bins 200] [--repeats 200]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import ot
from scipy.stats import wasserstein_distance

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from explorer.distances import emd_plan, ground_matrix, summary  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    fn()   # warm up (imports, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bins", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    p, q = rng.random(args.bins), rng.random(args.bins)
    p[rng.random(args.bins) < 0.2] = 0.0   # some empty bins, as in real histograms
    p, q = p / p.sum(), q / q.sum()
    x = np.arange(args.bins, dtype=float)

    print(f"{args.bins} bins, median of {args.repeats} runs (ms)")
    for ground, alpha in (("abs", 1.0), ("saturated", 0.1)):
        cost = ground_matrix(x, x, ground, alpha)
        ours = median_ms(lambda: (summary(p, q, ground=ground, alpha=alpha),
                                  emd_plan(p, q, ground=ground, alpha=alpha)), args.repeats)
        pot = median_ms(lambda: ot.emd2(p, q, cost, numItermax=10 ** 7), args.repeats)
        assert abs(summary(p, q, ground=ground, alpha=alpha)["emd"] - ot.emd2(p, q, cost, numItermax=10 ** 7)) < 1e-9
        line = (f"ground={ground:<9} ours summary()+emd_plan(): {ours:8.3f} ms | POT ot.emd2 (EMD only, "
                f"cost matrix prebuilt): {pot:8.3f} ms | ratio ours/POT {ours / pot:.3g}")
        if ground == "abs":
            sp = median_ms(lambda: wasserstein_distance(x, x, p, q), args.repeats)
            line += f" | scipy wasserstein_distance: {sp:7.3f} ms | ratio ours/scipy {ours / sp:.3g}"
        print(line)


if __name__ == "__main__":
    main()
