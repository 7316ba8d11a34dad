"""Benchmark: convex programs (cvxnn_jax) against Adam and SGD+momentum on the same network.

    python benchmarks/convex_vs_adam.py            # full run (about 10-13 min on 2 shared CPU cores)
    python benchmarks/convex_vs_adam.py --quick    # two data sets, tiny budgets: a smoke check

The claim under test (Pilanci & Ergen 2020; Mishkin, Sahiner & Pilanci 2022): the convex
programs reach a training objective at least as good as Adam/SGD on the same network and
weight-decay objective, with no learning rate to tune.

Data sets (all float64, features standardised with a scaler fitted on the training
split; 70/30 train/test split, ``random_state=0``, stratified for classification):

- ``breast_cancer`` (binary), ``wine`` (class 1 vs rest), ``iris`` (class 1, versicolor,
  vs rest: the one class that is not linearly separable): logistic loss, labels +-1,
  test metric accuracy;
- ``diabetes``: squared loss, targets standardised with the training mean and standard
  deviation, test metric R^2;
- ``planted``: a random two-layer ReLU teacher of width 10 on d = 20 Gaussian inputs
  (first layer N(0, 1/d), second N(0, 1)), 1000 training + 500 test points, Gaussian
  noise of 0.1 x the clean targets' standard deviation, targets standardised; squared
  loss, test metric R^2.

Convex solves: ``cn.fit(..., bias=True, tol=1e-4)`` at ``lam = 1e-2`` for every data set
(features and targets are standardised, so one value is sensible everywhere), on Gaussian
gates sampled once per data set with ``cn.sample_gates(PRNGKey(0), add_bias_column(X),
--gates)``: gated ReLU (FISTA) uses all of them (default 100 draws); ReLU (augmented
Lagrangian, cone constraints) uses the first ``--relu-gates`` (default 50) of the same
gates, because its solve costs 100-1000x the gated one (measured below: seconds to tens
of seconds on this machine). Each time is measured after a compile run (``max_steps=1``;
``max_steps`` is traced, so it builds the same executable) as the median of ``--runs``
timed runs (``--relu-runs`` for ReLU, default 1: those solves take seconds, and a second
one costs more than the noise it removes) with ``jax.block_until_ready``; it includes
``fit``'s argument checks. A ReLU solve that hits ``--relu-max-steps`` is reported as not
converged. A ReLU relative gap below zero is possible and is reported as is: the upper
bound is the recovered network's objective, and a network whose patterns drift off the
sampled ones (cone violation up to ``tol``) can sit below the sampled program's optimum.

The non-convex twins, trained with the exact objective of ``cn.nonconvex_objective``
(``L(f(X), y) + lam/2 (||W1||_F^2 + ||w2||^2)``, weight decay in the gradient, not
decoupled), full batch:

- gated ReLU: the gated network with the convex solution's active gates, fixed
  (``f(x) = sum_j 1[x.g_j >= 0] (x.W1_j) w2_j``, bias column appended); W1 and w2 are
  trained. Its global optimum is the convex optimum, so Adam can at best tie (within the
  certified gap);
- ReLU: a ReLU network of the recovered width (active neurons of the convex solution), bias
  column appended. Adam may pick any activation patterns, so it *can* beat the convex
  optimum over 50 sampled patterns: the certificate is relative to the sampled patterns.

Both start from He initialisation (``W1 ~ N(0, 2/d')``, ``w2 ~ N(0, 1/m)``), seeds 0, 1, 2,
and run over 5 log-spaced learning rates: Adam (optax) 1e-3 .. 1e-1, SGD with momentum 0.9
(optax) 3e-3 .. 3e-1 (measured: with 1e-3 .. 1e-1 the best SGD rate sat at the top edge on 7
of 10 problems; 1.0 diverges on the squared-loss problems, 0.3 on some). Each of the 5 x 3 = 15 runs per optimiser gets its own wall-time
budget of ``5 x`` the convex solve time of that data set and model, clipped to
[``--budget-floor``, ``--budget-cap``] (defaults 1 s and 1.5 s):

- the floor: gated FISTA solves take 10-300 ms; 5x that is a few hundred steps of Adam,
  so every run gets at least 1 s (generous to Adam/SGD);
- the cap: 30 runs x 5x a 3-30 s ReLU solve does not fit in 15 minutes on 2 shared cores
  (vmapping the 15 runs was measured 12-70x slower per step than one run on this CPU, so
  batching does not help). A capped budget is flagged in the table. It biases the
  comparison *towards* the convex solve, so where Adam/SGD still win under the cap, the
  finding stands; where the convex solve wins under a cap, the result is inconclusive.
  (Measured in a first full run with a 2 s cap: Adam/SGD passed the ReLU convex objective
  within 0.02-0.2 s on every data set, so the cap does not decide the ReLU outcome.)

Each run: a jit-compiled chunk of ``--chunk`` (default 50) optimiser steps under
``lax.scan`` (compiled before the clock starts), looped in Python until the budget is
spent, recording (elapsed, objective) after every chunk. A run whose objective turns
non-finite stops and counts as diverged (objective inf). Final objectives are evaluated
with ``cn.nonconvex_objective`` on the trained network (the in-loop value is checked to
agree). The table reports best / median / worst finite final objective over the 15 runs
(and how many diverged; a diverged run counts as +inf in the median) and the
test metric of the run with the best training objective; a second table counts the runs
that end at or below the convex objective x (1 + tol) and the earliest wall time at which
any run first got there.

Precision: float64 for every method (objective comparisons at the 1e-4 level need it).
Beside it, the gated solve is repeated in float32 to see whether float32 FISTA certifies a
relative gap of 1e-4 (converged flag, gap, time, objective difference to float64).

Writes ``benchmarks/results/convex_vs_adam.{json,md,svg}`` (``convex_vs_adam_quick.*``
with ``--quick``): every raw number (convex times, every run's final objective and a
thinned objective-vs-time curve) in the JSON, the table and a findings paragraph in the
markdown, and one subplot per data set and model of (objective - best found) / best found
against wall time in the SVG (drawn by ``_svg_plot``, no matplotlib; ``--figure-only``
redraws it from the JSON). Prints the total runtime.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import cvxnn_jax as cn  # noqa: E402
from _environment import environment  # noqa: E402
from _svg_plot import COLORS, Panel, Series, write_svg  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

LAM = 1e-2
TOL = 1e-4
BUDGET_FACTOR = 5.0
SEEDS = (0, 1, 2)
LEARNING_RATES = {
    "adam": np.geomspace(1e-3, 1e-1, 5),
    "sgd": np.geomspace(3e-3, 3e-1, 5),
}
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD+momentum 0.9"}
DATASETS = ("breast_cancer", "wine", "iris", "diabetes", "planted")
MODELS = ("gated_relu", "relu")
MAX_CURVE_POINTS = 60


def log(*args):
    print(*args, flush=True)


# ----------------------------------------------------------------------------- data


def load(name, planted_n=1000):
    """Standardised float64 train/test split: (Xtr, ytr, Xte, yte, loss)."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "planted":
        rng = np.random.default_rng(0)
        n, d, width = planted_n + planted_n // 2, 20, 10
        X = rng.standard_normal((n, d))
        W = rng.standard_normal((d, width)) / np.sqrt(d)
        a = rng.standard_normal(width)
        y = np.maximum(X @ W, 0) @ a
        y = y + 0.1 * y.std() * rng.standard_normal(n)
        loss = "squared"
        Xtr, Xte, ytr, yte = X[:planted_n], X[planted_n:], y[:planted_n], y[planted_n:]
    else:
        if name == "diabetes":
            X, y = datasets.load_diabetes(return_X_y=True)
            loss = "squared"
        else:
            X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
            if name != "breast_cancer":
                y = y == 1  # one-vs-rest: class 1 against the others
            y = np.where(y == 1, 1.0, -1.0)
            loss = "logistic"
        Xtr, Xte, ytr, yte = train_test_split(
            X, y, test_size=0.3, random_state=0, stratify=y if loss == "logistic" else None)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    if loss == "squared":
        mean, std = ytr.mean(), ytr.std()
        ytr, yte = (ytr - mean) / std, (yte - mean) / std
    return (*(np.asarray(a, np.float64) for a in (Xtr, ytr, Xte, yte)), loss)


