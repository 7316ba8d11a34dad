"""Column generation: grow the activation patterns from the dual certificate.

Sampled gates cover a small corner of the arrangement. After each solve the dual point
``rho = -grad L`` at the solution's predictions is handed to the violation oracle
(:mod:`cvxnn_jax._oracle`); the units it finds whose dual value exceeds ``lam`` name
patterns that lower the objective. They are added, patterns whose weights stayed at
zero for ``Grow.drop_after`` solves in a row are dropped, and the program is re-solved
from the previous weights. Growth stops when the oracle finds no violation above
``Grow.tol`` (relative to ``lam``), or at the round or time budget.

Growth can start from a trained network instead of sampled gates
(``Grow(initial_network=...)``, for example one trained by optax Adam): its neurons'
activation patterns become the first columns and the reverse map of DESIGN.md section 2
(neurons grouped by pattern and by the sign of their output weight,
``v_p = sum_j |alpha_j| w_j``) the first solve's warm start. That point is feasible and its
convex objective is at most the network's objective, so the convex optimum over those
patterns is too, and the oracle then adds the patterns the network lacks.

The number of patterns is padded by repeating the first gate, so that the rounds share
a few compilations: to a multiple of 16, and above 128 to one of the four sizes between
consecutive powers of two (at most 4 compilations per doubling, at most 25% padding). A
repeated pattern changes nothing in the optimum (its weights fold into the original's),
but it costs what a pattern costs: padding to the next power of two had doubled the
interior-point solve's ``n x Pd`` products from 513 patterns on. Runs outside ``jit``:
the pattern set depends on the data.
"""

from __future__ import annotations

import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ._networks import ReLUNetwork
from ._oracle import (
    Oracle,
    exact_cells,
    exact_gated_violation,
    exact_violation,
    has_exact_oracle,
    search_violations,
)
from ._patterns import gate_masks
from ._programs.gated_relu import GatedReLUProgram
from ._programs.relu import ReLUProgram
from ._solution import Solution
from ._solvers.ipm import InteriorPoint


