"""Benchmark: FISTA's certificate interval (``FISTA.check_every``) on gated ReLU.

    python benchmarks/fista_check_every.py                       # 10 against 20
    python benchmarks/fista_check_every.py --values 10,20,30,50 --tag sweep

A certificate check costs about five products (the accurate ``A x``, ``A^T rho``, the
dual extrapolation's objective), so checking less often makes a step cheaper, while the
solve can only stop at a check and the dual extrapolation uses the directions of the
last checks. For each problem of ``benchmarks/gated_vs_cvxpy.py`` (planted teacher,
squared loss, lam = 1e-3; the same data and gates) and each interval, ``fit`` is timed
``--runs`` times after a compile run, the intervals interleaved in one process. It
prints the median wall time, the steps and whether the solve converged, and writes
``benchmarks/results/fista_check_every[_<tag>].json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import cvxnn_jax as cn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from _environment import environment  # noqa: E402
from gated_vs_cvxpy import LAM, problem  # noqa: E402

# (n, d, gates drawn, dtype, tol): the comparison sizes and the precision problem of
# gated_vs_cvxpy.py.
PROBLEMS = [
    (2000, 20, 200, "float64", 1e-6),
    (3000, 25, 250, "float64", 1e-6),
    (1000, 50, 1000, "float32", 1e-4),
    (1000, 50, 1000, "float64", 1e-4),
]
QUICK = [(200, 5, 20, "float64", 1e-6), (200, 5, 20, "float32", 1e-4)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", default="10,20", help="check_every values, comma-separated")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=30_000)
    parser.add_argument("--quick", action="store_true", help="tiny problems, a smoke check")
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    values = [int(v) for v in args.values.split(",")]

    records = []
    for n, d, num_gates, dtype_name, tol in QUICK if args.quick else PROBLEMS:
        X, y, gates = problem(n, d, num_gates, jnp.dtype(dtype_name))
        solvers = {every: cn.FISTA(check_every=every) for every in values}

        def solve(every):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", cn.ConvergenceWarning)
                sol = cn.fit(X, y, LAM, gates=gates, solver=solvers[every], tol=tol,
                             max_steps=args.max_steps)
                return jax.block_until_ready(sol)

        solutions = {every: solve(every) for every in values}  # compile runs
        times = {every: [] for every in values}
        for _ in range(args.runs):  # interleaved, so that a slow spell hits every value
            for every in values:
                start = time.perf_counter()
                solutions[every] = solve(every)
                times[every].append(time.perf_counter() - start)
        line = []
        for every in values:
            sol = solutions[every]
            record = dict(n=n, d=d, P=int(gates.shape[1]), dtype=dtype_name, tol=tol,
                          check_every=every, times_s=times[every],
                          median_s=statistics.median(times[every]),
                          steps=int(sol.num_steps), converged=bool(sol.converged),
                          relative_gap=float(sol.relative_gap), objective=float(sol.objective))
            records.append(record)
            line.append(f"check_every={every}: {record['median_s']:.3f} s ({record['steps']} steps"
                        f"{'' if record['converged'] else ', NOT converged'})")
        print(f"{n}x{d}x{gates.shape[1]} {dtype_name} tol {tol:g}: " + ", ".join(line), flush=True)

    name = "fista_check_every" + (f"_{args.tag}" if args.tag else "") + (
        "_quick" if args.quick else "") + ".json"
    out = REPO / "benchmarks" / "results" / name
    out.write_text(json.dumps(dict(environment=environment(), lam=LAM, records=records), indent=1))
    print(f"wrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