def test_metric(network, Xte, yte, loss):
    """Accuracy (logistic) or R^2 (squared) of ``network`` on the test split."""
    pred = np.asarray(network.predict(jnp.asarray(Xte)))
    if not np.all(np.isfinite(pred)):
        return float("nan")
    if loss == "logistic":
        return float(np.mean(np.where(pred >= 0, 1.0, -1.0) == yte))
    return float(1.0 - np.mean((pred - yte) ** 2) / np.var(yte))


# ----------------------------------------------------------------------------- convex


def convex_solve(X, y, gates, model, loss, runs, max_steps, relu_solver=None):
    """Compile, then time ``runs`` solves (``relu_solver`` for ``model="relu"``); returns
    (times, compile_s, solution)."""
    kwargs = dict(gates=gates, model=model, loss=loss, tol=TOL, bias=True)
    if model == "relu":
        kwargs["solver"] = relu_solver
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cn.ConvergenceWarning)
        start = time.perf_counter()
        jax.block_until_ready(cn.fit(X, y, LAM, max_steps=1, **kwargs))
        compile_s = time.perf_counter() - start
        times, sol = [], None
        for _ in range(runs):
            start = time.perf_counter()
            sol = jax.block_until_ready(cn.fit(X, y, LAM, max_steps=max_steps, **kwargs))
            times.append(time.perf_counter() - start)
    return times, compile_s, sol


# ----------------------------------------------------------------------------- non-convex


