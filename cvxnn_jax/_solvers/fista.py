"""FISTA with backtracking (and forward-tracking) line search and adaptive restart.

The iteration, for ``min_x f(x) + h(x)`` with ``f(x) = L(A x)``:

    t' = (1 + sqrt(1 + 4 t^2)) / 2,   beta = (t - 1) / t'
    y  = x + beta (x - x_prev)                     (A y by linearity, no matvec)
    g  = A^T grad L(A y)
    s  = growth * s_prev; repeat  x+ = prox_{s h}(y - s g), d = x+ - y
         until  Bregman_L(A y + A d, A y) <= ||d||^2 / (2 s)   else  s *= shrink
    restart (t' = 1) when <y - x+, x+ - x> > 0     (gradient restart)

The sufficient-decrease test compares the loss's Bregman divergence, computed per
sample from ``A d`` (see ``Loss.bregman``), with ``||d||^2 / (2 s)``. It never subtracts
two loss values, so it cannot stall at round-off in float32 (DESIGN.md section 2).

The state holds the velocity ``v = x - x_prev`` and its image ``A v`` rather than
``x_prev`` (no copies of swapped buffers in the loop; the image updates as
``beta A v + A d`` without cancellation). Every ``check_every`` steps ``A x`` and ``A v``
are recomputed (so the running linear combinations cannot drift; programs in residual
coordinates track ``A x - y`` instead, refreshed by their accurate ``forward``, which is
what lets float32 certify close fits) and the duality gap is evaluated from two dual
points: the scaled gradient ``rho = -grad L(A x)`` and its Anderson extrapolation over
the last checks (dual extrapolation, Massias, Gramfort & Salmon 2018 / ``celer``), which
is far tighter once the support settles. The best dual value seen is kept: any feasible
dual point bounds the optimum from below. The loop stops when
``gap <= tol * objective``.

Newton polish (programs with ``can_polish``: the column-group lassos, and ReLU on the
faces of its cones; only for
``tol <= polish_tol``): once the relative gap falls below ``polish_gap`` (then
``polish_gap * polish_factor``, ... for at most ``polish_rounds`` rounds) and the zero
pattern has held for ``polish_stable`` steps, the iterate is handed to Newton's method
on its support (``_solvers/newton.py``) and FISTA resumes from the polished point with
its momentum reset. FISTA identifies the support early but converges, and certifies, slowly after
that; Newton converges quadratically on a fixed support, and a primal point accurate to
round-off makes the rescaled residual an accurate dual point. ``num_steps`` counts FISTA
steps plus the polish's ``A``/``A^T`` product pairs, so ``max_steps`` bounds both.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .._precision import add_to_two_words, full_precision
from ._results import RESULTS
from .newton import cg_cap


class FISTAState(NamedTuple):
    x: Array
    velocity: Array  # x - x_prev (two-word iterates: the move of x + x_lo)
    z: Array  # program.forward(x): A x (A x - y in residual coordinates)
    z_velocity: Array  # A velocity (not updated where forward_each_step applies)
    x_lo: Array  # the iterate's second word (program.compensated; zeros otherwise)
    momentum: Array  # Nesterov's t
    step_size: Array
    min_step_size: Array
    max_step_size: Array
    num_steps: Array
    prox_state: object  # the program's warm-start data for its prox (``()`` for most)
    rho_history: Array  # (K + 1, n) dual directions at the last checks, newest last
    At_rho_history: Array  # (K + 1, *x.shape) their images A^T rho
    num_checks: Array
    zero_pattern: Array  # x == 0 at the last check
    support_since: Array  # num_steps at the check where zero_pattern last changed
    objective: Array
    gap: Array
    best_dual: Array
    result: RESULTS


class FISTA(eqx.Module):
    """Hyper-parameters of FISTA (static: changing them recompiles).

    **Fields:**
    - step_growth: factor applied to the last accepted step before each line search.
    - step_shrink: backtracking factor (in (0, 1)).
    - check_every: steps between two certificate evaluations. A check recomputes
      ``A x`` and ``A v`` and forms ``A^T rho``: five product-sized kernels in float32
      residual coordinates (profiled at n=1000, d=50, P=1000), so at 10 a check added
      about half a product to every step. Measured on gated ReLU (``python
      benchmarks/fista_check_every.py``: 2 CPU cores, medians of 5 interleaved runs),
      20 against 10: n=2000, d=20, P=200 to 1e-6 in 0.50 s against 0.63 s; n=3000,
      d=25, P=250 1.97 s against 2.05 s; n=1000, d=50, P=1000 to 1e-4 4.82 s against
      5.34 s (float32) and 8.32 s against 8.89 s (float64). 30 and 50 were erratic (ad
      hoc: the dual extrapolation's spacing and the polish's timing move with the
      interval). Projected ReLU at n=500: no change (35.0 s against 34.8 s, ad hoc).
    - extrapolation: number of past dual directions used by dual extrapolation
      (0 turns it off).
    - power_iterations: power-method steps for the initial step size ``1/L``.
    - polish_rounds: Newton polish rounds (0 turns it off; programs without
      ``can_polish`` never polish).
    - polish_gap: relative gap that triggers the first round (or ``tol`` if larger).
    - polish_stable: a round also waits until the zero pattern of ``x`` has not changed
      for this many steps (Newton keeps the support it is given).
    - polish_tol: only solves asked for ``tol <= polish_tol`` polish. At looser
      tolerances FISTA certifies soon after the support settles and a Newton step (a
      hundred CG products) costs more than it saves (measured: n=5000, d=50, P=500,
      float32, tol 1e-4: 574 steps with the polish, 340 without).
    - polish_factor: each further round waits for a gap this much smaller.
    - polish_newton, polish_cg: Newton steps per round and CG iterations per Newton step
      at most (CG stops earlier at its forcing tolerance). With all columns non-zero
      (``d P`` unknowns against ``n`` rows) the Newton systems are ill-conditioned and a
      100-iteration cap cut the directions short: 400 took float64 gated-ReLU solves to
      1e-6 in 2 742 steps instead of 3 159 (n=3000, d=25, P=250), 1 360 instead of 1 532
      (n=2000, d=20, P=200) and 8 289 instead of 8 516 (n=1000, d=50, P=1000).
    """

    step_growth: float = eqx.field(static=True, default=1.1)
    step_shrink: float = eqx.field(static=True, default=0.5)
    check_every: int = eqx.field(static=True, default=20)
    extrapolation: int = eqx.field(static=True, default=5)
    power_iterations: int = eqx.field(static=True, default=20)
    polish_rounds: int = eqx.field(static=True, default=3)
    polish_gap: float = eqx.field(static=True, default=3e-3)
    polish_stable: int = eqx.field(static=True, default=50)
    polish_tol: float = eqx.field(static=True, default=1e-5)
    polish_factor: float = eqx.field(static=True, default=0.1)
    polish_newton: int = eqx.field(static=True, default=8)
    polish_cg: int = eqx.field(static=True, default=400)

    def __check_init__(self):
        if not self.step_growth >= 1.0:
            raise ValueError(f"step_growth must be >= 1, got {self.step_growth}")
        if not 0.0 < self.step_shrink < 1.0:
            raise ValueError(f"step_shrink must lie in (0, 1), got {self.step_shrink}")
        if self.check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {self.check_every}")
        if self.extrapolation < 0 or self.extrapolation == 1:
            raise ValueError(f"extrapolation must be 0 or >= 2, got {self.extrapolation}")
        if self.polish_rounds < 0:
            raise ValueError(f"polish_rounds must be >= 0, got {self.polish_rounds}")
        if not self.polish_gap > 0.0:
            raise ValueError(f"polish_gap must be > 0, got {self.polish_gap}")
        if not 0.0 < self.polish_factor <= 1.0:
            raise ValueError(f"polish_factor must lie in (0, 1], got {self.polish_factor}")
        if not self.polish_tol >= 0.0:
            raise ValueError(f"polish_tol must be >= 0, got {self.polish_tol}")
        if self.polish_stable < 0:
            raise ValueError(f"polish_stable must be >= 0, got {self.polish_stable}")
        if self.polish_newton < 1 or self.polish_cg < 1:
            raise ValueError("polish_newton and polish_cg must be >= 1, got "
                             f"{self.polish_newton} and {self.polish_cg}")

    # ------------------------------------------------------------------ init
    def initial_step_size(self, program, x0) -> Array:
        """``1 / (smoothness(L) * ||A||_2^2)`` with ``||A||_2`` from the power method."""
        v = jax.random.normal(jax.random.PRNGKey(0), x0.shape, x0.dtype)

        def power_step(_, v):
            w = program.rmatvec(program.matvec(v))
            return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(v.dtype).tiny)

        v = v / jnp.linalg.norm(v)
        v = jax.lax.fori_loop(0, self.power_iterations, power_step, v)
        sigma2 = jnp.linalg.norm(program.rmatvec(program.matvec(v)))
        lipschitz = program.smoothness() * sigma2
        return 1.0 / jnp.maximum(lipschitz, jnp.finfo(x0.dtype).tiny)

    def init(self, program, x0, step_size=None) -> FISTAState:
        """The state at ``x0``; the first step size is ``step_size`` if given (the line
        search corrects it), else ``1 / L`` from the power method."""
        dtype = x0.dtype
        z0 = program.forward(x0)
        step = (self.initial_step_size(program, x0) if step_size is None
                else jnp.asarray(step_size, dtype))
        history = max(self.extrapolation, 1) + 1
        return FISTAState(
            x=x0,
            velocity=jnp.zeros_like(x0),
            z=z0,
            z_velocity=jnp.zeros_like(z0),
            x_lo=jnp.zeros_like(x0),
            momentum=jnp.ones((), dtype),
            step_size=step,
            min_step_size=step * 2.0**-40,
            max_step_size=step * 2.0**20,
            num_steps=jnp.zeros((), jnp.int32),
            prox_state=program.init_prox_state(x0),
            rho_history=jnp.zeros((history,) + z0.shape, dtype),
            At_rho_history=jnp.zeros((history,) + x0.shape, dtype),
            num_checks=jnp.zeros((), jnp.int32),
            zero_pattern=x0 == 0,
            support_since=jnp.zeros((), jnp.int32),
            objective=program.smooth_value(z0) + program.regulariser(x0),
            gap=jnp.full((), jnp.inf, dtype),
            best_dual=jnp.full((), -jnp.inf, dtype),
            result=RESULTS.successful,
        )

    # ------------------------------------------------------------------ step
    def step(self, program, state: FISTAState) -> FISTAState:
        """One FISTA iteration (no certificate)."""
        x, z = state.x, state.z
        momentum_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * state.momentum**2))
        beta = (state.momentum - 1.0) / momentum_next
        slack = 1.0 + 8.0 * jnp.finfo(x.dtype).eps
        if program.compensated:
            # Two-word iterate: y = x + extrapolation is never formed; every quantity
            # below is a small difference computed as such (x_new - y = d,
            # x_new - x = d + extrapolation).
            extrapolation = beta * state.velocity
        else:
            y = x + beta * state.velocity
        extrapolates = _extrapolates_z(program)
        zy = z + beta * state.z_velocity if extrapolates else program.forward(y)
        grad = program.rmatvec(program.smooth_grad(zy))

        def trial(step_size):
            if program.compensated:
                # The trial point is x + increment; it is added to the two words only
                # once, after the line search accepts it.
                new, prox_state = program.prox_increment(
                    x, state.x_lo, extrapolation - step_size * grad, step_size), state.prox_state
                d = new[0] - extrapolation
            else:
                new, prox_state = program.prox_with_state(
                    y - step_size * grad, step_size, state.prox_state)
                d = new - y
            dz = program.matvec(d)
            curvature = program.smooth_bregman(zy + dz, zy)
            accepted = (curvature <= slack * jnp.sum(d * d) / (2.0 * step_size)) | (
                step_size <= state.min_step_size
            )
            return step_size, new, d, dz, prox_state, accepted

        first = jnp.minimum(self.step_growth * state.step_size, state.max_step_size)

        def backtrack(carry):
            # The first trial is the loop's first iteration, so the prox (which may be
            # an iterative projection) is traced once, not twice.
            step_size, *_, tried = carry
            step_size = jnp.where(tried, jnp.maximum(self.step_shrink * step_size,
                                                     state.min_step_size), first)
            return *trial(step_size), jnp.ones((), bool)

        # The carry before any trial; the loop runs at least once, so `new` is replaced.
        untried = (jnp.zeros_like(x), jnp.zeros(x.shape, bool)) if program.compensated else y
        not_tried = (first, untried, jnp.zeros_like(x), jnp.zeros_like(zy), state.prox_state,
                     jnp.zeros((), bool), jnp.zeros((), bool))
        step_size, new, d, dz, prox_state, _, _ = jax.lax.while_loop(
            lambda carry: ~carry[-2], backtrack, not_tried
        )
        # A zero step (x+ = y) says nothing about the curvature: keep the old step size.
        moved = jnp.any(d != 0)
        step_size = jnp.where(moved, step_size, state.step_size)
        if program.compensated:
            velocity = d + extrapolation
            increment, zero = new
            x_new, x_new_lo = add_to_two_words(x, state.x_lo, increment)
            x_new = jnp.where(zero, 0.0, x_new)
            x_new_lo = jnp.where(zero, 0.0, x_new_lo)
        else:
            x_new = new
            velocity = x_new - x
            x_new_lo = state.x_lo
        restart = jnp.vdot(-d, velocity) > 0  # <y - x+, x+ - x> > 0
        return state._replace(
            x=x_new,
            x_lo=x_new_lo,
            velocity=velocity,
            z=zy + dz,
            z_velocity=beta * state.z_velocity + dz if extrapolates else state.z_velocity,
            momentum=jnp.where(restart, jnp.ones_like(momentum_next), momentum_next),
            step_size=step_size,
            num_steps=state.num_steps + 1,
            prox_state=prox_state,
        )

    # ------------------------------------------------------------ certificate
    def extrapolated_dual(self, rho_history, At_rho_history, num_checks):
        """Anderson extrapolation of the dual directions at the last checks (celer's dual
        extrapolation): ``(rho, A^T rho, usable)``, usable once the history is full
        (``num_checks`` checks) and the coefficients finite."""
        U = jnp.diff(rho_history, axis=0).reshape(rho_history.shape[0] - 1, -1)  # (K, n)
        gram = U @ U.T
        K = gram.shape[0]
        ridge = jnp.finfo(gram.dtype).eps * jnp.trace(gram)
        c = jnp.linalg.solve(gram + ridge * jnp.eye(K, dtype=gram.dtype), jnp.ones(K, gram.dtype))
        c = c / jnp.sum(c)
        rho = jnp.tensordot(c, rho_history[1:], axes=1)
        At_rho = jnp.tensordot(c, At_rho_history[1:], axes=1)
        usable = jnp.all(jnp.isfinite(c)) & (num_checks >= rho_history.shape[0])
        return rho, At_rho, usable

    def certify(self, program, state: FISTAState) -> FISTAState:
        """Refresh ``A x`` and ``A (x - x_prev)``, and evaluate the duality gap at ``x``."""
        x = state.x
        z = program.forward(x)
        # Both are refreshed: an error left in A (x - x_prev) would persist through the
        # momentum recursion (beta -> 1) and grow from block to block. The certificate is
        # for x (the first word, what the solve returns); the iteration tracks x + x_lo.
        z_iterate = z + program.matvec(state.x_lo) if program.compensated else z
        z_velocity = (program.matvec(state.velocity) if _extrapolates_z(program)
                      else state.z_velocity)
        rho = -program.smooth_grad(z)
        At_rho = program.rmatvec(rho)
        objective = program.smooth_value(z) + program.regulariser(x)
        gap, dual = program.certificate_with_state(x, z, rho, At_rho, state.prox_state)
        best_dual = jnp.maximum(state.best_dual, jnp.where(jnp.isfinite(dual), dual, -jnp.inf))
        rho_history = jnp.concatenate([state.rho_history[1:], rho[None]])
        At_rho_history = jnp.concatenate([state.At_rho_history[1:], At_rho[None]])
        num_checks = state.num_checks + 1
        if self.extrapolation >= 2:
            rho_e, At_rho_e, usable = self.extrapolated_dual(rho_history, At_rho_history,
                                                             num_checks)
            gap_e, dual_e = program.certificate_with_state(x, z, rho_e, At_rho_e,
                                                           state.prox_state)
            usable = usable & jnp.isfinite(gap_e)
            gap = jnp.where(usable, jnp.minimum(gap, gap_e), gap)
            best_dual = jnp.where(usable & jnp.isfinite(dual_e),
                                  jnp.maximum(best_dual, dual_e), best_dual)
        gap = jnp.minimum(gap, jnp.maximum(objective - best_dual, 0.0))
        zero_pattern = x == 0
        support_since = jnp.where(jnp.any(zero_pattern != state.zero_pattern), state.num_steps,
                                  state.support_since)
        finite = jnp.isfinite(objective) & jnp.all(jnp.isfinite(x))
        result = RESULTS.where(finite, state.result, RESULTS.nonfinite)
        return state._replace(
            z=z_iterate,
            z_velocity=z_velocity,
            rho_history=rho_history,
            At_rho_history=At_rho_history,
            num_checks=num_checks,
            zero_pattern=zero_pattern,
            support_since=support_since,
            objective=objective,
            gap=gap,
            best_dual=best_dual,
            result=result,
        )

    def polish(self, program, state: FISTAState, tol: Array, max_cg=None) -> FISTAState:
        """Newton on the support of ``x``, then a fresh certificate; momentum restarts.

        ``max_cg`` (default ``polish_cg``; may be traced) caps CG per Newton step."""
        max_cg = self.polish_cg if max_cg is None else max_cg
        x, products = program.polish(state.x, self.polish_newton, max_cg, tol)
        state = state._replace(x=x, velocity=jnp.zeros_like(x), x_lo=jnp.zeros_like(x),
                               momentum=jnp.ones_like(state.momentum),
                               num_steps=state.num_steps + products)
        return self.certify(program, state)

    def terminate(self, state: FISTAState, tol: Array) -> Array:
        return state.gap <= tol * jnp.abs(state.objective)

    # ------------------------------------------------ the loop, one piece at a time
    # ``fista_solve`` and ``fista_queue`` run the same pieces: a solve is a
    # ``FISTALane`` that is started, then advanced (the polish rounds that are due, then
    # one block of ``check_every`` steps and a certificate) until it stops.
    def keep_going(self, state: FISTAState, tol: Array, max_steps: Array) -> Array:
        return (~self.terminate(state, tol) & (state.num_steps < max_steps)
                & (state.result == RESULTS.successful))

    def start(self, program, x0, tol: Array, step_size=None) -> "FISTALane":
        """A solve from ``x0``, certified once (it may stop at once)."""
        state = self.certify(program, self.init(program, x0, step_size))
        return FISTALane(state, jnp.maximum(tol, jnp.asarray(self.polish_gap, tol.dtype)),
                         jnp.zeros((), jnp.int32))

    def block(self, program, state: FISTAState, max_steps: Array) -> FISTAState:
        """``check_every`` steps (fewer near ``max_steps``), then a certificate."""
        stop_at = jnp.minimum(state.num_steps + self.check_every, max_steps)
        state = jax.lax.while_loop(lambda s: s.num_steps < stop_at,
                                   lambda s: self.step(program, s), state)
        return self.certify(program, state)

    def polish_due(self, program, lane: "FISTALane", tol: Array, max_steps: Array) -> Array:
        """Whether a polish round runs now: the solve goes on, ``tol <= polish_tol``,
        rounds are left, the gap is below the round's target and the zero pattern has
        held for ``polish_stable`` steps."""
        if not (self.polish_rounds > 0 and program.can_polish):
            return jnp.zeros((), bool)
        state = lane.state
        return (self.keep_going(state, tol, max_steps) & (tol <= self.polish_tol)
                & (lane.polish_rounds < self.polish_rounds)
                & (state.gap <= lane.polish_target * jnp.abs(state.objective))
                & (state.num_steps - state.support_since >= self.polish_stable))

    def polish_round(self, program, lane: "FISTALane", tol: Array,
                     max_steps: Array) -> "FISTALane":
        """A polish (skipped when too few steps are left for one CG iteration), and the
        next round's target."""
        # Near max_steps CG is capped lower rather than the polish skipped.
        max_cg = cg_cap(self.polish_cg, self.polish_newton, max_steps - lane.state.num_steps)
        state = jax.lax.cond(max_cg >= 1, lambda s: self.polish(program, s, tol, max_cg),
                             lambda s: s, lane.state)
        return FISTALane(state, lane.polish_target * self.polish_factor, lane.polish_rounds + 1)

    def advance(self, program, lane: "FISTALane", tol: Array, max_steps: Array) -> "FISTALane":
        """Blocks until the solve stops or a polish round is due, then the rounds that
        are due. (Two loops rather than a ``cond`` on each block: under ``vmap`` a
        ``cond`` becomes a ``select`` over the whole state, which made a 32-lane path 47%
        slower, measured at n=5000, d=50, P=500.)"""
        lane = jax.lax.while_loop(
            lambda c: self.keep_going(c.state, tol, max_steps)
            & ~self.polish_due(program, c, tol, max_steps),
            lambda c: c._replace(state=self.block(program, c.state, max_steps)), lane)
        return jax.lax.while_loop(lambda c: self.polish_due(program, c, tol, max_steps),
                                  lambda c: self.polish_round(program, c, tol, max_steps), lane)

    def finish(self, state: FISTAState, tol: Array) -> FISTAState:
        """The final state, its ``result`` saying ``max_steps_reached`` if it stopped
        uncertified."""
        out_of_steps = (state.result == RESULTS.successful) & ~self.terminate(state, tol)
        return state._replace(
            result=RESULTS.where(out_of_steps, RESULTS.max_steps_reached, state.result))


