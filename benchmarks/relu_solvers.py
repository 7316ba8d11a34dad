"""Benchmark: the ReLU program's AL, ADMM and projected-FISTA solvers against CVXPY/Clarabel.

    python benchmarks/relu_solvers.py            # full run (long on 2 cores; see --help)
    python benchmarks/relu_solvers.py --quick    # tiny sizes, a smoke check

For n in {500, 2000, 10000}, d = 20, P = 200 sampled gates (planted two-layer ReLU
teacher, squared loss, lam = 1e-3, float64), it measures the wall time of
``fit(..., model="relu", solver=s, tol=1e-6, feasibility_tol=1e-6)`` (``--tol``) for s in
{"al", "admm", "fista", "ipm", "auto"} (``--solvers``; "auto" is ``solver=None``, the
default for the size and device, recorded as ``chosen``; median of ``--runs`` runs after a compile run,
each capped by ``--max-steps`` / ``--max-steps-admm`` / ``--max-steps-ipm``), and the wall time of ``tests/reference.cvxpy_relu`` (CVXPY
construction + Clarabel at 1e-9) on the same masks for n up to ``--cvxpy-max-n``. It
prints a table (time, converged, relative gap, violation, steps, speed-up over CVXPY,
the faster JAX solver per n) and writes every raw figure to
``benchmarks/results/relu_solvers.json`` (``relu_solvers_quick.json`` with --quick).
A solve that hits the step cap is reported as not converged, with the gap it reached:
its time is a lower bound on the time to the tolerance.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)


import cvxnn_jax as cn  # noqa: E402
from cvxnn_jax._solvers.ipm import ipm_memory_entries  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from reference import cp, cvxpy_relu, planted_relu_problem  # noqa: E402

LAM = 1e-3
TOL = 1e-6
FEASIBILITY_TOL = 1e-6
TARGET_SPEEDUP = 20.0

CONFIGS = {
    "full": dict(sizes=[500, 2000, 10000], d=20, gates=200),
    "quick": dict(sizes=[100, 200], d=5, gates=20),
}


def solve_once(X, y, gates, solver, max_steps, tol, feasibility_tol=FEASIBILITY_TOL):
    """Wall time (seconds) and solution of one ``fit(..., model="relu")`` at lam = LAM."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cn.ConvergenceWarning)
        sol = cn.fit(X, y, LAM, gates=gates, model="relu", solver=solver, tol=tol,
                     feasibility_tol=feasibility_tol, max_steps=max_steps)
        sol.objective.block_until_ready()
    return time.perf_counter() - start, sol


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke check)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per JAX solver")
    parser.add_argument("--max-steps", type=int, default=20_000,
                        help="step cap per AL or FISTA solve (FISTA steps)")
    parser.add_argument("--max-steps-admm", type=int, default=60_000,
                        help="step cap per ADMM solve (iterations; each costs a factored solve)")
    parser.add_argument("--max-steps-ipm", type=int, default=200,
                        help="step cap per interior-point solve (iterations; each costs an "
                             "n x n Cholesky factorisation)")
    parser.add_argument("--ipm-factor-side", choices=("auto", "samples", "weights"),
                        default="auto",
                        help="InteriorPoint(factor_side=...): which Gram matrix of the n x Pd "
                             "Woodbury factor is factored (auto: the smaller)")
    parser.add_argument("--cvxpy-max-n", type=int, default=2000,
                        help="largest n given to CVXPY/Clarabel (it is run once per size)")
    parser.add_argument("--sizes", type=str, default=None, help="comma-separated n values")
    parser.add_argument("--solvers", type=str, default="al,admm,fista",
                        help="comma-separated subset of al, admm, fista, ipm, auto")
    parser.add_argument("--tol", type=float, default=TOL,
                        help="relative gap asked of the JAX solvers (default 1e-6; another "
                             "value adds _tol<value> to the JSON name). CVXPY always runs "
                             "at 1e-9")
    parser.add_argument("--tag", type=str, default=None,
                        help="append _<tag> to the JSON name (e.g. a GPU run)")
    args = parser.parse_args()
    config = CONFIGS["quick" if args.quick else "full"]
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else config["sizes"]
    solvers = [s for s in args.solvers.split(",") if s]
    unknown = set(solvers) - {"al", "admm", "fista", "ipm", "auto"}
    if unknown:
        parser.error(f"unknown solvers {sorted(unknown)}")
    if cp is None and any(n <= args.cvxpy_max_n for n in sizes):
        parser.error("cvxpy is not installed (pip install -e '.[test]'); pass --cvxpy-max-n 0 "
                     "to time the JAX solvers alone")

    records = []
    for n in sizes:
        X, y = planted_relu_problem(0, n=n, d=config["d"])
        gates = cn.sample_gates(jax.random.PRNGKey(0), X, config["gates"])
        record = dict(n=n, d=config["d"], P=int(gates.shape[1]))
        for solver in solvers:
            chosen = solver
            if solver == "auto":
                chosen = {cn.InteriorPoint: "ipm", cn.ADMM: "admm",
                          cn.AugmentedLagrangian: "al"}[type(
                    cn.default_relu_solver(n, config["d"], int(gates.shape[1]), X.dtype))]
            max_steps = {"admm": args.max_steps_admm, "ipm": args.max_steps_ipm}.get(
                chosen, args.max_steps)
            method = (cn.InteriorPoint(factor_side=args.ipm_factor_side) if solver == "ipm"
                      else solver)
            compile_time, _ = solve_once(X, y, gates, method, max_steps, args.tol)
            times, sol = [], None
            for _ in range(args.runs):
                elapsed, sol = solve_once(X, y, gates, method, max_steps, args.tol)
                times.append(elapsed)
            record[solver] = dict(
                first_call_s=compile_time, times_s=times, median_s=statistics.median(times),
                converged=bool(sol.converged), relative_gap=float(sol.relative_gap),
                violation=float(sol.violation), steps=int(sol.num_steps),
                objective=float(sol.objective), chosen=chosen,
                ipm_entries=ipm_memory_entries(n, config["d"], int(gates.shape[1])),
                # The device's peak since the process started (sizes run in the order
                # given, so after the largest one it is that one's); None on the CPU.
                device_peak_bytes=(jax.devices()[0].memory_stats() or {}).get(
                    "peak_bytes_in_use"),
            )
            print(f"n={n} {solver} ({chosen}): {record[solver]['median_s']:.2f} s, converged="
                  f"{record[solver]['converged']}, gap {record[solver]['relative_gap']:.2e}, "
                  f"violation {record[solver]['violation']:.1e}, steps {record[solver]['steps']}",
                  flush=True)
        if n <= args.cvxpy_max_n:
            start = time.perf_counter()
            value, _, _ = cvxpy_relu(X, y, cn.gate_masks(X, gates), LAM)
            record["cvxpy"] = dict(time_s=time.perf_counter() - start, objective=float(value))
            print(f"n={n} cvxpy: {record['cvxpy']['time_s']:.2f} s", flush=True)
        records.append(record)

    print("\n| n | " + " | ".join(f"{s} s (conv, gap)" for s in solvers)
          + " | CVXPY s | best JAX | speed-up vs CVXPY |")
    print("|---|" + "---|" * (len(solvers) + 3))
    for r in records:
        # Only a converged solve counts as reaching the target.
        candidates = [(r[s]["median_s"], s) for s in solvers if r[s]["converged"]]
        best = min(candidates) if candidates else None
        r["faster_converged_solver"] = best[1] if best else None
        speedup = None
        if best and "cvxpy" in r:
            speedup = r["cvxpy"]["time_s"] / best[0]
        r["speedup_vs_cvxpy"] = speedup
        cells = [f"{r[s]['median_s']:.2f} ({'yes' if r[s]['converged'] else 'NO'}, "
                 f"{r[s]['relative_gap']:.1e})" for s in solvers]
        cvx = f"{r['cvxpy']['time_s']:.1f}" if "cvxpy" in r else "-"
        verdict = "-" if speedup is None else (
            f"{speedup:.1f}x {'PASS' if speedup >= TARGET_SPEEDUP else 'MISS'}")
        print(f"| {r['n']} | {' | '.join(cells)} | {cvx} | {best[1] if best else 'none'} | "
              f"{verdict} |")

    name = "relu_solvers_quick" if args.quick else "relu_solvers"
    if args.tol != TOL:
        name += f"_tol{args.tol:.0e}"
    if args.tag:
        name += f"_{args.tag}"
    out = REPO / "benchmarks" / "results" / (name + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        date=datetime.datetime.now().isoformat(timespec="seconds"),
        machine=dict(platform=platform.platform(), processor=platform.processor(),
                     jax=jax.__version__, devices=[str(d) for d in jax.devices()]),
        settings=dict(lam=LAM, tol=args.tol, feasibility_tol=FEASIBILITY_TOL, runs=args.runs,
                      solvers=solvers, max_steps=args.max_steps,
                      max_steps_admm=args.max_steps_admm,
                      max_steps_ipm=args.max_steps_ipm,
                      ipm_factor_side=args.ipm_factor_side,
                      cvxpy_max_n=args.cvxpy_max_n,
                      target_speedup=TARGET_SPEEDUP),
        records=records,
    ), indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
