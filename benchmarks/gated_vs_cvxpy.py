"""Benchmark: gated-ReLU ``cvxnn_jax.fit`` against CVXPY/Clarabel, FISTA throughput, and
float32 vs float64 time to a relative duality gap.

    python benchmarks/gated_vs_cvxpy.py            # full run (several minutes on 2 cores)
    python benchmarks/gated_vs_cvxpy.py --quick    # tiny sizes, a smoke check
    python benchmarks/gated_vs_cvxpy.py --parts throughput,precision --tag h100   # no CVXPY

Prints its figures and writes every raw timing to
``benchmarks/results/gated_vs_cvxpy.json`` (``gated_vs_cvxpy_quick.json`` with --quick;
``gated_vs_cvxpy_<tag>.json`` with --tag, e.g. for a run on a GPU).

What is measured (all data: planted two-layer ReLU teacher from ``tests/reference.py``,
squared loss, the same sampled gates for every solver):

1. Time for ``fit(..., model="gated_relu", tol=1e-6)`` in float64, median of several runs
   after a compile run, against the wall time of ``tests/reference.cvxpy_gated_relu``
   (CVXPY problem construction + canonicalisation + Clarabel at 1e-9) on the same masks.
2. Achieved GFLOP/s of the FISTA iteration (``fit`` with ``tol=0`` and a fixed
   ``max_steps``), with FLOPs counted exactly: an instrumented run of the same solve
   counts every matvec ``A W`` and rmatvec ``A^T r`` of the program
   (line-search trials, certificates, power iterations included), each at
   ``2 n d P`` FLOPs; divided by the GFLOP/s of a jitted ``X @ W`` of shape
   ``(n, d) x (d, P)`` in the same dtype measured in the same run.
3. Time and steps to relative gap 1e-4 and 1e-6 in float32 and float64.
4. A table of all figures with PASS/MISS against the targets.
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

import cvxpy as cp  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import cvxnn_jax as cn  # noqa: E402
from _environment import environment, package_version  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from reference import cvxpy_gated_relu, planted_relu_problem  # noqa: E402

LAM = 1e-3
SEED = 0  # data seed (planted_relu_problem)
GATE_KEY = 0  # jax.random.PRNGKey for cn.sample_gates

PARTS = ("compare", "throughput", "precision")
TARGET_SPEEDUP = 50.0
TARGET_MATMUL_FRACTION = 0.5
TARGET_F32_SPEEDUP = 2.0

CONFIGS = {
    "full": dict(
        compare_sizes=[(2000, 20, 200), (3000, 25, 250)],
        fit_runs=5,
        cvxpy_runs=1,
        throughput_shapes=[(1000, 50, 1000), (2000, 20, 200)],
        throughput_steps=1000,
        throughput_runs=3,
        matmul_reps=200,
        precision_size=(1000, 50, 1000),
        precision_max_steps=50_000,
        precision_runs=1,
    ),
    "quick": dict(
        compare_sizes=[(200, 5, 20), (300, 6, 30)],
        fit_runs=2,
        cvxpy_runs=1,
        throughput_shapes=[(200, 10, 50)],
        throughput_steps=200,
        throughput_runs=2,
        matmul_reps=50,
        precision_size=(100, 10, 50),
        precision_max_steps=20_000,
        precision_runs=1,
    ),
}


# ----------------------------------------------------------------------------- helpers
def log(*args):
    print(*args, flush=True)


def median(xs):
    return float(statistics.median(xs))


def problem(n, d, num_gates, dtype):
    """Planted-teacher data in ``dtype`` and gates sampled on the float64 data.

    Gates are sampled once on the float64 data (fixed key) and cast, so the float32 and
    float64 runs see the same gate vectors.
    """
    X64, y64 = planted_relu_problem(SEED, n, d)
    gates = cn.sample_gates(jax.random.PRNGKey(GATE_KEY), jnp.asarray(X64, jnp.float64), num_gates)
    X = jnp.asarray(X64, dtype)
    y = jnp.asarray(y64, dtype)
    return X, y, jnp.asarray(gates, dtype)


def timed_fit(X, y, gates, tol, max_steps):
    """One ``fit`` call: (seconds, solution, [ConvergenceWarning messages], [other warnings])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        sol = cn.fit(X, y, LAM, gates=gates, model="gated_relu", loss="squared",
                     tol=tol, max_steps=max_steps)
        jax.block_until_ready(sol)
        seconds = time.perf_counter() - t0
    conv = [str(w.message) for w in caught if issubclass(w.category, cn.ConvergenceWarning)]
    other = [f"{w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, cn.ConvergenceWarning)]
    return seconds, sol, conv, other


def solution_record(sol):
    return dict(
        objective=float(sol.objective),
        gap=float(sol.gap),
        relative_gap=float(sol.relative_gap),
        num_steps=int(sol.num_steps),
        converged=bool(sol.converged),
        result=cn.RESULTS[sol.result],
    )


def time_call(fn, args, reps):
    """Per-call wall times of a jitted ``fn(*args)`` (each blocked), after 3 warm calls."""
    for _ in range(3):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return times


# ------------------------------------------------------- part 1: fit vs CVXPY/Clarabel
_clarabel_solve_times: list[float] = []
_original_solve = cp.Problem.solve


def _recording_solve(self, *args, **kwargs):
    """``cp.Problem.solve`` that also records Clarabel's own solve time."""
    value = _original_solve(self, *args, **kwargs)
    _clarabel_solve_times.append(float(self.solver_stats.solve_time or float("nan")))
    return value


def compare_with_cvxpy(n, d, num_gates, fit_runs, cvxpy_runs):
    log(f"\n[1] fit vs CVXPY/Clarabel: n={n}, d={d}, gates drawn={num_gates}, lam={LAM}, "
        "float64, tol=1e-6")
    X, y, gates = problem(n, d, num_gates, jnp.float64)
    P = gates.shape[1]
    masks = np.asarray(cn.gate_masks(X, gates))
    max_steps = 100_000

    compile_s, sol, conv, other = timed_fit(X, y, gates, 1e-6, max_steps)
    log(f"    compile + first run: {compile_s:.3f} s")
    times, warns = [], list(conv) + list(other)
    for _ in range(fit_runs):
        seconds, sol, conv, other = timed_fit(X, y, gates, 1e-6, max_steps)
        times.append(seconds)
        warns += conv + other
    fit_rec = solution_record(sol)
    log(f"    fit: median {median(times):.3f} s over {fit_runs} runs {['%.3f' % t for t in times]}; "
        f"steps {fit_rec['num_steps']}, rel. gap {fit_rec['relative_gap']:.3g}, "
        f"converged {fit_rec['converged']}")

    cvx_times, cvx_values = [], []
    cp.Problem.solve = _recording_solve
    try:
        _clarabel_solve_times.clear()
        for _ in range(cvxpy_runs):
            t0 = time.perf_counter()
            value, _W = cvxpy_gated_relu(np.asarray(X), np.asarray(y), masks, LAM, "squared")
            cvx_times.append(time.perf_counter() - t0)
            cvx_values.append(float(value))
        clarabel_times = list(_clarabel_solve_times)
    finally:
        cp.Problem.solve = _original_solve
    cvx_value = cvx_values[-1]
    speedup = median(cvx_times) / median(times)
    rel_diff = (fit_rec["objective"] - cvx_value) / abs(cvx_value)
    log(f"    CVXPY/Clarabel: median {median(cvx_times):.2f} s over {cvxpy_runs} run(s) "
        f"(Clarabel's own solve time {median(clarabel_times):.2f} s); objective {cvx_value:.12g}")
    log(f"    fit objective {fit_rec['objective']:.12g}; (fit - cvxpy)/|cvxpy| = {rel_diff:.3g}; "
        f"speed-up {speedup:.1f}x")
    return dict(
        n=n, d=d, num_gates_drawn=num_gates, P=P, lam=LAM, dtype="float64", tol=1e-6,
        max_steps=max_steps,
        fit_compile_plus_first_run_s=compile_s,
        fit_times_s=times, fit_median_s=median(times), fit=fit_rec, fit_warnings=warns,
        cvxpy_runs=cvxpy_runs, cvxpy_times_s=cvx_times, cvxpy_median_s=median(cvx_times),
        clarabel_solve_times_s=clarabel_times, cvxpy_objectives=cvx_values,
        cvxpy_settings="Clarabel tol_gap_abs=tol_gap_rel=tol_feas=1e-9 (tests/reference.py)",
        speedup=speedup, objective_relative_difference=rel_diff,
    )


# ------------------------------------------------------------ part 2: FISTA throughput
_op_counts = {"matvec": 0, "rmatvec": 0, "forward": 0}


def _bump(name):
    def bump(_):
        _op_counts[name] += 1
    return bump


class _CountingGatedReLU(cn.GatedReLUProgram):
    """The same program, counting matvec / rmatvec executions through host callbacks."""

    def matvec(self, W):
        jax.debug.callback(_bump("matvec"), W[0, 0])
        return cn.GatedReLUProgram.matvec(self, W)

    def rmatvec(self, r):
        jax.debug.callback(_bump("rmatvec"), r[0])
        return cn.GatedReLUProgram.rmatvec(self, r)

    def forward(self, W):
        # In residual coordinates (below float64) forward is two products of its own;
        # otherwise it is a matvec, counted there.
        if self.residual:
            jax.debug.callback(_bump("forward"), W[0, 0])
        return cn.GatedReLUProgram.forward(self, W)


def count_operator_calls(X, y, gates, steps):
    """Exact matvec / rmatvec counts of the solve ``fit(tol=0, max_steps=steps)`` runs.

    Mirrors ``cvxnn_jax._fit._solve_gated_relu``: same program data, default FISTA,
    zero start. The step count and objective are returned so the caller can check the
    instrumented trajectory is the timed one.
    """
    program = _CountingGatedReLU.build(X, cn.gate_masks(X, gates), y, jnp.asarray(LAM, X.dtype),
                                       cn.get_loss("squared"))
    _op_counts.update(matvec=0, rmatvec=0, forward=0)
    state = jax.jit(cn.fista_solve, static_argnums=4)(
        program, program.init_x(), jnp.asarray(0.0, X.dtype), jnp.asarray(steps, jnp.int32),
        cn.FISTA())
    jax.block_until_ready(state)
    jax.effects_barrier()
    return dict(_op_counts), int(state.num_steps), float(state.objective)


def throughput(n, d, num_gates, dtype, steps, runs, reps):
    name = jnp.dtype(dtype).name
    log(f"\n[2] FISTA throughput: n={n}, d={d}, gates drawn={num_gates}, {name}, "
        f"tol=0, max_steps={steps}")
    X, y, gates = problem(n, d, num_gates, dtype)
    P = gates.shape[1]
    flop_per_op = 2.0 * n * d * P

    counts, counted_steps, counted_objective = count_operator_calls(X, y, gates, steps)

    compile_s, sol, _, _ = timed_fit(X, y, gates, 0.0, steps)
    times = []
    for _ in range(runs):
        seconds, sol, _, _ = timed_fit(X, y, gates, 0.0, steps)
        times.append(seconds)
    fit_steps = int(sol.num_steps)
    same_trajectory = (fit_steps == counted_steps) and bool(
        np.isclose(float(sol.objective), counted_objective, rtol=1e-5 if name == "float32" else 1e-10))
    t_fit = median(times)
    # Exact count: every matvec / rmatvec of the solve, two products per accurate
    # residual (forward in residual coordinates), plus the mask product X @ gates.
    exact_ops = counts["matvec"] + counts["rmatvec"] + 2 * counts["forward"] + 1
    # Lower bound that needs no instrumentation: 1 matvec + 1 rmatvec per step.
    lower_ops = 2 * fit_steps
    gflops_exact = exact_ops * flop_per_op / t_fit / 1e9
    gflops_lower = lower_ops * flop_per_op / t_fit / 1e9

    # Baseline: a jitted X @ W of shape (n, d) x (d, P), same dtype, two ways; keep the faster.
    W = jnp.asarray(np.random.default_rng(1).standard_normal((d, P)), dtype)
    matmul = jax.jit(lambda X, W: X @ W)
    per_call = time_call(matmul, (X, W), reps)
    loop_k = 50

    @jax.jit
    def matmul_loop(X, W):
        # W + i keeps XLA from hoisting the product out of the loop; the adds are O(dP + nP).
        def body(i, acc):
            return acc + X @ (W + i.astype(W.dtype))
        return jax.lax.fori_loop(0, loop_k, body, jnp.zeros((X.shape[0], W.shape[1]), W.dtype))

    looped = [t / loop_k for t in time_call(matmul_loop, (X, W), max(reps // 10, 5))]
    gflops_call = flop_per_op / median(per_call) / 1e9
    gflops_loop = flop_per_op / median(looped) / 1e9
    gflops_matmul = max(gflops_call, gflops_loop)

    # Pieces of one FISTA step, each repeated loop_k times inside one jitted loop (the
    # input shifted by the loop index so nothing is hoisted): seconds per application.
    program = cn.GatedReLUProgram(X=X, masks=cn.gate_masks(X, gates), y=y,
                                  lam=jnp.asarray(LAM, dtype), loss=cn.get_loss("squared"))
    r = jnp.asarray(np.random.default_rng(2).standard_normal(n), dtype)
    step = jnp.asarray(0.1, dtype)

    def looped_piece(f, x0):
        @jax.jit
        def run(program, x0):
            def body(i, acc):
                return acc + f(program, x0 + i.astype(x0.dtype))
            return jax.lax.fori_loop(0, loop_k, body, jnp.zeros_like(f(program, x0)))
        return [t / loop_k for t in time_call(run, (program, x0), max(reps // 10, 5))]

    pieces = {
        "matvec rowsum(X*(masks@W.T))": looped_piece(lambda p, W: p.matvec(W), W),
        "rmatvec (Xt*r)@masks": looped_piece(lambda p, r: p.rmatvec(r), r),
        "prox (group soft-threshold)": looped_piece(lambda p, W: p.prox(W, step), W),
        "plain X@W": looped,
    }
    piece_medians = {k: median(v) for k, v in pieces.items()}

    rec = dict(
        n=n, d=d, num_gates_drawn=num_gates, P=P, dtype=name, lam=LAM, max_steps=steps,
        steps=fit_steps, fit_compile_plus_first_run_s=compile_s, fit_times_s=times,
        fit_median_s=t_fit, seconds_per_step=t_fit / fit_steps,
        flop_per_matvec=flop_per_op,
        op_counts=counts, instrumented_steps=counted_steps,
        instrumented_same_trajectory=same_trajectory,
        matvecs_per_step=counts["matvec"] / fit_steps, rmatvecs_per_step=counts["rmatvec"] / fit_steps,
        fit_gflops_exact=gflops_exact, fit_gflops_lower_bound=gflops_lower,
        matmul_per_call_times_s=per_call, matmul_looped_times_s=looped,
        matmul_gflops_per_call=gflops_call, matmul_gflops_looped=gflops_loop,
        matmul_gflops=gflops_matmul,
        ratio_exact=gflops_exact / gflops_matmul, ratio_lower_bound=gflops_lower / gflops_matmul,
        piece_times_s=pieces, piece_median_s=piece_medians,
    )
    log(f"    P={P}; fit: median {t_fit:.3f} s over {runs} runs -> {1e3 * t_fit / fit_steps:.3f} ms/step")
    log(f"    counted ops: {counts['matvec']} matvecs ({rec['matvecs_per_step']:.3f}/step), "
        f"{counts['rmatvec']} rmatvecs ({rec['rmatvecs_per_step']:.3f}/step) + 1 mask product; "
        f"instrumented run matches timed run: {same_trajectory}")
    log(f"    FISTA: {gflops_exact:.2f} GFLOP/s (exact count), {gflops_lower:.2f} GFLOP/s "
        "(lower bound, 1 matvec + 1 rmatvec per step)")
    log(f"    X@W: {gflops_call:.2f} GFLOP/s per call, {gflops_loop:.2f} GFLOP/s in a loop; "
        f"ratio (exact) {rec['ratio_exact']:.1%}, (lower bound) {rec['ratio_lower_bound']:.1%}")
    log("    pieces (median, in a jitted loop): " + ", ".join(
        f"{k} {1e6 * v:.0f} us" for k, v in piece_medians.items()))
    return rec


# ------------------------------------------------------- part 3: float32 vs float64
def product_pair_seconds(X, y, gates, loop_k=50, reps=20):
    """Median seconds of one ``A^T r`` followed by one ``A W`` of the program ``fit`` builds
    (in a jitted loop): the products of a FISTA step. At equal step counts, their
    float64/float32 ratio bounds what float32 can gain."""
    program = cn.GatedReLUProgram.build(X, cn.gate_masks(X, gates), y,
                                        jnp.asarray(LAM, X.dtype), cn.get_loss("squared"))

    @jax.jit
    def run(program, r):
        def body(i, r):
            return r + 1e-6 * program.matvec(program.rmatvec(r))
        return jax.lax.fori_loop(0, loop_k, body, r)

    with jax.default_matmul_precision("highest"):
        return median([t / loop_k for t in time_call(run, (program, y), reps)])


def square_matmul_seconds(dtype, size=1000, reps=20):
    """Median seconds of one ``(size, size) @ (size, size)`` product in ``dtype``: the
    machine's float32 / float64 ratio where matmuls run nearest their peak."""
    rng = np.random.default_rng(0)
    A, B = (jnp.asarray(rng.standard_normal((size, size)), dtype) for _ in range(2))
    with jax.default_matmul_precision("highest"):
        return median(time_call(jax.jit(jnp.matmul), (A, B), reps))


def precision_runs(n, d, num_gates, max_steps, runs):
    out = {}
    for dtype in (jnp.float32, jnp.float64):
        name = jnp.dtype(dtype).name
        X, y, gates = problem(n, d, num_gates, dtype)
        P = gates.shape[1]
        # max_steps and tol are traced: this compiles the executable the timed runs use.
        compile_s, _, _, _ = timed_fit(X, y, gates, 1e-4, 1)
        out[name] = dict(P=P, compile_plus_one_step_s=compile_s,
                         product_pair_s=product_pair_seconds(X, y, gates),
                         square_matmul_s=square_matmul_seconds(dtype))
        log(f"\n[3] {name}: one A^T r and one A W (the products of a FISTA step, fit's program): "
            f"{1e3 * out[name]['product_pair_s']:.3f} ms; a 1000 x 1000 x 1000 matmul: "
            f"{1e3 * out[name]['square_matmul_s']:.3f} ms")
        for tol in (1e-4, 1e-6):
            log(f"\n[3] n={n}, d={d}, P={P}, {name}, tol={tol:g}, max_steps={max_steps}")
            times, conv_warnings, other_warnings = [], [], []
            for _ in range(runs):
                seconds, sol, conv, other = timed_fit(X, y, gates, tol, max_steps)
                times.append(seconds)
                conv_warnings += conv
                other_warnings += other
            rec = solution_record(sol)
            rec.update(times_s=times, median_s=median(times), convergence_warnings=conv_warnings,
                       other_warnings=other_warnings, max_steps=max_steps,
                       seconds_per_step=median(times) / max(rec["num_steps"], 1))
            out[name][f"tol={tol:g}"] = rec
            log(f"    {median(times):.2f} s, {rec['num_steps']} steps "
                f"({1e3 * rec['seconds_per_step']:.2f} ms/step), rel. gap {rec['relative_gap']:.3g}, "
                f"objective {rec['objective']:.10g}, converged {rec['converged']}"
                + (f"; ConvergenceWarning: {conv_warnings[-1]}" if conv_warnings else ""))
    return out


# ------------------------------------------------------------------------------ main
def pass_miss(ok):
    return "PASS" if ok else "MISS"


def summary(results):
    lines = []
    add = lines.append
    env = results["environment"]
    add("=" * 100)
    add(f"gated ReLU benchmark ({results['mode']}): jax {env['jax']}, {env['device']} "
        f"({env['device_kind']}), {env['affinity_cpus']} CPUs, lam={LAM}, squared loss")
    add("-" * 100)
    if results["compare"]:
        add("[1] float64, tol=1e-6: fit (median of runs after compile) vs CVXPY/Clarabel (wall time)")
        add(f"{'n':>6} {'d':>4} {'P':>5} | {'fit s':>8} {'steps':>6} {'conv':>5} | {'cvxpy s':>8} "
            f"{'(runs)':>6} {'clarabel s':>10} | {'speed-up':>8} | {'fit obj':>16} {'cvxpy obj':>16} {'rel diff':>9}")
        for c in results["compare"]:
            add(f"{c['n']:>6} {c['d']:>4} {c['P']:>5} | {c['fit_median_s']:>8.3f} {c['fit']['num_steps']:>6} "
                f"{str(c['fit']['converged']):>5} | {c['cvxpy_median_s']:>8.2f} {c['cvxpy_runs']:>6} "
                f"{median(c['clarabel_solve_times_s']):>10.2f} | {c['speedup']:>7.1f}x | "
                f"{c['fit']['objective']:>16.10g} {c['cvxpy_objectives'][-1]:>16.10g} "
                f"{c['objective_relative_difference']:>9.2e}")
        add("-" * 100)
    if results["throughput"]:
        add("[2] FISTA throughput (fit, tol=0, fixed steps) vs jitted X@W (n,d)x(d,P), same dtype")
        add(f"{'n':>6} {'d':>4} {'P':>5} {'dtype':>8} | {'ms/step':>8} {'mv/step':>7} {'rmv/step':>8} | "
            f"{'GF/s exact':>10} {'GF/s lower':>10} | {'X@W GF/s':>8} | {'ratio':>6} {'(lower)':>7}")
        for t in results["throughput"]:
            add(f"{t['n']:>6} {t['d']:>4} {t['P']:>5} {t['dtype']:>8} | {1e3 * t['seconds_per_step']:>8.3f} "
                f"{t['matvecs_per_step']:>7.3f} {t['rmatvecs_per_step']:>8.3f} | {t['fit_gflops_exact']:>10.2f} "
                f"{t['fit_gflops_lower_bound']:>10.2f} | {t['matmul_gflops']:>8.2f} | "
                f"{t['ratio_exact']:>6.1%} {t['ratio_lower_bound']:>7.1%}")
        add("    per application, in a jitted loop (us): " + "; ".join(
            f"{t['n']}x{t['d']}x{t['P']} {t['dtype']}: step {1e6 * t['seconds_per_step']:.0f}, "
            + ", ".join(f"{k.split(' ')[0]} {1e6 * v:.0f}" for k, v in t["piece_median_s"].items())
            for t in results["throughput"]))
        add("    FLOPs: exact = counted matvecs + rmatvecs (line-search trials, certificates every "
            f"check_every={cn.FISTA().check_every} steps, power iterations) + 1 mask product, 2ndP each;")
        add("    lower = 1 matvec + 1 rmatvec per step. X@W GF/s is the faster of per-call and in-loop timing.")
        add("-" * 100)
    if results["precision"]:
        p = results["precision"]
        n, d, _ = results["config"]["precision_size"]
        add(f"[3] n={n}, d={d}, P={p['float64']['P']}: time / steps to relative gap "
            f"(max_steps={results['config']['precision_max_steps']})")
        add(f"{'dtype':>8} {'tol':>6} | {'seconds':>8} {'steps':>7} {'ms/step':>8} {'rel gap':>9} "
            f"{'converged':>9} | {'objective':>14}")
        for name in ("float32", "float64"):
            for tol in (1e-4, 1e-6):
                r = p[name][f"tol={tol:g}"]
                add(f"{name:>8} {tol:>6g} | {r['median_s']:>8.2f} {r['num_steps']:>7} "
                    f"{1e3 * r['seconds_per_step']:>8.3f} {r['relative_gap']:>9.2e} {str(r['converged']):>9} | "
                    f"{r['objective']:>14.10g}")
        add(f"    one A^T r + one A W (a step's products): float32 "
            f"{1e3 * p['float32']['product_pair_s']:.3f} ms, float64 "
            f"{1e3 * p['float64']['product_pair_s']:.3f} ms: ratio "
            f"{p['float64']['product_pair_s'] / p['float32']['product_pair_s']:.2f}, the most "
            "float32 gains at equal steps")
        if "square_matmul_s" in p["float32"]:
            add(f"    a 1000 x 1000 x 1000 matmul: float32 "
                f"{1e3 * p['float32']['square_matmul_s']:.3f} ms, float64 "
                f"{1e3 * p['float64']['square_matmul_s']:.3f} ms: ratio "
                f"{p['float64']['square_matmul_s'] / p['float32']['square_matmul_s']:.2f} "
                "(this machine's float32 gain where matmuls run nearest their peak)")
        add("-" * 100)
    t = results["targets"]
    add("targets")
    if "speedup_pass" in t:
        add(f"  fit >= {TARGET_SPEEDUP:.0f}x faster than CVXPY/Clarabel at every comparison size "
            f"(both converged, objectives agree to 1e-6): speed-ups "
            f"{', '.join('%.1fx' % s for s in t['speedups'])} -> {pass_miss(t['speedup_pass'])}")
    if "matmul_pass" in t:
        add(f"  FISTA >= {TARGET_MATMUL_FRACTION:.0%} of X@W throughput (exact FLOP count, every "
            f"shape and dtype): {', '.join('%s %.1f%%' % (k, 100 * v) for k, v in t['matmul_fractions'].items())}"
            f" -> {pass_miss(t['matmul_pass'])}")
    if "f32_pass" in t:
        add(f"  float32 >= {TARGET_F32_SPEEDUP:.0f}x faster than float64 to rel. gap 1e-4 (both converged): "
            f"float64/float32 time ratio {t['f64_over_f32_at_1e-4']:.2f} "
            f"(float32 converged {t['f32_converged_1e-4']}, float64 converged {t['f64_converged_1e-4']}) "
            f"-> {pass_miss(t['f32_pass'])}")
    add("=" * 100)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="part 3 step budget (default 50000; 20000 with --quick)")
    parser.add_argument("--cvxpy-runs", type=int, default=None, help="CVXPY runs per size (default 1)")
    parser.add_argument("--parts", type=str, default=",".join(PARTS),
                        help="comma-separated subset of: " + ", ".join(PARTS))
    parser.add_argument("--tag", type=str, default=None,
                        help="write gated_vs_cvxpy_<tag>.json (e.g. a GPU run)")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"--parts: unknown part(s) {sorted(unknown)}; choose from {PARTS}")

    mode = "quick" if args.quick else "full"
    config = dict(CONFIGS[mode])
    if args.max_steps is not None:
        config["precision_max_steps"] = args.max_steps
    if args.cvxpy_runs is not None:
        config["cvxpy_runs"] = args.cvxpy_runs
    stem = "gated_vs_cvxpy" + ("_quick" if args.quick else "") + (f"_{args.tag}" if args.tag else "")
    out_path = REPO / "benchmarks" / "results" / f"{stem}.json"

    t_start = time.perf_counter()
    env = environment(cvxpy=cp.__version__, clarabel=package_version("clarabel"))
    log(f"jax {env['jax']} on {env['device']} ({env['affinity_cpus']} CPUs), mode {mode}, lam={LAM}")

    compare = [compare_with_cvxpy(n, d, P, config["fit_runs"], config["cvxpy_runs"])
               for n, d, P in config["compare_sizes"]] if "compare" in parts else []
    thr = [throughput(n, d, P, dtype, config["throughput_steps"], config["throughput_runs"],
                      config["matmul_reps"])
           for n, d, P in config["throughput_shapes"] for dtype in (jnp.float32, jnp.float64)
           ] if "throughput" in parts else []
    prec = precision_runs(*config["precision_size"], config["precision_max_steps"],
                          config["precision_runs"]) if "precision" in parts else {}

    targets = {}
    if compare:
        targets["speedups"] = [c["speedup"] for c in compare]
        targets["speedup_pass"] = all(
            c["speedup"] >= TARGET_SPEEDUP and c["fit"]["converged"]
            and abs(c["objective_relative_difference"]) <= 1e-6 for c in compare)
    if thr:
        fractions = {f"{t['n']}x{t['d']}x{t['P']} {t['dtype']}": t["ratio_exact"] for t in thr}
        targets["matmul_fractions"] = fractions
        targets["matmul_pass"] = all(v >= TARGET_MATMUL_FRACTION for v in fractions.values())
    if prec:
        f32, f64 = prec["float32"][f"tol={1e-4:g}"], prec["float64"][f"tol={1e-4:g}"]
        ratio = f64["median_s"] / f32["median_s"]
        targets.update({
            "f64_over_f32_at_1e-4": ratio,
            "f32_converged_1e-4": f32["converged"],
            "f64_converged_1e-4": f64["converged"],
            "f32_pass": bool(f32["converged"] and f64["converged"] and ratio >= TARGET_F32_SPEEDUP),
        })

    results = dict(
        mode=mode, environment=env, config=config, lam=LAM, loss="squared",
        data="tests/reference.planted_relu_problem(seed=0, n, d): planted 3-neuron ReLU teacher, noise 0.1",
        gates=f"cn.sample_gates(jax.random.PRNGKey({GATE_KEY}), X_float64, P) then cast to the run's dtype",
        parts=parts, compare=compare, throughput=thr, precision=prec, targets=targets,
        total_seconds=time.perf_counter() - t_start,
    )
    table = summary(results)
    results["table"] = table
    log("\n" + table)
    log(f"total {results['total_seconds']:.0f} s")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"wrote {out_path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