class FISTAOutcome(NamedTuple):
    """What a solve returns from :func:`fista_queue` (a :class:`FISTAState`'s fields)."""

    x: Array
    objective: Array
    gap: Array
    best_dual: Array
    num_steps: Array
    result: RESULTS

    @classmethod
    def of(cls, state: FISTAState) -> "FISTAOutcome":
        return cls(state.x, state.objective, state.gap, state.best_dual, state.num_steps,
                   state.result)


def solution_figures(state) -> dict:
    """The certificate fields of a solution (``objective``, ``gap``, ``dual_objective``,
    ``num_steps``, ``result``) from FISTA's final :class:`FISTAState` or
    :class:`FISTAOutcome`."""
    return dict(objective=state.objective, gap=state.gap, dual_objective=state.best_dual,
                num_steps=state.num_steps, result=state.result)


class FISTALane(NamedTuple):
    """A solve in progress: FISTA's state and its Newton polish schedule."""

    state: FISTAState
    polish_target: Array  # the relative gap that triggers the next polish round
    polish_rounds: Array  # rounds done


def _extrapolates_z(program) -> bool:
    """Whether FISTA forms ``A y`` as ``A x + beta * A (x - x_prev)`` (and so carries
    ``z_velocity``) rather than by ``program.forward(y)``
    (``CompositeProgram.forward_each_step``; two-word iterates always extrapolate)."""
    return program.compensated or not program.forward_each_step


