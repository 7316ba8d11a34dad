"""Gated-ReLU solves on a working set of gates (the outer loop of ``celer`` / ``skglm``).

Where the solution uses few of the ``P`` gates (a large ``lam``, or many sampled gates)
most of FISTA's work multiplies zero columns. A working-set solve repeats, in one
``jax.lax.while_loop``:

1. pick ``capacity`` gates: those non-zero in the current ``x`` first, then the others
   by how far the current dual direction violates their constraint
   (``||(A^T rho)_i||``, largest first: the gates the full program's optimality
   conditions want next);
2. solve the program restricted to those gates with FISTA (warm-started, with its own
   certificate), to a relative gap ``inner_factor`` times the full program's current
   one (and at least ``inner_factor * tol``), or straight to ``inner_factor * tol``
   once no gate outside the last round's sets the dual scale;
3. certify the result on *every* gate: the full program's duality gap from the
   restricted solve's dual directions (its last and its extrapolated one), scaled to
   feasibility over all ``P`` gates, so the certificate is that of the full program.

It stops when the full gap is ``<= tol * objective``. Each restricted step costs about
``capacity / P`` of a full one; each round adds one full ``A x`` and two ``A^T rho``.
When the optimum needs more non-zero gates than ``capacity``, the selection stops
changing before the certificate is met: the solve then stops with
``RESULTS.working_set_full`` instead of looping (nothing fails silently). The same
happens when ``capacity`` is only a little above the optimum's support: the program
restricted to the set can use every gate in it (its optimum makes up for the gates
left out), and non-zero gates are never swapped out (float32, 50 gates, an optimum with
45: ``capacity`` 45 and 49 certified, 48 stopped full; ad hoc). Hence about twice the
support.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._programs.gated_relu import GatedReLUProgram
from .._prox import safe_norm
from ._results import RESULTS
from .fista import FISTA, fista_solve


class WorkingSet(eqx.Module):
    """A gated-ReLU solver: FISTA on a working set of ``capacity`` gates, certified on
    all of them (``fit(..., model="gated_relu", solver=cn.WorkingSet(capacity=...))``).

    **Fields** (static: changing them recompiles):
    - capacity: gates in the working set (a Python int >= 1; more than ``P`` means all
      ``P``). It must exceed the number of non-zero gates at the optimum; about twice
      that leaves room for the gates that enter on the way. Too small a capacity ends
      the solve with ``RESULTS.working_set_full``.
    - fista: the :class:`FISTA` that solves each restricted program.
    - max_rounds: working-set rounds at most (then ``RESULTS.working_set_full``).
    - inner_factor: each restricted solve stops at this fraction of the full program's
      current relative gap, and at ``inner_factor * tol`` at the latest or once no
      gate outside the set sets the dual scale (in (0, 1)).
    """

    # A NumPy scalar becomes its Python value (so a NumPy int is as good as an int).
    capacity: int = eqx.field(static=True, converter=lambda c: (
        c.item() if isinstance(c, np.generic) else c))
    fista: FISTA = FISTA()
    max_rounds: int = eqx.field(static=True, default=30)
    inner_factor: float = eqx.field(static=True, default=0.3)

    def __check_init__(self):
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int):
            raise TypeError(f"capacity must be an int >= 1, got "
                            f"{type(self.capacity).__name__}")
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {self.capacity}")
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {self.max_rounds}")
        if not 0.0 < self.inner_factor < 1.0:
            raise ValueError(f"inner_factor must lie in (0, 1), got {self.inner_factor}")
        if not isinstance(self.fista, FISTA):
            raise TypeError(f"fista must be a cvxnn_jax.FISTA, got {type(self.fista).__name__}")


class WorkingSetState(NamedTuple):
    """A working-set solve: the full weights and the full program's certificate."""

    x: Array  # (d, P)
    scores: Array  # (P,) ||(A^T rho)_i|| at x: the next selection's order
    selected: Array  # (capacity,) the gates of the next round, ascending
    settled: Array  # no gate outside the last round's sets the dual scale
    inner_tol: Array  # the last restricted solve's tolerance
    step_size: Array  # the next restricted solve's first step size
    num_rounds: Array
    num_steps: Array  # FISTA steps (and polish products) of every restricted solve
    objective: Array
    gap: Array
    best_dual: Array
    result: RESULTS


def _full_certificate(program: GatedReLUProgram, x, extra_rhos, extra_usable):
    """Objective, gap, best dual value and scores ``||(A^T rho)_i||`` of the full program
    at ``x``. The dual directions tried: ``x``'s own ``rho = -grad L(A x)`` (which also
    gives the scores) and ``extra_rhos`` (``(k, n)``, those with ``extra_usable``)."""
    z = program.forward(x)
    objective = program.smooth_value(z) + program.regulariser(x)
    rhos = jnp.concatenate([-program.smooth_grad(z)[None], extra_rhos])
    usable = jnp.concatenate([jnp.ones(1, bool), extra_usable])

    def one(rho):
        At_rho = program.rmatvec(rho)
        gap, dual = program.certificate(x, z, rho, At_rho)
        return gap, dual, safe_norm(At_rho, axis=0)

    gaps, duals, scores = jax.lax.map(one, rhos)
    ok = usable & jnp.isfinite(gaps) & jnp.isfinite(duals)
    gap = jnp.min(jnp.where(ok, gaps, jnp.inf))
    dual = jnp.max(jnp.where(ok, duals, -jnp.inf))
    return objective, gap, dual, scores[0]


