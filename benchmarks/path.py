"""Benchmark: a regularisation path of 32 lambdas three ways.

    python benchmarks/path.py            # n=5000, d=50, P=500 (tens of minutes on 2 CPU cores)
    python benchmarks/path.py --quick    # n=500, d=10, P=50: a smoke check
    python benchmarks/path.py --size 2000,20,200 --num-lams 16 --float64 --tol 1e-6 --tag polish
                                         # a path that runs the Newton polish (tol <= 1e-5)

1. vmapped path: ``cn.fit_path(X, y, lams)``, one compiled call, every lambda a lane of
   one batched solve;
2. a Python loop of ``cn.fit`` over the lambdas (one compile serves all: lam is traced);
3. the warm-started path: ``cn.fit_path(..., warm_start=True)``, largest lambda first,
   each solve started from the last, one compiled call (one lane);
4. for each ``K`` of ``--lanes`` (default 8): the queued path ``cn.fit_path(...,
   lanes=K)``: K lanes of one vmapped block of steps, each lane taking the next lambda
   (largest first) as soon as its solve stops, cold and warm-started
   (``warm_start=True``: a new solve starts from the current weights at the smallest
   lambda taken so far, solved or running in another lane).

Each is timed as the median of ``--repeats`` (default 3) runs after a compile run (the
compile run uses ``max_steps=1``: ``max_steps`` is traced, so it compiles the same
executable without paying for a full solve). Gated ReLU, squared loss, by default
float32 (the library's fast default) and ``tol=1e-4`` (relative duality gap; float32
certifies reliably to there, DESIGN.md section 2; ``--float64`` and ``--tol`` change
them). Data: the planted two-layer ReLU teacher of ``tests/reference.py`` with
standardised targets; ``lams = lam_max * geomspace(0.5, 0.01, L)`` (``L`` =
``--num-lams``, default 32) where ``lam_max = max_i ||(D_i X)^T y|| / n`` is the
smallest lambda whose solution is zero.

"One solve" in the targets is the loop's mean time per lambda. Prints a table and writes
every timing to ``benchmarks/results/path.json`` (``path_quick.json`` with --quick).
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

NUM_LAMS = 32
TOL = 1e-4
MAX_STEPS = 20_000
DTYPE = np.float32
TARGET_PATH_OVER_ONE_SOLVE = 8.0
TARGET_LOOP_OVER_PATH = 3.0


def log(*args):
    print(*args, flush=True)


def problem(n, d, num_gates):
    X, y = planted_relu_problem(0, n=n, d=d)
    y = (y - y.mean()) / y.std()
    X, y = X.astype(DTYPE), y.astype(DTYPE)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, num_gates)
    masks = np.asarray(cn.gate_masks(X, gates))
    lam_max = float(np.max(np.linalg.norm(X.T @ (masks * y[:, None]), axis=0)) / n)
    lams = (lam_max * np.geomspace(0.5, 0.01, NUM_LAMS)).astype(DTYPE)
    return X, y, gates, lams, lam_max


def timed(fn, repeats):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return times, result


def lane_steps(num_steps, lanes):
    """Lane-steps paid by the queued path with ``lanes`` lanes (``num_steps`` per lambda,
    in the queue's order: largest lambda first): each solve goes to the lane that frees
    up first, and every lane computes a step while any lane runs, so the path pays
    ``lanes`` times the last lane's finishing step."""
    free_at = [0] * lanes
    for steps in num_steps:
        k = free_at.index(min(free_at))
        free_at[k] += steps
    return lanes * max(free_at)


def run(n, d, num_gates, repeats, lanes):
    X, y, gates, lams, lam_max = problem(n, d, num_gates)
    P = gates.shape[1]
    log(f"n={n}, d={d}, P={P}, {NUM_LAMS} lambdas from {lams[0]:.3g} to {lams[-1]:.3g} "
        f"(lam_max {lam_max:.3g}), {np.dtype(DTYPE).name}, tol={TOL:g}, {repeats} timed runs "
        "each")
    options = dict(gates=gates, tol=TOL, max_steps=MAX_STEPS)
    warnings.simplefilter("ignore", cn.ConvergenceWarning)  # the compile runs stop at 1 step

    def loop():
        return [cn.fit(X, y, lam, **options) for lam in lams]

    methods = {
        "vmapped path": lambda **kw: cn.fit_path(X, y, lams, **{**options, **kw}),
        "loop of fit": lambda **kw: [cn.fit(X, y, lam, **{**options, **kw}) for lam in lams],
        "warm-started path": lambda **kw: cn.fit_path(X, y, lams, warm_start=True,
                                                      **{**options, **kw}),
    }
    for k in lanes:
        for warm in (False, True):
            methods[f"lanes={k}" + (", warm" if warm else "")] = (
                lambda k=k, warm=warm, **kw: cn.fit_path(X, y, lams, lanes=k, warm_start=warm,
                                                         **{**options, **kw}))
    out = {}
    for name, method in methods.items():
        start = time.perf_counter()
        jax.block_until_ready(method(max_steps=1))
        compile_s = time.perf_counter() - start
        times, result = timed(method, repeats)
        if isinstance(result, list):
            objective = np.array([float(s.objective) for s in result])
            steps = np.array([int(s.num_steps) for s in result])
            converged = np.array([bool(s.converged) for s in result])
        else:
            objective = np.asarray(result.objective, dtype=np.float64)
            steps = np.asarray(result.num_steps)
            converged = np.asarray(result.converged)
        out[name] = dict(times_s=times, median_s=statistics.median(times), compile_s=compile_s,
                         objective=objective.tolist(), num_steps=steps.tolist(),
                         converged=converged.tolist())
        log(f"  {name:>18}: median {statistics.median(times):8.2f} s  (runs "
            f"{', '.join('%.2f' % t for t in times)}; compile run {compile_s:.1f} s), "
            f"steps total {int(steps.sum())}, max {int(steps.max())}, "
            f"converged {int(converged.sum())}/{NUM_LAMS}")
    reference = np.array(out["loop of fit"]["objective"])
    for name in out:
        if name == "loop of fit":
            continue
        difference = np.abs(np.array(out[name]["objective"]) / reference - 1)
        out[name]["max_relative_objective_difference_to_loop"] = float(difference.max())
    one_solve = out["loop of fit"]["median_s"] / NUM_LAMS
    loop_steps = np.array(out["loop of fit"]["num_steps"])
    return dict(
        n=n, d=d, P=P, lams=lams.tolist(), lam_max=lam_max, methods=out,
        one_solve_mean_s=one_solve,
        path_over_one_solve=out["vmapped path"]["median_s"] / one_solve,
        loop_over_path=out["loop of fit"]["median_s"] / out["vmapped path"]["median_s"],
        loop_over_warm_path=out["loop of fit"]["median_s"] / out["warm-started path"]["median_s"],
        queued={name: dict(path_over_one_solve=m["median_s"] / one_solve,
                           loop_over_path=out["loop of fit"]["median_s"] / m["median_s"],
                           lane_steps=lane_steps(m["num_steps"], k))
                for k in lanes for name, m in out.items()
                if name in (f"lanes={k}", f"lanes={k}, warm")},
        # The batched loop runs every lane for as many steps as the slowest lambda needs.
        vmapped_lane_steps=NUM_LAMS * int(max(out["vmapped path"]["num_steps"])),
        loop_steps=int(loop_steps.sum()),
        slowest_single_solve_steps=int(loop_steps.max()),
    )


def summary(results):
    r = results["run"]
    env = results["environment"]
    lines = ["=" * 92,
             f"regularisation path ({results['mode']}): jax {env['jax']}, {env['device']} "
             f"({env['device_kind']}), {env['affinity_cpus']} CPUs",
             f"n={r['n']}, d={r['d']}, P={r['P']}, {NUM_LAMS} lambdas, gated ReLU, squared loss, "
             f"{np.dtype(DTYPE).name}, tol={TOL:g}",
             "-" * 92,
             f"{'method':>18} | {'median s':>9} | {'steps total':>11} {'max':>6} | {'converged':>9} | "
             f"{'max rel obj diff to loop':>24}"]
    for name, m in r["methods"].items():
        diff = m.get("max_relative_objective_difference_to_loop")
        lines.append(f"{name:>18} | {m['median_s']:>9.2f} | {sum(m['num_steps']):>11} "
                     f"{max(m['num_steps']):>6} | {sum(m['converged']):>4}/{NUM_LAMS:<4} | "
                     f"{'-' if diff is None else '%.2e' % diff:>24}")
    lines += [
        "-" * 92,
        f"one solve (loop mean) {r['one_solve_mean_s']:.3f} s; batched lane-steps "
        f"{r['vmapped_lane_steps']} (= {NUM_LAMS} x slowest {max(r['methods']['vmapped path']['num_steps'])})"
        f" vs loop steps {r['loop_steps']}",
        "targets",
        f"  vmapped path <= {TARGET_PATH_OVER_ONE_SOLVE:.0f}x one solve: "
        f"{r['path_over_one_solve']:.1f}x -> "
        f"{'PASS' if r['path_over_one_solve'] <= TARGET_PATH_OVER_ONE_SOLVE else 'MISS'}",
        f"  loop of fit >= {TARGET_LOOP_OVER_PATH:.0f}x the vmapped path's time: "
        f"{r['loop_over_path']:.2f}x -> "
        f"{'PASS' if r['loop_over_path'] >= TARGET_LOOP_OVER_PATH else 'MISS'}",
        f"  (warm-started path: loop / warm = {r['loop_over_warm_path']:.2f}x)",
        *[f"  ({name}: {b['path_over_one_solve']:.1f}x one solve, loop / it = "
          f"{b['loop_over_path']:.2f}x, lane-steps {b['lane_steps']})"
          for name, b in r.get("queued", {}).items()],
        "=" * 92,
    ]
    return "\n".join(lines)


def main():
    global NUM_LAMS, TOL, DTYPE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n=500, d=10, P=50 smoke run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method")
    parser.add_argument("--lanes", type=str, default="8",
                        help="comma-separated lane counts of the queued paths ('' for none)")
    parser.add_argument("--tag", type=str, default=None,
                        help="write path_<tag>.json (e.g. a GPU run)")
    parser.add_argument("--size", type=str, default=None, help="n,d,P (default 5000,50,500)")
    parser.add_argument("--num-lams", type=int, default=NUM_LAMS, help="lambdas on the path")
    parser.add_argument("--tol", type=float, default=TOL, help="relative duality gap")
    parser.add_argument("--float64", action="store_true", help="float64 instead of float32")
    args = parser.parse_args()
    NUM_LAMS, TOL = args.num_lams, args.tol
    if args.float64:
        jax.config.update("jax_enable_x64", True)
        DTYPE = np.float64
    n, d, num_gates = (500, 10, 50) if args.quick else (5000, 50, 500)
    if args.size:
        n, d, num_gates = (int(v) for v in args.size.split(","))
    results = dict(mode="quick" if args.quick else "full", environment=environment(),
                   config=dict(num_lams=NUM_LAMS, tol=TOL, max_steps=MAX_STEPS,
                               dtype=np.dtype(DTYPE).name, repeats=args.repeats))
    lanes = [int(k) for k in args.lanes.split(",") if k]
    results["run"] = run(n, d, num_gates, args.repeats, lanes)
    text = summary(results)
    results["summary"] = text
    log(text)
    stem = "path" + ("_quick" if args.quick else "") + (f"_{args.tag}" if args.tag else "")
    path = REPO / "benchmarks" / "results" / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
