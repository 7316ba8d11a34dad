"""The result of a convex solve."""

from __future__ import annotations

import equinox as eqx
from jax import Array

from ._solvers._results import RESULTS


class Solution(eqx.Module):
    """What ``fit`` returns. Every field is a JAX array (or pytree of them), so a
    solution can leave a ``jit`` and be vmapped over.

    **Fields:**
    - weights: the convex weights (``(d, P)`` for gated ReLU, column ``i`` is ``w_i``).
    - gates: ``(d, P)`` gates that define the patterns.
    - network: the recovered ``equinox.Module`` network.
    - objective: convex objective at ``weights`` (equal to the network's non-convex one).
    - gap: duality gap, an upper bound on ``objective - optimum`` (sampled patterns).
    - dual_objective: the best dual value found, a lower bound on the optimum.
    - num_steps: solver iterations taken (FISTA: its steps plus the Newton polish's
      ``A``/``A^T`` product pairs; AL: inner steps plus relaxation steps).
    - result: a :class:`RESULTS` status.
    - lam: the regularisation strength used.
    - violation: largest cone violation of ``weights`` (ReLU program; see
      ``ReLUProgram.violation``), ``None`` for programs without constraints.
    - growth: with grown patterns (``gates=cn.Grow(...)``), a ``GrowthInfo`` (rounds,
      the oracle's last dual violation, a global lower bound where the oracle is exact,
      per-round history); ``None`` otherwise.
    """

    weights: Array
    gates: Array
    network: eqx.Module
    objective: Array
    gap: Array
    dual_objective: Array
    num_steps: Array
    result: RESULTS
    lam: Array
    violation: Array | None = None
    growth: eqx.Module | None = None

    @property
    def converged(self) -> Array:
        """Boolean array: the gap met the tolerance."""
        return self.result == RESULTS.successful

    @property
    def relative_gap(self) -> Array:
        """``gap / |objective|``: what ``tol`` is compared with."""
        return self.gap / abs(self.objective)