def make_objective(Xb, y, loss, kind, gates):
    """The non-convex objective of cn.nonconvex_objective as a function of (W1, w2)."""
    masks = None if kind == "relu" else (Xb @ gates >= 0).astype(Xb.dtype)

    def objective(params):
        W1, w2 = params
        hidden = Xb @ W1
        hidden = jnp.maximum(hidden, 0.0) if masks is None else hidden * masks
        pred = hidden @ w2
        if loss == "squared":
            data = 0.5 * jnp.mean((pred - y) ** 2)
        else:
            data = jnp.mean(jnp.logaddexp(0.0, -y * pred))
        return data + 0.5 * LAM * (jnp.sum(W1**2) + jnp.sum(w2**2))

    return objective


def make_optimizer(name, lr):
    return optax.adam(lr) if name == "adam" else optax.sgd(lr, momentum=0.9)


def make_chunk(objective, optimizer_name, chunk):
    """jit-compiled: ``chunk`` optimiser steps from (params, state) at learning rate lr."""

    @jax.jit
    def run_chunk(params, state, lr):
        opt = make_optimizer(optimizer_name, lr)

        def step(carry, _):
            p, s = carry
            grads = jax.grad(objective)(p)
            updates, s = opt.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), None

        (params, state), _ = jax.lax.scan(step, (params, state), None, length=chunk)
        return params, state, objective(params)

    return run_chunk


def he_init(seed, d, m):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return (jax.random.normal(k1, (d, m), jnp.float64) * jnp.sqrt(2.0 / d),
            jax.random.normal(k2, (m,), jnp.float64) / jnp.sqrt(m))


def thin(curve, max_points=MAX_CURVE_POINTS):
    """At most ``max_points`` of a (time, objective) list, log-spaced in index, last kept,
    as ``{"t": [...], "objective": [...]}`` (times rounded to 0.1 ms)."""
    if len(curve) > max_points:
        idx = np.unique(np.geomspace(1, len(curve), max_points).astype(int) - 1)
        curve = [curve[i] for i in np.unique(np.append(idx, len(curve) - 1))]
    return dict(t=[round(t, 4) for t, _ in curve], objective=[v for _, v in curve])


def train(run_chunk, params, optimizer_name, lr, budget):
    """Loop compiled chunks until ``budget`` seconds are spent; returns params, the
    (elapsed, objective) curve, the number of chunks and whether it stayed finite."""
    state = make_optimizer(optimizer_name, 1.0).init(params)  # state layout is lr-independent
    lr = jnp.asarray(lr, jnp.float64)
    curve, chunks = [], 0
    start = time.perf_counter()
    while True:
        params, state, value = run_chunk(params, state, lr)
        value = float(value)  # blocks
        elapsed = time.perf_counter() - start
        chunks += 1
        curve.append((elapsed, value))
        if not math.isfinite(value) or elapsed >= budget:
            break
    return params, curve, chunks, math.isfinite(curve[-1][1])


def network_of(kind, params, gates):
    W1, w2 = params
    if kind == "relu":
        return cn.ReLUNetwork(W1=W1, w2=w2, slope=0.0, bias=True)
    return cn.GatedReLUNetwork(gates=gates, W1=W1, w2=w2, bias=True)


def first_time_below(curve, target):
    """Earliest elapsed time at which the curve is <= target (None if never)."""
    return next((t for t, v in curve if v <= target), None)


def nonconvex_runs(kind, data, active_gates, width, budget, args, convex_objective):
    Xtr, ytr, Xte, yte, loss = data
    Xb = cn.add_bias_column(jnp.asarray(Xtr))
    y = jnp.asarray(ytr)
    objective = make_objective(Xb, y, loss, kind, active_gates)
    d = Xb.shape[1]
    target = convex_objective + TOL * abs(convex_objective)
    out = {}
    for opt_name in args.optimizers:
        run_chunk = make_chunk(objective, opt_name, args.chunk)
        start = time.perf_counter()
        p0 = he_init(0, d, width)
        jax.block_until_ready(run_chunk(p0, make_optimizer(opt_name, 1.0).init(p0),
                                        jnp.asarray(1e-3, jnp.float64)))
        compile_s = time.perf_counter() - start
        runs = []
        for lr in args.learning_rates[opt_name]:
            for seed in args.seeds:
                params, curve, chunks, finite = train(run_chunk, he_init(seed, d, width),
                                                      opt_name, float(lr), budget)
                net = network_of(kind, params, active_gates)
                if finite:
                    final = float(cn.nonconvex_objective(net, jnp.asarray(Xtr), y, LAM,
                                                         loss=loss))
                    in_loop = curve[-1][1]
                    assert abs(final - in_loop) <= 1e-9 * max(1.0, abs(final)), (final, in_loop)
                    metric = test_metric(net, Xte, yte, loss)
                else:
                    final, metric = float("inf"), float("nan")
                runs.append(dict(lr=float(lr), seed=int(seed), objective=final,
                                 diverged=not finite, steps=chunks * args.chunk,
                                 wall_s=curve[-1][0], test=metric,
                                 within_tol_of_convex=final <= target,
                                 first_within_tol_s=first_time_below(curve, target),
                                 curve=thin(curve)))
        finals = np.array([r["objective"] for r in runs])
        best = runs[int(np.argmin(finals))]
        finite_finals = finals[np.isfinite(finals)]
        reach = [r["first_within_tol_s"] for r in runs if r["first_within_tol_s"] is not None]
        out[opt_name] = dict(
            compile_s=compile_s, runs=runs,
            runs_within_tol=int(sum(r["within_tol_of_convex"] for r in runs)),
            earliest_within_tol_s=min(reach) if reach else None,
            best=float(finals.min()), median=float(np.median(finals)), worst=float(finals.max()),
            worst_finite=float(finite_finals.max()) if finite_finals.size else float("inf"),
            best_lr=best["lr"], best_seed=best["seed"], best_test=best["test"],
            best_steps=best["steps"], diverged=int(sum(r["diverged"] for r in runs)),
        )
        log(f"    {OPTIMIZER_NAMES[opt_name]:>16}: best {out[opt_name]['best']:.6g} "
            f"(lr {best['lr']:.3g}, seed {best['seed']}, {best['steps']} steps), median "
            f"{out[opt_name]['median']:.6g}, worst {out[opt_name]['worst']:.6g}, diverged "
            f"{out[opt_name]['diverged']}/{len(runs)}, best-run test {best['test']:.4f}")
    return out