class Grow(eqx.Module):
    """How :func:`cvxnn_jax.fit` grows patterns: pass ``gates=cn.Grow(...)`` (or
    ``gates="grow"`` for these defaults).

    **Fields:**
    - initial_gates: Gaussian gates sampled to start from.
    - max_rounds: oracle rounds at most (each followed by a warm-started re-solve).
    - patterns_per_round: most violating new patterns added per round.
    - tol: stop when ``max_u |rho^T sigma(X u)| <= (1 + tol) lam`` for every unit the
      oracle tries (gated ReLU: ``||X^T D_u rho|| <= (1 + tol) lam``).
    - max_seconds: wall-time budget (None: no limit), checked after each solve.
    - exact: use the exact oracle where one exists (1 or 2 features and ``bias=True``):
      None (default) chooses it when available; False forces the heuristic search.
    - oracle: settings of the heuristic search.
    - initial_network: a :class:`ReLUNetwork` to start from instead of
      ``initial_gates`` sampled gates (its ``bias`` must match ``fit``'s): the first
      columns are its neurons' activation patterns, warm-started at its reverse map.
    - drop_after: a pattern is dropped when its weights were zero after this many solves
      in a row. None (default): 1 with the interior point (``solver="ipm"``, the default
      ReLU solver in float64): every column costs it a share of each iteration, and it
      zeroes a column only when the certificate allows; 2 with the first-order solvers,
      which spares them re-adding a pattern that a loose solve had zeroed.

    The solver is chosen once, for the initial patterns (``fit``'s ``solver=None``:
    :func:`default_relu_solver`), and kept as the patterns grow.
    """

    initial_gates: int = 16
    max_rounds: int = 30
    patterns_per_round: int = 16
    tol: float = 1e-3
    max_seconds: float | None = None
    exact: bool | None = None
    oracle: Oracle = Oracle()
    initial_network: ReLUNetwork | None = None
    drop_after: int | None = None

    def __check_init__(self):
        for name in ("initial_gates", "max_rounds", "patterns_per_round", "drop_after"):
            value = getattr(self, name)
            if name == "drop_after" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Grow.{name} must be an int, got {value!r}")
        if (self.initial_gates < 1 or self.patterns_per_round < 1 or self.max_rounds < 0
                or (self.drop_after is not None and self.drop_after < 1)):
            raise ValueError("Grow needs initial_gates >= 1, patterns_per_round >= 1, "
                             f"max_rounds >= 0 and drop_after >= 1, got {self}")
        if not self.tol >= 0:
            raise ValueError(f"Grow.tol must be >= 0, got {self.tol}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"Grow.max_seconds must be > 0 or None, got {self.max_seconds}")
        if self.initial_network is not None and not isinstance(self.initial_network,
                                                               ReLUNetwork):
            raise TypeError("Grow.initial_network must be a cvxnn_jax.ReLUNetwork, got "
                            f"{type(self.initial_network).__name__}")


class GrowthInfo(eqx.Module):
    """What growth reports beside the solution (``solution.growth``).

    **Fields:**
    - num_rounds: oracle rounds run.
    - dual_value: the last round's largest dual value found (``max |rho^T sigma(X u)|``;
      gated ReLU ``max ||X^T D_u rho||``).
    - violation: ``max(dual_value / lam - 1, 0)``.
    - exact: whether the oracle was exact (then ``violation`` and ``lower_bound`` are
      global, over every pattern) or a heuristic search (relative to what it tried).
    - lower_bound: with the exact oracle, a lower bound on the optimum over all patterns
      (for ReLU: over all networks of any width); ``nan`` otherwise.
    - stopped: why growth stopped: ``"no violation"``, ``"max_rounds"``,
      ``"max_seconds"`` or ``"no new pattern"`` (the oracle's best units are patterns
      already in the program: the solve is not accurate enough to go on).
    - history_objective, history_violation, history_num_patterns, history_seconds:
      per round (``(num_rounds,)`` NumPy arrays): objective, violation, number of
      distinct patterns, and wall time since the start.
    """

    num_rounds: int
    dual_value: Array
    violation: Array
    exact: bool = eqx.field(static=True)
    lower_bound: Array
    stopped: str = eqx.field(static=True)
    history_objective: np.ndarray
    history_violation: np.ndarray
    history_num_patterns: np.ndarray
    history_seconds: np.ndarray


def _bucket(P: int) -> int:
    """Padded number of patterns: a multiple of ``max(16, 2^k / 8)`` with
    ``2^(k-1) < P <= 2^k``."""
    step = max(16, (1 << max(P - 1, 1).bit_length()) // 8)
    return max(16, -(-P // step) * step)


def _pattern_keys(X, units) -> list[bytes]:
    masks = np.asarray(gate_masks(X, units)).astype(bool)
    return [bytes(b) for b in np.packbits(masks, axis=0).T]


class _Patterns:
    """Columns that are activation patterns of the gated or cone-constrained program.

    The number of patterns is padded to a bucket size by repeating gate 0; the
    repeats' weights are folded back into gate 0 after each solve.
    """

    def __init__(self, setup, solve):
        self.setup, self.solve_fn = setup, solve
        self.relu = setup.model == "relu"
        self.units = np.asarray(setup.gates)  # (d, P) gates
        self.weights = None  # (d, P) or (d, 2P) on the real patterns

    def _padded(self):
        P = self.units.shape[1]
        extra = _bucket(P) - P
        gates = np.concatenate([self.units, np.repeat(self.units[:, :1], extra, axis=1)], axis=1)
        if self.weights is None:
            return gates, None
        zeros = np.zeros((self.weights.shape[0], extra), self.weights.dtype)
        if self.relu:
            x0 = np.concatenate([self.weights[:, :P], zeros, self.weights[:, P:], zeros], axis=1)
        else:
            x0 = np.concatenate([self.weights, zeros], axis=1)
        return gates, x0

    def solve(self):
        setup = self.setup
        X = setup.X
        gates, x0 = self._padded()
        gates = jnp.asarray(gates, X.dtype)
        solution = self.solve_fn(setup._replace(gates=gates),
                                 None if x0 is None else jnp.asarray(x0, X.dtype))
        P, size = self.units.shape[1], gates.shape[1]

        def fold(block):
            out = block[:, :P].copy()
            out[:, 0] += block[:, P:].sum(axis=1)
            return out

        W = np.asarray(solution.weights)
        self.weights = (np.concatenate([fold(W[:, :size]), fold(W[:, size:])], axis=1)
                        if self.relu else fold(W))
        masks = gate_masks(X, gates)
        if self.relu:
            program = ReLUProgram(X, masks, setup.y, setup.lam, setup.loss, setup.slope)
            predictions = program.network_predict(solution.weights)
        else:
            predictions = GatedReLUProgram(X, masks, setup.y, setup.lam, setup.loss).matvec(
                solution.weights)
        return solution, predictions

    def seed(self, network: ReLUNetwork):
        """Start from ``network``'s patterns, warm-started at its reverse map."""
        X = self.setup.X
        if network.W1.shape[0] != X.shape[1] or network.bias != self.setup.bias:
            raise ValueError(
                f"Grow.initial_network has W1 of shape {network.W1.shape} and bias="
                f"{network.bias}, but fit's data has {X.shape[1]} columns"
                f"{' with' if self.setup.bias else ' without'} the bias column (bias="
                f"{self.setup.bias})")
        expected = self.setup.slope if self.relu else 0.0
        if network.slope != expected:
            raise ValueError(f"Grow.initial_network has activation slope {network.slope}, "
                             f"the {self.setup.model} program's is {expected}")
        W1 = np.asarray(network.W1, np.float64)
        w2 = np.asarray(network.w2, np.float64)
        used = (w2 != 0) & np.any(W1 != 0, axis=0)
        if not used.any():
            raise ValueError("Grow.initial_network has no neuron with non-zero weights")
        W1, w2 = W1[:, used], w2[used]
        # Neurons with one pattern share a column: v_p and u_p sum |alpha_j| w_j over
        # the positive and the negative output weights.
        keys = _pattern_keys(X, jnp.asarray(W1, X.dtype))
        columns, group, representative = {}, np.empty(len(keys), int), []
        for j, pattern in enumerate(keys):
            if pattern not in columns:
                columns[pattern] = len(representative)
                representative.append(j)
            group[j] = columns[pattern]
        P = len(representative)
        scaled = W1 * np.abs(w2)
        positive = np.zeros((W1.shape[0], P))
        negative = np.zeros((W1.shape[0], P))
        np.add.at(positive.T, group[w2 > 0], scaled[:, w2 > 0].T)
        np.add.at(negative.T, group[w2 < 0], scaled[:, w2 < 0].T)
        self.units = W1[:, representative]
        dtype = np.asarray(X).dtype
        self.weights = (np.concatenate([positive, negative], axis=1) if self.relu
                        else positive - negative).astype(dtype)

    def zero(self):
        P = self.units.shape[1]
        norms = np.linalg.norm(self.weights, axis=0)
        return (norms[:P] == 0) & (norms[P:] == 0) if self.relu else norms == 0

    def update(self, keep, new_units):
        P = self.units.shape[1]
        zeros = np.zeros((self.weights.shape[0], new_units.shape[1]), self.weights.dtype)
        if self.relu:
            self.weights = np.concatenate([self.weights[:, :P][:, keep], zeros,
                                           self.weights[:, P:][:, keep], zeros], axis=1)
        else:
            self.weights = np.concatenate([self.weights[:, keep], zeros], axis=1)
        self.units = np.concatenate([self.units[:, keep], new_units], axis=1)


def grow(setup, key, spec: Grow, solve) -> Solution:
    """Column generation on ``setup`` (a ``_fit._Setup``), from its gates.

    ``solve(setup, x0)`` runs one jit-compiled solve of the pattern program. Returns the
    last solve's :class:`Solution` with :class:`GrowthInfo` in ``solution.growth``.
    """
    start = time.perf_counter()
    X, y, lam, loss = setup.X, setup.y, setup.lam, setup.loss
    relu = setup.model == "relu"
    slope = setup.slope
    search_key = jax.random.fold_in(key, 1)
    columns = _Patterns(setup, solve)
    if spec.initial_network is not None:
        columns.seed(spec.initial_network)
    zero_streak = np.zeros(columns.units.shape[1], int)
    exact = has_exact_oracle(X, setup.bias) if spec.exact is None else bool(spec.exact)
    if exact and not has_exact_oracle(X, setup.bias):
        raise ValueError("Grow(exact=True) needs data with 1 or 2 features and bias=True")
    cells = exact_cells(X) if exact else None
    history = []
    stopped = "max_rounds"
    lam_value = float(lam)
    drop_after = spec.drop_after
    if drop_after is None:
        drop_after = 1 if isinstance(setup.solver, InteriorPoint) else 2

    for round_index in range(spec.max_rounds + 1):
        solution, predictions = columns.solve()
        P = columns.units.shape[1]
        rho = -loss.grad(predictions, y)

        # The oracle: the heuristic search proposes patterns; where the exact oracle
        # exists, its maximiser joins them and its value is the certificate.
        # The padded gates as starts: the search then compiles once per bucket size.
        found = search_violations(X, rho, slope, gates=jnp.asarray(columns._padded()[0], X.dtype),
                                  key=jax.random.fold_in(search_key, round_index),
                                  oracle=spec.oracle)
        scores = np.abs(np.asarray(found.values)) if relu else np.asarray(found.gated_values)
        candidates = np.asarray(found.units)
        if exact:
            if relu:
                value, unit = exact_violation(X, rho, slope, cells)
                dual_value = jnp.abs(value)
            else:
                dual_value, unit = exact_gated_violation(X, rho, cells)
            candidates = np.concatenate([np.asarray(unit)[:, None], candidates], axis=1)
            scores = np.concatenate([np.asarray(dual_value)[None], scores])
        else:
            dual_value = jnp.asarray(scores.max(), X.dtype)
        violation = max(float(dual_value) / lam_value - 1.0, 0.0) if lam_value > 0 else np.inf
        seconds = time.perf_counter() - start
        history.append((float(solution.objective), violation, P, seconds))

        if violation <= spec.tol:
            stopped = "no violation"
            break
        if round_index == spec.max_rounds:
            break
        if spec.max_seconds is not None and seconds >= spec.max_seconds:
            stopped = "max_seconds"
            break

        # New columns: the most violating distinct patterns not in the program yet.
        present = set(_pattern_keys(X, columns.units))
        order = np.argsort(-scores)
        keys = _pattern_keys(X, candidates[:, order])
        new = []
        for index, pattern in zip(order, keys):
            if scores[index] <= (1.0 + spec.tol) * lam_value or len(new) == spec.patterns_per_round:
                break
            if pattern not in present and np.any(np.frombuffer(pattern, np.uint8)):
                present.add(pattern)
                new.append(index)
        if not new:
            stopped = "no new pattern"
            break

        # Drop columns whose weights were zero after the last drop_after solves.
        zero_streak = np.where(columns.zero(), zero_streak + 1, 0)
        keep = zero_streak < drop_after
        if not keep.any():
            keep[0] = True
        columns.update(keep, candidates[:, new])
        zero_streak = np.concatenate([zero_streak[keep], np.zeros(len(new), int)])

    if exact:
        scale = min(1.0, lam_value / max(float(dual_value), np.finfo(np.float64).tiny))
        lower_bound = loss.dual(scale * rho, y)
    else:
        lower_bound = jnp.asarray(jnp.nan, X.dtype)
    objective, violations, num_patterns, times = (np.asarray(column) for column in zip(*history))
    info = GrowthInfo(
        num_rounds=len(history) - 1,
        dual_value=jnp.asarray(dual_value, X.dtype),
        violation=jnp.asarray(violation, X.dtype),
        exact=exact,
        lower_bound=lower_bound,
        stopped=stopped,
        history_objective=objective,
        history_violation=violations,
        history_num_patterns=num_patterns.astype(int),
        history_seconds=times,
    )
    if stopped != "no violation":
        warnings.warn(f"pattern growth stopped ({stopped}) with relative dual violation "
                      f"{violation:.3g} > tol {spec.tol:.3g}", GrowthWarning, stacklevel=3)
    return eqx.tree_at(lambda s: s.growth, solution, info, is_leaf=lambda x: x is None)


class GrowthWarning(UserWarning):
    """Pattern growth stopped before the oracle's violation met its tolerance."""
