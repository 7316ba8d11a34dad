"""Benchmark: gated-ReLU solves on a working set of gates against FISTA on every gate.

    python benchmarks/working_set.py                 # float32, tol 1e-4 (about 5 minutes)
    python benchmarks/working_set.py --float64 --tag float64   # float64, tol 1e-6
    python benchmarks/working_set.py --quick         # small smoke run

Data: the planted two-layer ReLU teacher of ``tests/reference.py`` with standardised
targets (as ``benchmarks/path.py``), gated ReLU, squared loss. ``lams`` come from the
grid of ``benchmarks/path.py`` (``lam_max * geomspace(0.5, 0.01, 32)``); the cases pick
lambdas whose optimum uses fewer gates than the working set holds.

For each case and lambda, ``cn.fit(..., solver=cn.FISTA())`` (every gate) and
``cn.fit(..., solver=cn.WorkingSet(capacity))`` are timed alternately, ``--repeats``
times each after a compile run, and the medians are compared; then the warm-started
path (``cn.fit_path(..., warm_start=True)``) over the case's lambdas, both ways. Both
certify the same full program to ``tol``; the objectives are printed side by side.
Prints a table and writes ``benchmarks/results/working_set[_<tag>].json``.
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
import numpy as np

import cvxnn_jax as cn
from _environment import environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from reference import planted_relu_problem  # noqa: E402

MAX_STEPS = 20_000
NUM_LAMS = 32


def log(*args):
    print(*args, flush=True)


def problem(n, d, num_gates, dtype):
    X, y = planted_relu_problem(0, n=n, d=d)
    y = (y - y.mean()) / y.std()
    X, y = X.astype(dtype), y.astype(dtype)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, num_gates)
    masks = np.asarray(cn.gate_masks(X, gates))
    lam_max = float(np.max(np.linalg.norm(X.T @ (masks * y[:, None]), axis=0)) / n)
    lams = (lam_max * np.geomspace(0.5, 0.01, NUM_LAMS)).astype(dtype)
    return X, y, gates, lams


def seconds(fn):
    start = time.perf_counter()
    result = jax.block_until_ready(fn())
    return time.perf_counter() - start, result


def nonzero_gates(weights):
    return int(np.sum(np.linalg.norm(np.asarray(weights), axis=-2) > 0))


def run_case(name, n, d, num_gates, capacity, lam_indices, dtype, tol, repeats):
    X, y, gates, lams = problem(n, d, num_gates, dtype)
    log(f"{name}: n={n}, d={d}, P={gates.shape[1]}, capacity {capacity}, "
        f"{np.dtype(dtype).name}, tol={tol:g}")
    solvers = {"fista": cn.FISTA(), "working_set": cn.WorkingSet(capacity=capacity)}
    options = dict(gates=gates, tol=tol, max_steps=MAX_STEPS)
    rows = []
    for index in lam_indices:
        lam = lams[index]
        times = {k: [] for k in solvers}
        results = {}
        for solver in solvers.values():  # compile runs (max_steps is traced)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", cn.ConvergenceWarning)
                jax.block_until_ready(cn.fit(X, y, lam, **{**options, "max_steps": 1},
                                             solver=solver))
        for _ in range(repeats):  # alternately, so load changes hit both
            for key, solver in solvers.items():
                t, results[key] = seconds(lambda: cn.fit(X, y, lam, **options, solver=solver))
                times[key].append(t)
        row = dict(lam_index=index, lam=float(lam),
                   nonzero_gates=nonzero_gates(results["fista"].weights))
        for key, sol in results.items():
            row[key] = dict(times_s=times[key], median_s=statistics.median(times[key]),
                            num_steps=int(sol.num_steps), objective=float(sol.objective),
                            relative_gap=float(sol.relative_gap), result=cn.RESULTS[sol.result])
        row["speedup"] = row["fista"]["median_s"] / row["working_set"]["median_s"]
        row["relative_objective_difference"] = abs(
            row["working_set"]["objective"] / row["fista"]["objective"] - 1)
        rows.append(row)
        log(f"  lam[{index:2d}] = {lam:.4g}, {row['nonzero_gates']:4d} non-zero gates: FISTA "
            f"{row['fista']['median_s']:.3f} s ({row['fista']['num_steps']} steps), working set "
            f"{row['working_set']['median_s']:.3f} s ({row['working_set']['num_steps']} steps, "
            f"{row['working_set']['result'].split(':')[0]}): {row['speedup']:.2f}x; objectives "
            f"differ by {row['relative_objective_difference']:.1e}")
    path_lams = lams[: max(lam_indices) + 1]
    path = {}
    for key, solver in solvers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cn.ConvergenceWarning)
            jax.block_until_ready(cn.fit_path(X, y, path_lams, warm_start=True, solver=solver,
                                              **{**options, "max_steps": 1}))
    times = {k: [] for k in solvers}
    for _ in range(repeats):
        for key, solver in solvers.items():
            t, path[key] = seconds(lambda: cn.fit_path(X, y, path_lams, warm_start=True,
                                                       solver=solver, **options))
            times[key].append(t)
    path_row = dict(num_lams=len(path_lams))
    for key, sol in path.items():
        path_row[key] = dict(times_s=times[key], median_s=statistics.median(times[key]),
                             num_steps=int(np.sum(sol.num_steps)),
                             converged=int(np.sum(sol.converged)),
                             objective=np.asarray(sol.objective, np.float64).tolist())
    path_row["speedup"] = path_row["fista"]["median_s"] / path_row["working_set"]["median_s"]
    path_row["max_relative_objective_difference"] = float(np.max(np.abs(
        np.array(path_row["working_set"]["objective"]) / np.array(path_row["fista"]["objective"])
        - 1)))
    log(f"  warm-started path over lam[0..{len(path_lams) - 1}]: FISTA "
        f"{path_row['fista']['median_s']:.2f} s ({path_row['fista']['num_steps']} steps, "
        f"{path_row['fista']['converged']} converged), working set "
        f"{path_row['working_set']['median_s']:.2f} s ({path_row['working_set']['num_steps']} "
        f"steps, {path_row['working_set']['converged']} converged): {path_row['speedup']:.2f}x")
    return dict(name=name, n=n, d=d, P=int(gates.shape[1]), capacity=capacity,
                lams=[row for row in rows], warm_path=path_row)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small problems, one repeat")
    parser.add_argument("--float64", action="store_true", help="float64, tol 1e-6")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per solver")
    parser.add_argument("--tag", type=str, default=None, help="write working_set_<tag>.json")
    args = parser.parse_args()
    if args.float64:
        jax.config.update("jax_enable_x64", True)
    dtype, tol = (np.float64, 1e-6) if args.float64 else (np.float32, 1e-4)
    if args.quick:
        cases = [("quick", 500, 10, 200, 64, [0, 8], 1)]
    elif args.float64:
        cases = [("P=1000, float64", 2000, 20, 1000, 128, [0, 8, 16], args.repeats)]
    else:
        cases = [("P=500", 5000, 50, 500, 128, [0, 8, 16], args.repeats),
                 ("P=2000", 5000, 50, 2000, 256, [0, 8, 16, 20], args.repeats)]
    results = dict(environment=environment(), max_steps=MAX_STEPS, dtype=np.dtype(dtype).name,
                   tol=tol, cases=[run_case(*case[:6], dtype, tol, case[6]) for case in cases])
    stem = "working_set" + ("_quick" if args.quick else "") + (f"_{args.tag}" if args.tag else "")
    out = REPO / "benchmarks" / "results" / f"{stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