# ----------------------------------------------------------------------------- driver


def float32_check(data, gates, runs):
    """Gated FISTA in float32: does it certify 1e-4?"""
    Xtr, ytr, _, _, loss = data
    X32, y32 = jnp.asarray(Xtr, jnp.float32), jnp.asarray(ytr, jnp.float32)
    times, _, sol = convex_solve(X32, y32, jnp.asarray(gates, jnp.float32), "gated_relu", loss,
                                 runs, 10_000)
    return dict(median_s=statistics.median(times), converged=bool(sol.converged),
                relative_gap=float(sol.relative_gap), objective=float(sol.objective),
                steps=int(sol.num_steps))


def run_dataset(name, args):
    data = load(name, args.planted_n)
    Xtr, ytr, Xte, yte, loss = data
    X, y = jnp.asarray(Xtr), jnp.asarray(ytr)
    gates = cn.sample_gates(jax.random.PRNGKey(0), cn.add_bias_column(X), args.gates)
    record = dict(dataset=name, loss=loss, n_train=int(Xtr.shape[0]), n_test=int(Xte.shape[0]),
                  d=int(Xtr.shape[1]), lam=LAM, models={})
    log(f"{name}: n_train={Xtr.shape[0]}, n_test={Xte.shape[0]}, d={Xtr.shape[1]}, {loss} loss, "
        f"lam={LAM:g}, {gates.shape[1]} gates sampled")
    for model in args.models:
        model_gates = gates if model == "gated_relu" else gates[:, :args.relu_gates]
        runs = args.runs if model == "gated_relu" else args.relu_runs
        max_steps = 10_000 if model == "gated_relu" else args.relu_max_steps
        times, compile_s, sol = convex_solve(X, y, model_gates, model, loss, runs, max_steps,
                                             args.relu_solver)
        convex_s = statistics.median(times)
        net = sol.network.pruned()
        width = int(net.w2.shape[0])
        objective = float(sol.objective)
        recomputed = float(cn.nonconvex_objective(net, X, y, LAM, loss=loss))
        convex = dict(
            P=int(model_gates.shape[1]), times_s=times, median_s=convex_s, compile_s=compile_s,
            objective=objective, nonconvex_objective_of_network=recomputed,
            gap=float(sol.gap), relative_gap=float(sol.relative_gap),
            converged=bool(sol.converged), steps=int(sol.num_steps), width=width,
            violation=None if sol.violation is None else float(sol.violation),
            test=test_metric(net, Xte, yte, loss),
        )
        log(f"  {model}: P={convex['P']}, convex {convex_s:.3f} s (compile run {compile_s:.1f} s), "
            f"objective {objective:.6g}, rel. gap {convex['relative_gap']:.2e}, converged "
            f"{convex['converged']}, {convex['steps']} steps, width {width}, test "
            f"{convex['test']:.4f}" + ("" if convex["violation"] is None
                                        else f", violation {convex['violation']:.1e}"))
        raw_budget = BUDGET_FACTOR * convex_s
        budget = min(max(raw_budget, args.budget_floor), args.budget_cap)
        entry = dict(convex=convex, budget_s=budget, budget_5x_s=raw_budget,
                     budget_floored=raw_budget < args.budget_floor,
                     budget_capped=raw_budget > args.budget_cap)
        if model == "gated_relu":
            entry["float32"] = float32_check(data, gates, args.runs)
            f32 = entry["float32"]
            log(f"    float32 FISTA: {f32['median_s']:.3f} s, converged {f32['converged']}, rel. "
                f"gap {f32['relative_gap']:.2e}, objective {f32['objective']:.6g}")
        log(f"    budget per Adam/SGD run: {budget:.2f} s (5x convex = {raw_budget:.2f} s"
            f"{', floored' if entry['budget_floored'] else ''}"
            f"{', CAPPED' if entry['budget_capped'] else ''})")
        if width == 0:
            log("    recovered network is empty; no non-convex twin to train")
            entry["nonconvex"] = {}
        else:
            active_gates = None
            if model == "gated_relu":
                active_gates = jnp.asarray(net.gates)
            entry["nonconvex"] = nonconvex_runs(model, data, active_gates, width, budget, args,
                                                objective)
        best_nc = min((o["best"] for o in entry["nonconvex"].values()), default=float("inf"))
        entry["best_nonconvex"] = best_nc
        entry["convex_minus_best_nonconvex_relative"] = (objective - best_nc) / abs(best_nc)
        entry["verdict"] = verdict(convex, best_nc)
        record["models"][model] = entry
    return record


