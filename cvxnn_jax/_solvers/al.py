"""Augmented Lagrangian (dual ascent) for the cone-constrained ReLU program.

For the cones ``S2 * (X W) >= 0`` with multipliers ``gamma >= 0`` (``(n, 2P)``) and
penalty ``delta > 0``, the augmented Lagrangian is

    L(sum(C * X W, 1), y) + lam sum_j ||w_j||
        + (1 / (2 delta)) (||(gamma - delta S2 * X W)_+||^2 - ||gamma||^2).

Each outer iteration minimises it over ``W`` by FISTA (warm-started, momentum reset),
to a relative stationarity that tightens from one outer iteration to the next, then
updates ``gamma <- (gamma - delta S2 * X W)_+`` and multiplies ``delta`` by
``penalty_growth`` when the cone violation did not fall by ``violation_decrease``.
After each outer iteration the certificate of :class:`ReLUProgram` is evaluated with
``rho = -grad L`` at the predictions and the updated multipliers. That dual point lags
the primal (a relative gap of 3.5e-4 where the objective is within 2e-7 of the optimum
and the violation is 2e-9, n = 300, d = 10, 50 patterns): once the iterate is nearly
feasible, Newton's method on the faces of the cones whose rows have positive multipliers
gives a point whose projected certificate closes the gap (``polish_*`` fields,
:mod:`~cvxnn_jax._solvers.faces`). The loop stops when ``gap <= tol * objective`` and
the violation is ``<= feasibility_tol``.

The smooth part is a function of ``Z = X W`` alone, so each FISTA step costs the same
two matmuls as a gated-ReLU step with ``2P`` patterns.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .._precision import full_precision
from .._programs._base import CompositeProgram
from .._programs.relu import ReLUProgram, weighted_row_sums
from ._results import RESULTS, best_lower_bound
from .faces import keep_better_feasible, polish_on_faces
from .newton import cg_cap
from .fista import FISTA, FISTAState, fista_solve


class _ColumnProgram(CompositeProgram):
    """A composite program in ``W`` (``(d, 2P)``) whose operator is ``W -> X W``.

    The AL subproblem and the Lagrangian relaxation of a :class:`ReLUProgram` share
    this operator, the group regulariser and the prediction map ``sum(C * Z, 1)``.
    """

    relu: ReLUProgram
    coefficients: Array  # C, (n, 2P)
    signs: Array  # S2, (n, 2P)
    gamma: Array  # (n, 2P) cone multipliers, >= 0

    # X W (d = 20 inner products per entry) costs less than carrying and updating the
    # (n, 2P) extrapolation: medians, side by side on 2 cores, 0.55 -> 0.50 ms a step at
    # n = 500 and 4.18 -> 2.84 ms at n = 2000 (d = 20, P = 200), same objectives to
    # rounding.
    forward_each_step = True

    def matvec(self, W):
        return self.relu.X @ W

    def rmatvec(self, R):
        return self.relu.transpose_times(R)

    def regulariser(self, W):
        return self.relu.regulariser(W)

    def prox(self, W, step):
        return self.relu.prox(W, step)

    def init_x(self):
        return self.relu.init_x()

    def predictions(self, Z):
        return weighted_row_sums(self.coefficients, Z)


class LagrangianRelaxation(_ColumnProgram):
    """``min_W L(sum(C * X W, 1)) + lam sum_j ||w_j|| - <gamma, S2 * X W>``.

    For any ``gamma >= 0`` its optimum ``g(gamma)`` is a lower bound on the ReLU
    program's optimum (weak duality), and it equals it at the optimal multipliers. It
    is an unconstrained group lasso (no penalty term), so FISTA solves it fast and its
    certificate is tight: a dual point ``rho`` with
    ``||X^T (C_j rho + S2_j gamma_j)|| <= lam`` for every ``j`` bounds it from below.
    """

    @classmethod
    def build(cls, relu: ReLUProgram, gamma: Array) -> "LagrangianRelaxation":
        return cls(relu, relu.coefficients(), relu.signs(), gamma)

    def smooth_value(self, Z):
        linear = jnp.sum(self.gamma * self.signs * Z)
        return self.relu.loss.value(self.predictions(Z), self.relu.y) - linear

    def smooth_grad(self, Z):
        loss_grad = self.relu.loss.grad(self.predictions(Z), self.relu.y)
        return self.coefficients * loss_grad[:, None] - self.signs * self.gamma

    def smooth_bregman(self, Z_new, Z_old):
        # The linear term has no curvature.
        return self.relu.loss.bregman(self.predictions(Z_new), self.predictions(Z_old),
                                      self.relu.y)

    def smoothness(self):
        n = self.relu.y.shape[0]
        return self.relu.loss.smoothness(n) * jnp.max(jnp.sum(self.coefficients**2, axis=1))

    def certificate(self, W, Z, R, At_R):
        # R = C rho + S2 gamma and At_R = X^T R (which sets the scaling) belong to one
        # rho, and the dual value must be taken at that rho: FISTA's dual extrapolation
        # passes an affine combination of past directions, not -grad L at Z. Taking
        # rho from Z with the extrapolated At_R gave a "lower bound" 2e-7 above the
        # optimum (1-D data, exact patterns). rho is read back from R row by row; a row
        # whose coefficients are all zero has a fixed prediction (0), so its rho
        # is -grad L there whatever the iterate.
        C = self.coefficients
        weight = jnp.sum(C * C, axis=1)
        covered = weight > 0
        from_R = jnp.sum(C * (R - self.signs * self.gamma), axis=1) / jnp.where(covered, weight,
                                                                                 1.0)
        rho_Z = -self.relu.loss.grad(self.predictions(Z), self.relu.y)
        rho = jnp.where(covered, from_R, rho_Z)
        _, lower, _ = self.relu.certificate(W, rho, self.gamma, At=At_R)
        relaxed = self.smooth_value(Z) + self.regulariser(W)
        return relaxed - lower, lower


class AugmentedProgram(_ColumnProgram):
    """The augmented Lagrangian of a :class:`ReLUProgram` as a composite program in ``W``.

    Its operator is ``W -> X W`` (``(n, 2P)``); its smooth part is the loss of the
    predictions plus the penalty, both functions of ``Z = X W``.
    """

    delta: Array

    @classmethod
    def build(cls, relu: ReLUProgram, gamma: Array, delta: Array) -> "AugmentedProgram":
        return cls(relu, relu.coefficients(), relu.signs(), gamma, delta)

    def certificate(self, x, z, rho, At_rho):
        raise NotImplementedError("the AL subproblem is certified through LagrangianRelaxation")

    def _shifted(self, Z):
        # u = gamma / delta - S2 * Z: the penalty is (delta / 2) ||u_+||^2 (up to a constant).
        return self.gamma / self.delta - self.signs * Z

    def smooth_value(self, Z):
        predictions = self.predictions(Z)
        u = jnp.maximum(self._shifted(Z), 0.0)
        penalty = 0.5 * self.delta * jnp.sum(u * u) - 0.5 * jnp.sum(self.gamma**2) / self.delta
        return self.relu.loss.value(predictions, self.relu.y) + penalty

    def smooth_grad(self, Z):
        predictions = self.predictions(Z)
        loss_grad = self.relu.loss.grad(predictions, self.relu.y)
        multipliers = self.delta * jnp.maximum(self._shifted(Z), 0.0)
        return self.coefficients * loss_grad[:, None] - self.signs * multipliers

    def smooth_bregman(self, Z_new, Z_old):
        loss_part = self.relu.loss.bregman(
            self.predictions(Z_new),
            self.predictions(Z_old),
            self.relu.y,
        )
        # Bregman divergence of h(u) = 1/2 (u_+)^2 from u to u', in a form with no
        # cancellation: 1/2 (u' - u_+)^2 if u' >= 0, else u_+ (u_+ / 2 - u') (both >= 0).
        u_old = jnp.maximum(self._shifted(Z_old), 0.0)
        u_new = self._shifted(Z_new)
        per_entry = jnp.where(
            u_new >= 0, 0.5 * (u_new - u_old) ** 2, u_old * (0.5 * u_old - u_new)
        )
        return loss_part + self.delta * jnp.sum(per_entry)

    def smoothness(self):
        n = self.relu.y.shape[0]
        coefficient_norm = jnp.max(jnp.sum(self.coefficients**2, axis=1))
        return self.relu.loss.smoothness(n) * coefficient_norm + self.delta

    def multipliers(self, Z):
        """The updated multipliers ``(gamma - delta S2 * Z)_+``."""
        return self.delta * jnp.maximum(self._shifted(Z), 0.0)


class ALState(NamedTuple):
    W: Array  # (d, 2P) the solution
    inner: FISTAState
    gamma: Array
    delta: Array
    inner_tol: Array
    num_outer: Array
    num_relaxation_steps: Array  # of inner.num_steps, those spent on relaxation bounds
    objective: Array  # the recovered network's objective (upper bound)
    gap: Array
    best_dual: Array
    violation: Array  # ReLUProgram.violation of W
    iterate_violation: Array  # that of inner.x (W is the face polish's point when better)
    result: RESULTS


class AugmentedLagrangian(eqx.Module):
    """Hyper-parameters of the augmented-Lagrangian solver (static: changing them recompiles).

    **Fields:**
    - inner: the :class:`FISTA` used for the subproblems (dual extrapolation off).
    - initial_penalty: ``delta`` at the start, in units of the loss's smoothness
      (``1/n`` for squared loss).
    - penalty_growth: factor applied to ``delta`` when the violation falls too slowly.
    - violation_decrease: the fall in violation (ratio) expected per outer iteration.
    - initial_inner_tol: relative stationarity of the first subproblem (gradient
      mapping norm divided by ``lam``).
    - inner_tol_decrease: factor applied to the inner tolerance per outer iteration.
    - max_inner_steps: FISTA steps per subproblem at most.
    - relaxation_steps: FISTA steps at most for a Lagrangian-relaxation lower bound
      (0 turns it off); run after an outer iteration whose iterate meets
      ``feasibility_tol`` and whose multiplier certificate is within 100x ``tol`` but
      does not meet it. Its steps count against ``max_steps`` (capped at the steps
      left), like the face polish's products.
    - relaxation_solver: the :class:`FISTA` for those bounds (dual extrapolation on).
    - polish_newton: Newton steps at most of the face polish (0 turns it off), run after
      an outer iteration whose iterate's violation is within ``polish_violation`` times
      ``feasibility_tol`` and which is not certified: Newton on the faces of the cones
      whose rows have positive multipliers, kept when its projected certificate is
      better (:func:`~cvxnn_jax._solvers.faces.polish_on_faces`). Its products count as
      steps.
    - polish_cg: conjugate-gradient iterations at most per Newton step (capped lower
      near ``max_steps``).
    - polish_violation: see ``polish_newton``.
    """

    # check_every=10: AL's figures were measured with it (FISTA's default is now 20).
    inner: FISTA = FISTA(extrapolation=0, check_every=10)
    initial_penalty: float = eqx.field(static=True, default=10.0)
    penalty_growth: float = eqx.field(static=True, default=3.0)
    violation_decrease: float = eqx.field(static=True, default=0.25)
    initial_inner_tol: float = eqx.field(static=True, default=1e-2)
    inner_tol_decrease: float = eqx.field(static=True, default=0.1)
    max_inner_steps: int = eqx.field(static=True, default=5000)
    relaxation_steps: int = eqx.field(static=True, default=10000)
    relaxation_solver: FISTA = FISTA(check_every=10)
    polish_newton: int = eqx.field(static=True, default=8)
    polish_cg: int = eqx.field(static=True, default=400)
    polish_violation: float = eqx.field(static=True, default=10.0)

    def __check_init__(self):
        if not self.initial_penalty > 0:
            raise ValueError(f"initial_penalty must be > 0, got {self.initial_penalty}")
        if not self.penalty_growth >= 1:
            raise ValueError(f"penalty_growth must be >= 1, got {self.penalty_growth}")
        if not 0 < self.violation_decrease <= 1:
            raise ValueError(f"violation_decrease must lie in (0, 1], got {self.violation_decrease}")
        if not 0 < self.inner_tol_decrease <= 1:
            raise ValueError(f"inner_tol_decrease must lie in (0, 1], got {self.inner_tol_decrease}")
        if self.max_inner_steps < 1:
            raise ValueError(f"max_inner_steps must be >= 1, got {self.max_inner_steps}")
        if self.polish_newton < 0 or self.polish_cg < 1:
            raise ValueError(f"polish_newton must be >= 0 and polish_cg >= 1, got "
                             f"{self.polish_newton} and {self.polish_cg}")
        if not self.polish_violation >= 1:
            raise ValueError(f"polish_violation must be >= 1, got {self.polish_violation}")


def _stationarity(augmented: AugmentedProgram, inner: FISTAState) -> Array:
    """Gradient-mapping norm at ``x`` divided by ``lam`` (0 at a subproblem optimum)."""
    t = inner.step_size
    grad = augmented.rmatvec(augmented.smooth_grad(inner.z))
    mapped = inner.x - augmented.prox(inner.x - t * grad, t)
    scale = jnp.maximum(augmented.relu.lam, jnp.finfo(t.dtype).tiny)
    return jnp.linalg.norm(mapped) / (t * scale)


@full_precision
def al_solve(
    program: ReLUProgram, W0, tol, feasibility_tol, max_steps, solver: AugmentedLagrangian = AugmentedLagrangian()
) -> ALState:
    """Solve the ReLU program by augmented-Lagrangian dual ascent from ``W0`` (``(d, 2P)``).

    Stops when ``gap <= tol * objective`` and ``violation <= feasibility_tol``, or after
    ``max_steps`` FISTA steps in total. Pure and jit/vmap-compatible.
    """
    dtype = W0.dtype
    tol = jnp.asarray(tol, dtype)
    feasibility_tol = jnp.asarray(feasibility_tol, dtype)
    max_steps = jnp.asarray(max_steps, jnp.int32)
    fista = solver.inner
    n = program.y.shape[0]
    gamma0 = jnp.zeros((n, W0.shape[1]), dtype)
    # The penalty acts on each column separately, so it is measured against the loss's
    # curvature per sample (1/n for squared loss), not against its curvature in Z.
    delta0 = jnp.asarray(solver.initial_penalty * program.loss.smoothness(n), dtype)
    augmented0 = AugmentedProgram.build(program, gamma0, delta0)

    def converged(state: ALState):
        return (state.gap <= tol * jnp.abs(state.objective)) & (state.violation <= feasibility_tol)

    def subproblem(augmented: AugmentedProgram, inner: FISTAState, inner_tol):
        stop_at = jnp.minimum(inner.num_steps + solver.max_inner_steps, max_steps)

        def keep_going(carry):
            inner, residual = carry
            return (residual > inner_tol) & (inner.num_steps < stop_at)

        def block(carry):
            inner, _ = carry
            block_end = jnp.minimum(inner.num_steps + fista.check_every, stop_at)
            inner = jax.lax.while_loop(
                lambda s: s.num_steps < block_end, lambda s: fista.step(augmented, s), inner
            )
            # Recompute X W so that the running sum cannot drift (the step forms X Y from
            # Y itself, forward_each_step, so X (W - W_prev) is not carried).
            inner = inner._replace(z=augmented.matvec(inner.x))
            return inner, _stationarity(augmented, inner)

        inner, _ = jax.lax.while_loop(
            keep_going, block, (inner, _stationarity(augmented, inner))
        )
        return inner

    def outer(state: ALState) -> ALState:
        augmented = AugmentedProgram.build(program, state.gamma, state.delta)
        inner = state.inner._replace(
            velocity=jnp.zeros_like(state.inner.x), z_velocity=jnp.zeros_like(state.inner.z),
            momentum=jnp.ones((), dtype)
        )
        inner = subproblem(augmented, inner, state.inner_tol)
        W, Z = inner.x, inner.z
        # The subproblem's own multipliers: with an exact subproblem solution they make
        # every group norm <= lam, so the dual point needs no scaling.
        gamma = augmented.multipliers(Z)
        rho = -program.loss.grad(augmented.predictions(Z), program.y)
        gap, lower, upper = program.certificate(W, rho, gamma)
        best_dual = best_lower_bound(state.best_dual, lower)
        violation = program.violation(W)
        gap = upper - best_dual
        # Newton on the faces that the multipliers name: once the iterate is nearly
        # feasible it lands on the optimum to round-off, where the multipliers' own
        # certificate lags by 1e-4 or more (a rescaling of rho = -grad L). The iteration
        # goes on from its own iterate; the polished point is what it reports.
        max_cg = cg_cap(solver.polish_cg, solver.polish_newton, max_steps - inner.num_steps)
        needs_polish = (solver.polish_newton > 0) & (max_cg >= 1) & (
            violation <= solver.polish_violation * feasibility_tol) & ~(
            (gap <= tol * jnp.abs(upper)) & (violation <= feasibility_tol))

        W_report, upper, best_dual, reported_violation, polish_products = keep_better_feasible(
            state.W, state.objective, state.violation, polish_on_faces(
                needs_polish, program, W, gamma > 0, upper, best_dual, gap, violation,
                feasibility_tol, solver.polish_newton, max_cg, tol), feasibility_tol)
        inner = inner._replace(num_steps=inner.num_steps + polish_products)
        gap = upper - best_dual
        # The multipliers' own dual point lags the primal (it inherits the subproblem's
        # inexactness). When the iterate is feasible enough but that gap is too wide,
        # bound the optimum by the Lagrangian relaxation at gamma instead: a group lasso
        # without the penalty, which FISTA certifies tightly (LagrangianRelaxation).
        # Only near the end (multiplier gap within 100x the tolerance): far from the
        # optimum the multipliers are poor and the relaxation's bound is no better.
        cheap_gap = upper - best_dual
        needs_relaxation = (reported_violation <= feasibility_tol) & (
            cheap_gap > tol * jnp.abs(upper)
        ) & (cheap_gap <= 100.0 * tol * jnp.abs(upper))
        relaxation_cap = jnp.minimum(solver.relaxation_steps, max_steps - inner.num_steps)
        needs_relaxation = needs_relaxation & (relaxation_cap >= 1)

        def relaxation_bound(_):
            relaxed = fista_solve(LagrangianRelaxation.build(program, gamma), W,
                                  0.1 * tol, relaxation_cap, solver.relaxation_solver)
            return relaxed.best_dual, relaxed.num_steps

        relaxed_dual, relaxation_steps = jax.lax.cond(
            needs_relaxation, relaxation_bound,
            lambda _: (jnp.full((), -jnp.inf, dtype), jnp.zeros((), jnp.int32)), None,
        )
        best_dual = jnp.maximum(best_dual, jnp.where(jnp.isfinite(relaxed_dual), relaxed_dual,
                                                     -jnp.inf))
        gap = jnp.minimum(gap, upper - best_dual)
        slow = (violation > solver.violation_decrease * state.iterate_violation) & (
            violation > feasibility_tol
        )
        delta = jnp.where(slow, solver.penalty_growth * state.delta, state.delta)
        finite = jnp.isfinite(upper) & jnp.all(jnp.isfinite(W_report))
        return ALState(
            W=W_report,
            inner=inner._replace(num_steps=inner.num_steps + relaxation_steps),
            gamma=gamma,
            delta=delta,
            inner_tol=state.inner_tol * solver.inner_tol_decrease,
            num_outer=state.num_outer + 1,
            num_relaxation_steps=state.num_relaxation_steps + relaxation_steps,
            objective=upper,
            gap=gap,
            best_dual=best_dual,
            violation=reported_violation,
            iterate_violation=violation,
            result=RESULTS.where(finite, state.result, RESULTS.nonfinite),
        )

    def keep_going(state: ALState):
        return (
            ~converged(state)
            & (state.inner.num_steps < max_steps)
            & (state.result == RESULTS.successful)
        )

    inner0 = fista.init(augmented0, W0)
    state = ALState(
        W=W0,
        inner=inner0,
        gamma=gamma0,
        delta=delta0,
        inner_tol=jnp.asarray(solver.initial_inner_tol, dtype),
        num_outer=jnp.zeros((), jnp.int32),
        num_relaxation_steps=jnp.zeros((), jnp.int32),
        objective=program.network_objective(W0),
        gap=jnp.full((), jnp.inf, dtype),
        best_dual=jnp.full((), -jnp.inf, dtype),
        violation=program.violation(W0),
        iterate_violation=program.violation(W0),
        result=RESULTS.successful,
    )
    state = jax.lax.while_loop(keep_going, outer, state)
    out_of_steps = (state.result == RESULTS.successful) & ~converged(state)
    return state._replace(
        result=RESULTS.where(out_of_steps, RESULTS.max_steps_reached, state.result)
    )