@full_precision
def fista_solve(
    program, x0, tol, max_steps, solver: FISTA = FISTA(), step_size=None
) -> FISTAState:
    """Run FISTA from ``x0`` until the relative gap is ``<= tol`` or ``max_steps``.

    Pure and jit/vmap-compatible: ``tol`` and ``max_steps`` may be traced. The returned
    state carries ``objective``, ``gap`` (evaluated at the returned ``x``), the number
    of steps and the :class:`RESULTS` status. ``step_size`` (optional, may be traced)
    replaces the power method's first step size: a solve of a nearby program passes
    its last one.
    """
    tol = jnp.asarray(tol, x0.dtype)
    max_steps = jnp.asarray(max_steps, jnp.int32)
    lane = jax.lax.while_loop(lambda c: solver.keep_going(c.state, tol, max_steps),
                              lambda c: solver.advance(program, c, tol, max_steps),
                              solver.start(program, x0, tol, step_size))
    return solver.finish(lane.state, tol)


@full_precision
def fista_queue(program_at, lams, x0, tol, max_steps, lanes: int, warm_start: bool,
                solver: FISTA = FISTA()) -> FISTAOutcome:
    """FISTA at every ``lam`` of ``lams`` (``(L,)``), ``lanes`` solves at a time.

    ``program_at(lam)`` builds the program at ``lam``. The solves run as ``lanes`` lanes
    of one vmapped block of steps; when a lane's solve stops (certified, out of steps or
    non-finite), its outcome is stored and the lane takes the next ``lam`` in the order of
    ``lams``, so no lane waits for a slower one (a vmapped ``fista_solve`` runs every lane
    as long as the slowest). A new solve starts from ``x0`` (the shape of one solve's
    weights) or, with ``warm_start``, from the current ``x`` of the solve latest in
    ``lams`` so far, stored or still running (pass ``lams`` sorted largest first: then
    that is the nearest larger ``lam``). Starting, stopping and Newton polish are done
    one lane at a time, outside the vmapped block: under ``vmap`` a branch taken by one
    lane would run for every lane. Each solve follows ``fista_solve``'s steps exactly
    (from the same start, up to the round-off of batched products).

    **Arguments:** ``program_at``: ``lam -> program``, traceable (e.g. ``eqx.tree_at``
    on a program's ``lam``); ``lams``: ``(L,)``; ``x0``: the start of a cold solve (the
    shape of one solve's ``x``); ``tol``, ``max_steps``: as :func:`fista_solve`, per
    solve (may be traced); ``lanes``: a Python int >= 1 (``min(lanes, L)`` are used);
    ``warm_start``: a Python bool.

    **Returns:** the :class:`FISTAOutcome` of every solve (its final ``x``, objective,
    gap, best dual value, steps and status), stacked in the order of ``lams`` (leading
    axis ``L``).
    """
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
        raise ValueError(f"lanes must be a Python int >= 1, got {lanes!r}")
    num_lams = lams.shape[0]
    lanes = min(lanes, num_lams)
    tol = jnp.asarray(tol, x0.dtype)
    max_steps = jnp.asarray(max_steps, jnp.int32)

    def start(index, x):
        return solver.start(program_at(lams[index]), x, tol)

    batch = jax.vmap(lambda index: start(index, x0))(jnp.arange(lanes))
    # Only the outcomes are stored: a whole state holds 2 (extrapolation + 1) more arrays
    # of x's and z's sizes for the dual histories.
    stored = jax.tree.map(lambda a: jnp.zeros((num_lams,) + a.shape[1:], a.dtype),
                          FISTAOutcome.of(batch.state))
    carry = dict(batch=batch, index=jnp.arange(lanes), active=jnp.ones(lanes, bool),
                 next_index=jnp.asarray(lanes), stored=stored,
                 latest_stored=jnp.asarray(-1))

    def needs_service(carry):
        """Per lane: its solve has stopped, or a polish round is due."""
        def one(index, lane):
            return (~solver.keep_going(lane.state, tol, max_steps)
                    | solver.polish_due(program_at(lams[index]), lane, tol, max_steps))
        return carry["active"] & jax.vmap(one)(carry["index"], carry["batch"])

    def serve(carry):
        """A lane that needs it: store and refill, or polish. Of the lanes that stopped
        together, the one latest in ``lams`` is stored first, so every refill among them
        warm-starts from it."""
        k = jnp.argmax(jnp.where(needs_service(carry), carry["index"], -1))
        lane = jax.tree.map(lambda a: a[k], carry["batch"])
        index = carry["index"][k]

        def store_and_refill(carry):
            state = solver.finish(lane.state, tol)
            stored = jax.tree.map(lambda s, a: s.at[index].set(a), carry["stored"],
                                  FISTAOutcome.of(state))
            latest_stored = jnp.maximum(index, carry["latest_stored"])
            refill = carry["next_index"] < num_lams
            new_index = jnp.minimum(carry["next_index"], num_lams - 1)
            # A warm start comes from the solve nearest the new lam: the one latest in
            # lams, stored or still running (a running solve's iterate is not converged
            # but its lam is nearer). Against the latest stored solution it saved 7-17%
            # of the steps (gated ReLU, 4 and 8 lanes: n=5000, d=50, P=500, float32, tol
            # 1e-4; n=2000, d=50, P=500 alike; n=2000, d=20, P=200, float64, tol 1e-6).
            running = jnp.where(carry["active"].at[k].set(False), carry["index"], -1)
            nearest = jnp.argmax(running)
            warm_from = jnp.where(running[nearest] > latest_stored,
                                  carry["batch"].state.x[nearest], stored.x[latest_stored])
            new_lane = jax.lax.cond(refill,
                                    lambda: start(new_index, warm_from if warm_start else x0),
                                    lambda: lane)
            return dict(carry, stored=stored, latest_stored=latest_stored,
                        next_index=carry["next_index"] + refill,
                        index=carry["index"].at[k].set(jnp.where(refill, new_index, index)),
                        active=carry["active"].at[k].set(refill)), new_lane

        def polish(carry):
            return carry, solver.polish_round(program_at(lams[index]), lane, tol, max_steps)

        carry, lane = jax.lax.cond(~solver.keep_going(lane.state, tol, max_steps),
                                   store_and_refill, polish, carry)
        return dict(carry, batch=jax.tree.map(lambda b, a: b.at[k].set(a), carry["batch"], lane))

    def run_block(carry):
        carry = jax.lax.while_loop(lambda c: jnp.any(needs_service(c)), serve, carry)

        def one(index, active, lane):
            # An idle lane (its last solve stored, no lam left for it) takes no steps; its
            # state is not read again. (Not masked by a select over the state: under vmap
            # that costs as much as a cond, see FISTA.advance.)
            return lane._replace(state=solver.block(
                program_at(lams[index]), lane.state,
                jnp.where(active, max_steps, lane.state.num_steps)))

        batch = jax.vmap(one)(carry["index"], carry["active"], carry["batch"])
        return dict(carry, batch=batch)

    carry = jax.lax.while_loop(lambda c: jnp.any(c["active"]), run_block, carry)
    return carry["stored"]