def verdict(convex, best_nc):
    if convex["objective"] <= best_nc:
        return "yes"
    if convex["gap"] > 0 and convex["objective"] - best_nc <= convex["gap"]:
        return "tie (within gap)"
    return "NO"


def finite_or_none(obj):
    """The results with non-finite floats (diverged runs) as None, for strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- report


def fmt_metric(loss, value):
    if value is None or not math.isfinite(value):
        return "-"
    return f"{100 * value:.1f}%" if loss == "logistic" else f"R2 {value:.3f}"


def table(results):
    opts = results["settings"]["optimizers"]
    head = ["data set", "model", "width (P)", "convex objective", "rel. gap", "conv.",
            "convex s", "convex test", "budget s"]
    for o in opts:
        head += [f"{OPTIMIZER_NAMES[o]} best / median / worst finite",
                 f"{OPTIMIZER_NAMES[o]} best lr",
                 f"{OPTIMIZER_NAMES[o]} best-run test"]
    head += ["convex <= best Adam/SGD?", "(convex - best) / best"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rec in results["records"]:
        for model, e in rec["models"].items():
            c = e["convex"]
            budget = f"{e['budget_s']:.2f}" + (" (floor)" if e["budget_floored"] else "") + (
                f" (cap; 5x = {e['budget_5x_s']:.0f})" if e["budget_capped"] else "")
            row = [rec["dataset"], "gated ReLU" if model == "gated_relu" else "ReLU",
                   f"{c['width']} ({c['P']})", f"{c['objective']:.6f}",
                   f"{c['relative_gap']:.1e}", "yes" if c["converged"] else "**no**",
                   f"{c['median_s']:.3f}", fmt_metric(rec["loss"], c["test"]), budget]
            for o in opts:
                nc = e["nonconvex"].get(o)
                if nc is None:
                    row += ["-", "-", "-"]
                    continue
                div = f" (+{nc['diverged']} diverged)" if nc["diverged"] else ""
                row += [f"{nc['best']:.6f} / {nc['median']:.6f} / {nc['worst_finite']:.4g}{div}",
                        f"{nc['best_lr']:.3g}", fmt_metric(rec["loss"], nc["best_test"])]
            v = e["verdict"]
            row += [v if v != "NO" else "**NO**",
                    f"{e['convex_minus_best_nonconvex_relative']:+.1e}"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def matching_table(results):
    opts = results["settings"]["optimizers"]
    head = ["data set", "model", "convex s"]
    for o in opts:
        head += [f"{OPTIMIZER_NAMES[o]}: runs ending <= convex (1 + 1e-4)",
                 f"{OPTIMIZER_NAMES[o]}: earliest time any run got there (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rec in results["records"]:
        for model, e in rec["models"].items():
            row = [rec["dataset"], "gated ReLU" if model == "gated_relu" else "ReLU",
                   f"{e['convex']['median_s']:.3f}"]
            for o in opts:
                nc = e["nonconvex"].get(o)
                if nc is None:
                    row += ["-", "-"]
                    continue
                t = nc["earliest_within_tol_s"]
                row += [f"{nc['runs_within_tol']}/{len(nc['runs'])}",
                        "never" if t is None else f"{t:.3f}"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def float32_table(results):
    lines = ["| data set | float64 FISTA s | float32 FISTA s | float32 converged | float32 rel. gap "
             "| float32 obj. - float64 obj. (relative) |", "|---|---|---|---|---|---|"]
    for rec in results["records"]:
        e = rec["models"].get("gated_relu")
        if not e or "float32" not in e:
            continue
        f, c = e["float32"], e["convex"]
        lines.append(f"| {rec['dataset']} | {c['median_s']:.3f} | {f['median_s']:.3f} | "
                     f"{'yes' if f['converged'] else '**no**'} | {f['relative_gap']:.1e} | "
                     f"{(f['objective'] - c['objective']) / c['objective']:+.1e} |")
    return "\n".join(lines)


def findings(results):
    """Findings sentences computed from the numbers (so that a re-run rewrites them)."""
    out = []
    recs = results["records"]
    for model, label in (("gated_relu", "Gated ReLU"), ("relu", "ReLU")):
        rows = [(r["dataset"], r["models"][model]) for r in recs if model in r["models"]]
        if not rows:
            continue
        wins = [d for d, e in rows if e["verdict"] == "yes"]
        ties = [d for d, e in rows if e["verdict"].startswith("tie")]
        losses = [(d, e) for d, e in rows if e["verdict"] == "NO"]
        capped = [d for d, e in rows if e["budget_capped"]]
        unconv = [d for d, e in rows if not e["convex"]["converged"]]
        text = f"**{label}.** "
        parts = []
        if wins:
            parts.append(f"the convex objective is <= the best of the {len(SEEDS) * 5} Adam and "
                         f"{len(SEEDS) * 5} SGD runs on {', '.join(wins)}")
        if ties:
            parts.append(f"it is above the best Adam/SGD run but within its own certified gap on "
                         f"{', '.join(ties)} (a tie at the 1e-4 tolerance)")
        if losses:
            parts.append("Adam/SGD reach a lower objective than the convex solve on " + ", ".join(
                f"{d} (convex {100 * e['convex_minus_best_nonconvex_relative']:.3g}% above the best "
                f"run, {OPTIMIZER_NAMES[min(e['nonconvex'], key=lambda o: e['nonconvex'][o]['best'])]})"
                for d, e in losses))
        joined = "; ".join(parts)
        text += joined[:1].upper() + joined[1:] + "."
        if unconv:
            text += f" The convex solve did not reach the 1e-4 certificate on {', '.join(unconv)}."
        if capped:
            text += (f" The Adam/SGD budget was capped at {results['settings']['budget_cap']:g} s "
                     f"(below 5x the convex time) on {', '.join(capped)}: where Adam/SGD still win "
                     "there, the finding holds a fortiori; where the convex solve wins, it is not "
                     "a 5x-budget result.")
        if model == "gated_relu":
            within = sum(nc["runs_within_tol"] for _, e in rows for nc in e["nonconvex"].values())
            total = sum(len(nc["runs"]) for _, e in rows for nc in e["nonconvex"].values())
            worst = max((nc["worst_finite"] / e["convex"]["objective"] - 1, d)
                        for d, e in rows for nc in e["nonconvex"].values())
            diverged = sum(nc["diverged"] for _, e in rows for nc in e["nonconvex"].values())
            text += (" The gated twin's global optimum *is* the convex optimum (same fixed "
                     "gates), so this half measures optimisation only: the tuned optimisers do "
                     f"get there, but only {within} of the {total} Adam/SGD runs end at or "
                     "below the convex objective + 1e-4 (relative) in their budget, "
                     f"{diverged} diverged, and the worst finite run ends "
                     f"{100 * worst[0]:.3g}% above it ({worst[1]}): the learning rate has to be "
                     "tuned, the convex solve has nothing to tune.")
            faster, slower = [], []
            for d, e in rows:
                reach = [nc["earliest_within_tol_s"] for nc in e["nonconvex"].values()
                         if nc["earliest_within_tol_s"] is not None]
                times = (f"{d} (Adam/SGD {'never' if not reach else '%.3f s' % min(reach)}, "
                         f"convex {e['convex']['median_s']:.3f} s)")
                (faster if reach and min(reach) < e["convex"]["median_s"] else slower).append(times)
            if faster:
                grid = len(next(iter(rows[0][1]["nonconvex"].values()))["runs"])
                text += (" Speed, honestly: the best-tuned Adam/SGD run (chosen after the fact "
                         f"from {grid}) reached the convex objective + 1e-4 sooner than the convex "
                         "solve on " + ", ".join(faster))
                text += ("; the convex solve was first on " + ", ".join(slower) + "."
                         if slower else ".")
                text += (" The convex solve's edge is that it needs no learning-rate grid (a "
                         f"{grid}-run grid costs {grid}x the budget) and certifies its result.")
        else:
            text += (" The ReLU program is solved over the sampled patterns only (here "
                     f"{rows[0][1]['convex']['P']}), while Adam trains a ReLU network of the same "
                     "width free to choose any activation pattern; the certificate is relative to "
                     "the sampled patterns, so a sampled program can be beaten by plain Adam "
                     "(growing patterns with the dual oracle of DESIGN.md section 2 is the known "
                     "remedy, not part of this benchmark).")
            pairs = [(r["models"]["relu"], r["models"]["gated_relu"]) for r in recs
                     if "relu" in r["models"] and "gated_relu" in r["models"]]
            if pairs:
                ratios = [rl["convex"]["median_s"] / g["convex"]["median_s"] for rl, g in pairs]
                above = sum(rl["convex"]["objective"] > g["convex"]["objective"] for rl, g in pairs)
                text += (f" The augmented-Lagrangian ReLU solve took {min(ratios):.0f}-"
                         f"{max(ratios):.0f}x the gated FISTA time, recovered networks of width "
                         f"{min(rl['convex']['width'] for rl, _ in pairs)}-"
                         f"{max(rl['convex']['width'] for rl, _ in pairs)} (gated: "
                         f"{min(g['convex']['width'] for _, g in pairs)}-"
                         f"{max(g['convex']['width'] for _, g in pairs)}), and its objective is "
                         f"above the gated convex objective on {above} of {len(pairs)} data sets.")
            neg = [d for d, e in rows if e["convex"]["relative_gap"] < 0]
            if neg:
                text += (f" Negative relative gaps ({', '.join(neg)}) mean the recovered "
                         "network's objective is below the dual bound of the sampled program: "
                         "its activation patterns differ slightly from the sampled ones (the "
                         "cone violation is in the JSON), so it is a network outside the sampled "
                         "program and the gap certifies nothing about it beyond that.")
        out.append(text)
    f32 = [(r["dataset"], r["models"]["gated_relu"]["float32"]) for r in recs
           if "gated_relu" in r["models"] and "float32" in r["models"]["gated_relu"]]
    if f32:
        ok = [d for d, f in f32 if f["converged"]]
        bad = [d for d, f in f32 if not f["converged"]]
        out.append("**float32.** Gated FISTA in float32 certified 1e-4 on "
                   f"{', '.join(ok) if ok else 'none'}"
                   + (f" and did not on {', '.join(bad)}" if bad else "")
                   + " (table below); every comparison above is float64.")
    return "\n\n".join(out)


def markdown(results, total_s):
    env, s = results["environment"], results["settings"]
    return "\n".join([
        "# Convex programs vs Adam / SGD on the same network",
        "",
        f"Generated by `{env['command']}` on {env['date']} (jax {env['jax']}, optax {env['optax']}, "
        f"{env['affinity_cpus']} CPU cores shared with other jobs, load average at start "
        f"{', '.join('%.1f' % x for x in env['load_average_at_start'] or [])}); total runtime "
        f"{total_s / 60:.1f} min. float64 throughout, lam = {LAM:g}, bias column, tol = {TOL:g} "
        f"(relative duality gap), {s['gates']} sampled gates for gated ReLU and the first "
        f"{s['relu_gates']} of them for ReLU. Adam/SGD: 5 learning rates x {len(s['seeds'])} "
        f"seeds each, full batch, weight decay in the objective, budget per run = 5x the "
        f"convex time clipped to [{s['budget_floor']:g}, {s['budget_cap']:g}] s. Objectives "
        "are training objectives L + lam/2 (||W1||^2 + ||w2||^2) (cn.nonconvex_objective); "
        "test metric: accuracy (classification) or R^2 (regression). Method and choices: "
        "docstring of benchmarks/convex_vs_adam.py; raw numbers: convex_vs_adam.json; "
        "curves: convex_vs_adam.svg.",
        "",
        table(results),
        "",
        "## Findings",
        "",
        findings(results),
        "",
        "### float32 gated FISTA (tol 1e-4)",
        "",
        float32_table(results),
        "",
        "### Runs that match the convex objective",
        "",
        matching_table(results),
        "",
    ])


def figure(results, path):
    """Objective against wall time as an SVG (``_svg_plot``; no matplotlib needed), both
    axes logarithmic: one row per model, one column per data set. Each panel shows
    (objective - best found) / best found + 1e-7 for Adam and SGD at their best learning
    rate (thick: the best seed, labelled; thin: the other seeds), the convex solve as a
    square at its median time, a dashed line at its level and one at the budget."""
    recs = results["records"]
    colors = {"adam": COLORS[0], "sgd": COLORS[1]}
    eps = 1e-7
    grid = []
    for model in [m for m in MODELS if any(m in r["models"] for r in recs)]:
        row = []
        for rec in recs:
            e = rec["models"].get(model)
            if e is None:
                continue
            c = e["convex"]
            f_star = min([c["objective"]] + [o["best"] for o in e["nonconvex"].values()])

            def rel(v):
                # None is a diverged run's inf, as finite_or_none wrote it.
                return math.inf if v is None else (v - f_star) / abs(f_star) + eps

            series = []
            for o, nc in e["nonconvex"].items():
                for r in nc["runs"]:
                    if r["diverged"] or r["lr"] != nc["best_lr"]:
                        continue
                    best = r["seed"] == nc["best_seed"]
                    series.append(Series(
                        r["curve"]["t"], [rel(v) for v in r["curve"]["objective"]],
                        f"{OPTIMIZER_NAMES[o]} lr={nc['best_lr']:.2g}" if best else None,
                        colors[o], width=1.6 if best else 0.8, opacity=1.0 if best else 0.45))
            status = "converged" if c["converged"] else "NOT converged"
            series.append(Series([c["median_s"]], [rel(c["objective"])], f"convex ({status})",
                                 "#000000", marker="square", line=False))
            name = "gated ReLU" if model == "gated_relu" else "ReLU"
            row.append(Panel(f"{rec['dataset']}: {name} (width {c['width']})", series,
                             hline=(rel(c["objective"]), "convex"),
                             vline=(e["budget_s"], "budget"), xscale="log",
                             ylabel="(objective - best) / best + 1e-7"))
        grid.append(row)
    write_svg(path, grid)


def main():
    total_start = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="iris and diabetes, few gates, 2 learning rates x 1 seed, short budgets")
    parser.add_argument("--datasets", type=str, default=None,
                        help=f"comma-separated subset of {','.join(DATASETS)}")
    parser.add_argument("--models", type=str, default=",".join(MODELS))
    parser.add_argument("--gates", type=int, default=100, help="gates sampled (gated ReLU uses all)")
    parser.add_argument("--relu-gates", type=int, default=50,
                        help="ReLU uses the first this many of the same gates")
    parser.add_argument("--runs", type=int, default=3, help="timed gated solves (median)")
    parser.add_argument("--relu-solver", choices=("al", "admm", "fista", "ipm", "auto"),
                        default="al",
                        help="ReLU solver; the committed results were measured with 'al' (the "
                             "library's default until 2026-11-26; 'auto' is today's default)")
    parser.add_argument("--relu-runs", type=int, default=1, help="timed ReLU solves (median)")
    parser.add_argument("--relu-max-steps", type=int, default=50_000,
                        help="step cap of a ReLU (augmented Lagrangian) solve")
    parser.add_argument("--budget-floor", type=float, default=1.0,
                        help="least wall time per Adam/SGD run (s)")
    parser.add_argument("--budget-cap", type=float, default=1.5,
                        help="most wall time per Adam/SGD run (s); flagged in the table")
    parser.add_argument("--chunk", type=int, default=50, help="optimiser steps per compiled chunk")
    parser.add_argument("--planted-n", type=int, default=1000, help="planted teacher: training size")
    parser.add_argument("--figure-only", action="store_true",
                        help="redraw the figure from the saved JSON (no run)")
    args = parser.parse_args()
    if args.figure_only:
        suffix = "_quick" if args.quick else ""
        saved = json.loads((RESULTS / f"convex_vs_adam{suffix}.json").read_text())
        figure(saved, RESULTS / f"convex_vs_adam{suffix}.svg")
        return
    args.optimizers = ("adam", "sgd")
    args.seeds = SEEDS
    args.learning_rates = dict(LEARNING_RATES)
    datasets = DATASETS
    if args.quick:
        datasets = ("iris", "diabetes")
        args.gates, args.relu_gates = min(args.gates, 30), min(args.relu_gates, 10)
        args.relu_max_steps = min(args.relu_max_steps, 5000)
        args.budget_floor, args.budget_cap = 0.2, 0.3
        args.seeds = (0,)
        args.learning_rates = {k: v[[1, 3]] for k, v in LEARNING_RATES.items()}
        args.runs = 1
    if args.datasets:
        datasets = tuple(args.datasets.split(","))
    args.models = tuple(args.models.split(","))

    results = dict(
        mode="quick" if args.quick else "full", environment=environment(optax=optax.__version__),
        settings=dict(lam=LAM, tol=TOL, budget_factor=BUDGET_FACTOR, budget_floor=args.budget_floor,
                      budget_cap=args.budget_cap, gates=args.gates, relu_gates=args.relu_gates,
                      runs=args.runs, relu_runs=args.relu_runs, relu_max_steps=args.relu_max_steps,
                      relu_solver=args.relu_solver,
                      chunk=args.chunk, seeds=list(args.seeds), optimizers=list(args.optimizers),
                      learning_rates={k: [float(x) for x in v]
                                      for k, v in args.learning_rates.items()},
                      sgd_momentum=0.9, dtype="float64", planted_n=args.planted_n,
                      datasets=list(datasets), models=list(args.models)),
        records=[],
    )
    log(f"convex vs Adam/SGD ({results['mode']}): {', '.join(datasets)}; load average "
        f"{results['environment']['load_average_at_start']}")
    for name in datasets:
        results["records"].append(run_dataset(name, args))
        log(f"  [{(time.perf_counter() - total_start) / 60:.1f} min so far]")

    total_s = time.perf_counter() - total_start
    results["total_runtime_s"] = total_s
    suffix = "_quick" if args.quick else ""
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = markdown(results, total_s)
    (RESULTS / f"convex_vs_adam{suffix}.md").write_text(md)
    total_s = time.perf_counter() - total_start
    results["total_runtime_s"] = total_s
    text = json.dumps(finite_or_none(results), indent=1, allow_nan=False)
    # One line per list of plain numbers (the curves): keeps the file readable and small.
    text = re.sub(r"\[\s*([-+0-9.eEnul]+(?:,\s*[-+0-9.eEnul]+)*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    (RESULTS / f"convex_vs_adam{suffix}.json").write_text(text)
    figure(json.loads(text), RESULTS / f"convex_vs_adam{suffix}.svg")
    log("\n" + table(results) + "\n\n" + findings(results) + "\n\n" + float32_table(results)
        + "\n\n" + matching_table(results))
    log(f"\ntotal runtime {total_s:.0f} s ({total_s / 60:.1f} min); wrote "
        f"benchmarks/results/convex_vs_adam{suffix}.{{json,md,svg}}")


if __name__ == "__main__":
    main()