def working_set_solve(program: GatedReLUProgram, x0, tol, max_steps,
                      solver: WorkingSet) -> WorkingSetState:
    """Solve ``program`` from ``x0`` (``(d, P)``) on working sets of ``solver.capacity``
    gates until its relative gap is ``<= tol`` (see the module's docstring).

    Pure and jit/vmap-compatible; ``tol`` and ``max_steps`` (restricted FISTA steps,
    summed over rounds) may be traced. ``solution_figures`` reads the returned state.
    """
    dtype = x0.dtype
    tol = jnp.asarray(tol, dtype)
    max_steps = jnp.asarray(max_steps, jnp.int32)
    num_gates = x0.shape[1]
    capacity = min(solver.capacity, num_gates)
    fista = solver.fista
    no_rhos = (jnp.zeros((0,) + program.y.shape, dtype), jnp.zeros((0,), bool))
    objective, gap, dual, scores = _full_certificate(program, x0, *no_rhos)

    def converged(state):
        return state.gap <= tol * jnp.abs(state.objective)

    def keep_going(state):
        return (~converged(state) & (state.num_steps < max_steps)
                & (state.result == RESULTS.successful))

    def select(x, scores):
        priority = jnp.where(safe_norm(x, axis=0) > 0, jnp.inf, scores)
        return jnp.sort(jax.lax.top_k(priority, capacity)[1]).astype(jnp.int32)

    def restrict(selected):
        return GatedReLUProgram.build(program.X, program.masks[:, selected], program.y,
                                      program.lam, program.loss)

    def one_round(state: WorkingSetState) -> WorkingSetState:
        selected = state.selected
        restricted = restrict(selected)
        relative_gap = state.gap / jnp.maximum(jnp.abs(state.objective), jnp.finfo(dtype).tiny)
        # Never looser than the last round's: where the gap stays put (a gate outside
        # binds) the rounds still tighten, so a full working set is told from a loose
        # early iterate with too many non-zero gates. Once no gate outside binds, straight
        # to the final tolerance: each round costs a full certificate and a restricted
        # start (3-9 rounds a solve with the geometric schedule alone, 2-4 with this).
        inner_tol = solver.inner_factor * jnp.where(
            state.settled, tol,
            jnp.maximum(tol, jnp.minimum(jnp.minimum(relative_gap, 1.0), state.inner_tol)))
        inner = fista_solve(restricted, state.x[:, selected], inner_tol,
                            max_steps - state.num_steps, fista, step_size=state.step_size)
        x = jnp.zeros_like(state.x).at[:, selected].set(inner.x)
        # The restricted solve's dual directions serve the full program once scaled to
        # feasibility on every gate: x's own residual and, as in FISTA's certificate,
        # the extrapolation of the restricted solve's last ones.
        extra = no_rhos
        if fista.extrapolation >= 2:
            rho_e, _, usable = fista.extrapolated_dual(inner.rho_history, inner.At_rho_history,
                                                       inner.num_checks)
            extra = (rho_e[None], usable[None])
        objective, gap, dual, scores = _full_certificate(program, x, *extra)
        best_dual = jnp.maximum(state.best_dual, dual)
        gap = jnp.minimum(gap, jnp.maximum(objective - best_dual, 0.0))
        following = select(x, scores)
        # Full: the same gates, solved to the last tolerance, would be solved again, and
        # a gate outside them sets the dual scale (tightening cannot close the gap).
        inside = jnp.zeros(num_gates, bool).at[selected].set(True)
        outside_binds = (jnp.max(jnp.where(inside, -jnp.inf, scores))
                         > jnp.max(jnp.where(inside, scores, -jnp.inf)))
        # Settled: no gate outside sets the dual scale, so what is left is the
        # restricted solve's own accuracy.
        settled = ~outside_binds
        full = (jnp.all(following == selected) & outside_binds
                & (inner.result == RESULTS.successful) & (inner_tol <= solver.inner_factor * tol))
        num_rounds = state.num_rounds + 1
        certified = gap <= tol * jnp.abs(objective)
        finite = jnp.isfinite(objective) & jnp.all(jnp.isfinite(x))
        result = RESULTS.where(
            ~finite | (inner.result == RESULTS.nonfinite), RESULTS.nonfinite,
            RESULTS.where((full | (num_rounds >= solver.max_rounds)) & ~certified,
                          RESULTS.working_set_full, state.result))
        return WorkingSetState(x=x, scores=scores, selected=following, settled=settled,
                               inner_tol=inner_tol, step_size=inner.step_size,
                               num_rounds=num_rounds, num_steps=state.num_steps + inner.num_steps,
                               objective=objective, gap=gap, best_dual=best_dual, result=result)

    # The first round's step size comes from the power method, once, before the loop
    # (inside it, under vmap, a cond on the round would run it every round); later rounds
    # start from the last accepted one (the line search corrects it for the new gates).
    selected = select(x0, scores)
    step_size = fista.initial_step_size(restrict(selected), x0[:, selected])
    state = WorkingSetState(
        x=x0, scores=scores, selected=selected, settled=jnp.asarray(False),
        inner_tol=jnp.full((), jnp.inf, dtype), step_size=step_size,
        num_rounds=jnp.zeros((), jnp.int32),
        num_steps=jnp.zeros((), jnp.int32), objective=objective, gap=gap,
        best_dual=dual, result=RESULTS.successful)
    state = jax.lax.while_loop(keep_going, one_round, state)
    out_of_steps = (state.result == RESULTS.successful) & ~converged(state)
    return state._replace(
        result=RESULTS.where(out_of_steps, RESULTS.max_steps_reached, state.result))
