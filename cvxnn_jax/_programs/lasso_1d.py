"""Deep networks on 1-D data as Lasso problems (DESIGN.md section 4 item 4).

Zeger, Wang, Mishkin, Ergen, Candes & Pilanci, "A Library of Mirrors: Deep Neural
Nets in Low Dimensions are Convex Lasso Models with Reflection Features" (arXiv
2403.01046). For training points ``x_1..x_n`` (scalars), training a network with the
paper's regulariser is the Lasso

    min_{z, xi}  1/(2n) ||A z + xi 1 - y||^2 + lam ||z||_1

over an explicit dictionary ``A`` (``(n, p)``) whose columns are *features*: small
networks with unit weights evaluated at the training points. ``xi`` is the output
bias, not penalised. The papers write ``1/2 ||.||^2 + beta ||z||_1``; this library
divides by ``n``, so ``beta = n * lam`` (DESIGN.md section 2).

Features (every one is a chain of scalar layers with weights +-1)::

    h_0 = t,   h_l = act(s_l (h_{l-1} - c_l)),  l = 1..L-1,   feature(t) = h_{L-1}

with signs ``s_l`` in {-1, +1} and thresholds ``c_l``. The chain is parametrised by
*breakpoints* ``a_l`` in input space: ``c_1 = a_1`` and, for ``l >= 2``,
``c_l = h_{l-1}(a_l)`` (the layer switches where the input passes ``a_l``).

- depth 2 (ReLU, leaky ReLU ``max(t, a t)``, absolute value): ramps
  ``act(s (t - x_j))`` with a breakpoint at every training point, ``s = +-1``.
- depth 3 (narrow ReLU): ``a_1 = x_j1``, ``a_2 = x_j2``: ramps and *capped* ramps whose
  two breakpoints are training points.
- depth 4 (narrow ReLU): ``a_2 = x_j2``, ``a_3 = x_j3`` and ``a_1`` either ``x_j1`` or
  its *reflection* ``2 x_j2 - x_j1`` about ``x_j2`` (the "mirrors"; as in the
  authors' recursive definition, only the first breakpoint is reflected).
- threshold / sign (depth 2): steps ``1[s (t - x_j) >= 0]`` and ``sign(s (t - x_j))``
  (``sign(0) = +1``, the library's ties-are-active convention).

The offset is eliminated exactly by centering: with ``A_c = A - 1 mean(A)`` and
``y_c = y - mean(y)`` the program is the plain Lasso ``min_z 1/(2n)||A_c z - y_c||^2 +
lam ||z||_1`` and ``xi = mean(y - A z)``; its objective and duality gap are those of
the program with the offset.
"""

from __future__ import annotations


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._precision import full_precision
from .._deep_networks import DeepNarrowNetwork, ThresholdNetwork
from .._fit import report_convergence
from .._losses import Loss, SquaredLoss
from .._solvers._results import RESULTS
from .._solvers.fista import FISTA, fista_solve, solution_figures
from .._validation import (
    check_data_matrix,
    check_lam,
    check_positive_scalar,
    check_targets,
    is_concrete,
)
from .lasso import LassoProgram

ACTIVATIONS = ("relu", "leaky_relu", "absolute", "threshold", "sign")
STEP_ACTIVATIONS = ("threshold", "sign")


def _activation(name: str, negative_slope: float):
    if name == "relu":
        return jax.nn.relu
    if name == "leaky_relu":
        return lambda t: jnp.maximum(t, negative_slope * t)
    if name == "absolute":
        return jnp.abs
    if name == "threshold":
        return lambda t: (t >= 0).astype(t.dtype)
    if name == "sign":
        return lambda t: jnp.where(t >= 0, 1.0, -1.0).astype(t.dtype)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


class Features1D(eqx.Module):
    """A set of ``p`` chain features on the real line (a 1-D Lasso dictionary).

    **Fields:**
    - signs: ``(p, L - 1)`` layer signs ``s_l`` (+-1.0).
    - breakpoints: ``(p, L - 1)`` breakpoints ``a_l`` in input space.
    - reflected: ``(p,)`` boolean: ``a_1`` is a reflection ``2 x_j2 - x_j1``.
    - activation: ``"relu"``, ``"leaky_relu"``, ``"absolute"``, ``"threshold"`` or
      ``"sign"`` (the first layer's; deeper layers are ReLU).
    - negative_slope: slope ``a`` of ``max(t, a t)`` for ``"leaky_relu"``.

    ``features(t)`` evaluates all features at one scalar ``t`` (shape ``(p,)``);
    :meth:`matrix` evaluates them at many points (the dictionary ``A``).
    """

    signs: Array
    breakpoints: Array
    reflected: Array
    activation: str = eqx.field(static=True, default="relu")
    negative_slope: float = eqx.field(static=True, default=0.0)

    @property
    def depth(self) -> int:
        """Number of layers ``L`` of the network a feature is a unit of."""
        return self.signs.shape[1] + 1

    @property
    def num_features(self) -> int:
        return self.signs.shape[0]

    def _layer(self, l: int, h: Array, c: Array) -> Array:
        act = _activation(self.activation, self.negative_slope) if l == 0 else jax.nn.relu
        return act(self.signs[:, l] * (h - c))

    def thresholds(self) -> Array:
        """``(p, L - 1)`` thresholds ``c_l``: layer ``l`` computes ``act(s_l (h - c_l))``.

        ``c_1 = a_1`` and ``c_l = h_{l-1}(a_l)`` (the chain's first ``l - 1`` layers
        evaluated at the breakpoint ``a_l``).
        """
        a = self.breakpoints
        cs = [a[:, 0]]
        for l in range(1, a.shape[1]):
            h = a[:, l]
            for k in range(l):
                h = self._layer(k, h, cs[k])
            cs.append(h)
        return jnp.stack(cs, axis=1)

    def __call__(self, t: Array) -> Array:
        """All features at one scalar point ``t``: shape ``(p,)``."""
        c = self.thresholds()
        h = jnp.broadcast_to(jnp.asarray(t, self.breakpoints.dtype), (self.num_features,))
        for l in range(c.shape[1]):
            h = self._layer(l, h, c[:, l])
        return h

    def matrix(self, x: Array) -> Array:
        """The dictionary at points ``x`` (shape ``(n,)``): shape ``(n, p)``."""
        x = jnp.asarray(x, self.breakpoints.dtype)
        return jax.vmap(self)(x)

    def take(self, index) -> "Features1D":
        """The features at ``index`` (an integer array or boolean mask)."""
        return Features1D(self.signs[index], self.breakpoints[index], self.reflected[index],
                          self.activation, self.negative_slope)


def _grid(*sizes):
    """All index tuples of the given sizes, first axis slowest: ``(prod, len(sizes))``."""
    grids = jnp.meshgrid(*[jnp.arange(s) for s in sizes], indexing="ij")
    return jnp.stack([g.ravel() for g in grids], axis=1)


def dictionary_1d(x, depth: int = 2, activation: str = "relu",
                  negative_slope: float = 0.01) -> Features1D:
    """The Lasso dictionary of a ``depth``-layer network on 1-D training points ``x``.

    A pure function of ``x`` (jit-compatible: the number of features depends only on
    ``n``). It lists every feature of the paper's dictionary, duplicates and features
    that vanish on the data included; :func:`unique_features` drops those (outside
    ``jit``).

    **Arguments:**
    - x: ``(n,)`` training points.
    - depth: 2, 3 or 4 (3 and 4 for ``activation="relu"`` only: deep *narrow* ReLU
      networks, see the module docstring).
    - activation: ``"relu"``, ``"leaky_relu"``, ``"absolute"``, ``"threshold"`` or
      ``"sign"``.
    - negative_slope: ``a`` in ``max(t, a t)`` for ``"leaky_relu"`` (a Python float:
      it is part of the structure, like ``depth`` and ``activation``).

    **Returns:** :class:`Features1D` with ``p`` features: ``2n`` for depth 2,
    ``4 n^2`` for depth 3, ``16 n^3`` for depth 4 (non-reflected ones first).
    """
    check_depth_activation(depth, activation, negative_slope)
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"x must have shape (n,), got shape {x.shape}")
    n = x.shape[0]
    if depth == 2:
        idx = _grid(2, n)
        signs = jnp.where(idx[:, :1] == 0, 1.0, -1.0).astype(x.dtype)
        breakpoints = x[idx[:, 1:]]
        reflected = jnp.zeros(idx.shape[0], bool)
    else:
        k = depth - 1
        idx = _grid(*([2] * k + [n] * k))  # (sign_1..sign_k, j_1..j_k)
        signs = jnp.where(idx[:, :k] == 0, 1.0, -1.0).astype(x.dtype)
        breakpoints = x[idx[:, k:]]
        reflected = jnp.zeros(idx.shape[0], bool)
        if depth == 4:
            mirrored = breakpoints.at[:, 0].set(2.0 * breakpoints[:, 1] - breakpoints[:, 0])
            breakpoints = jnp.concatenate([breakpoints, mirrored])
            signs = jnp.concatenate([signs, signs])
            reflected = jnp.concatenate([reflected, jnp.ones_like(reflected)])
    return Features1D(signs, breakpoints, reflected, activation, float(negative_slope))


@eqx.filter_jit
def _matrix(features: Features1D, x: Array) -> Array:
    return features.matrix(x)


_dictionary = eqx.filter_jit(dictionary_1d)


def unique_features(features: Features1D, x, decimals: int = 12) -> np.ndarray:
    """Indices of features that are distinct and non-constant on ``x``, first kept.

    Two features whose columns differ by a constant are the same Lasso variable (the
    offset absorbs the constant), and a constant column never enters an optimal
    solution, so both are dropped. Columns are compared after centering and rounding to
    ``decimals`` digits relative to the dictionary's scale. Runs outside ``jit``.
    """
    A = np.asarray(_matrix(features, jnp.asarray(x)))
    centred = A - A.mean(axis=0, keepdims=True)
    scale = max(float(np.max(np.abs(centred), initial=0.0)), np.finfo(A.dtype).tiny)
    rounded = np.round(centred / scale, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    _, first = np.unique(rounded, axis=1, return_index=True)
    first = np.sort(first)
    nonconstant = np.any(rounded[:, first] != 0, axis=0)
    return first[nonconstant]


def centred_lasso(A: Array, y: Array, lam: Array, loss: Loss) -> tuple[LassoProgram, Array, Array]:
    """The Lasso with an unpenalised offset as a plain Lasso on centred data.

    **Returns:** ``(program, A_mean, y_mean)``; the offset of a solution ``z`` is
    ``y_mean - A_mean @ z``. Exact for the squared loss only.
    """
    A_mean = jnp.mean(A, axis=0)
    y_mean = jnp.mean(y)
    return LassoProgram(A - A_mean, y - y_mean, lam, loss), A_mean, y_mean


# ---------------------------------------------------------------------- recovery
def recover_network_1d(features: Features1D, z: Array, offset: Array):
    """The network whose non-convex objective equals the Lasso objective at ``(z, xi)``.

    One unit per feature (zero units for zero coefficients, so this works inside
    ``jit``). With ``gamma = |z_i|^(1/L)``:

    - piecewise-linear activations: a :class:`DeepNarrowNetwork` with weights
      ``W[i, l] = s_l gamma``, biases ``B[i, l] = -s_l c_l gamma^l`` and output weight
      ``alpha_i = sign(z_i) gamma``; by positive homogeneity unit ``i`` outputs
      ``z_i feature_i(x)`` and its regulariser ``(1/L) L gamma^L = |z_i|``.
    - threshold / sign: a :class:`ThresholdNetwork` on ``[x, 1]`` with gates
      ``(s, -s a)``, amplitude ``sqrt|z_i|`` and output weight ``sign(z_i) sqrt|z_i|``.
    """
    if features.activation in STEP_ACTIVATIONS:
        root = jnp.sqrt(jnp.abs(z))
        s, a = features.signs[:, 0], features.breakpoints[:, 0]
        gates = jnp.stack([s, -s * a])
        return ThresholdNetwork(gates, root, jnp.sign(z) * root, jnp.asarray(offset),
                                features.activation, bias=True)
    L = features.depth
    gamma = jnp.abs(z) ** (1.0 / L)
    W = features.signs * gamma[:, None]
    powers = gamma[:, None] ** jnp.arange(1, L, dtype=gamma.dtype)  # gamma^l, l = 1..L-1
    B = -features.signs * features.thresholds() * powers
    # Layer 1 bias as -(W a) so that W x + B is exactly 0 at x = a (ties stay ties).
    B = B.at[:, 0].set(-(W[:, 0] * features.breakpoints[:, 0]))
    return DeepNarrowNetwork(W, B, jnp.sign(z) * gamma, jnp.asarray(offset),
                             features.activation, features.negative_slope)


_recover = eqx.filter_jit(recover_network_1d)


# ---------------------------------------------------------------------- solution
class Solution1D(eqx.Module):
    """What :func:`fit_1d` returns. Every field is a JAX array (or pytree of them).

    **Fields:**
    - coefficients: ``(p,)`` Lasso coefficients ``z``, one per feature.
    - offset: the unpenalised output bias ``xi``.
    - features: the :class:`Features1D` of the dictionary that was solved over.
    - network: the recovered ``equinox.Module`` (:class:`DeepNarrowNetwork` or
      :class:`ThresholdNetwork`); ``network(x)`` for one scalar ``x``.
    - objective: Lasso objective (equal to the network's non-convex objective).
    - gap: duality gap, an upper bound on ``objective - optimum``.
    - dual_objective: best dual value found, a lower bound on the optimum.
    - num_steps: FISTA iterations taken.
    - result: a :class:`RESULTS` status.
    - lam: the regularisation strength used (``beta = n * lam``).
    """

    coefficients: Array
    offset: Array
    features: Features1D
    network: eqx.Module
    objective: Array
    gap: Array
    dual_objective: Array
    num_steps: Array
    result: RESULTS
    lam: Array

    @property
    def converged(self) -> Array:
        return self.result == RESULTS.successful

    @property
    def relative_gap(self) -> Array:
        return self.gap / abs(self.objective)


@eqx.filter_jit
def solve_lasso(A, y, lam, tol, max_steps, loss: Loss, solver: FISTA, offset: bool):
    """FISTA on ``min_z loss(A z [+ xi], y) + lam ||z||_1``; returns ``(z, xi, state)``.

    With ``offset=True`` (squared loss only) the unpenalised offset ``xi`` is
    eliminated by centring (:func:`centred_lasso`); otherwise ``xi = 0``. Compiled once
    per shape of ``A``: callers pad ``A`` with zero columns to a few bucket sizes
    (:func:`pad_columns`) so that different dictionaries share one compilation.
    """
    if offset:
        program, A_mean, y_mean = centred_lasso(A, y, lam, loss)
    else:
        program = LassoProgram(A, y, lam, loss)
    state = fista_solve(program, program.init_x(), tol, max_steps, solver)
    z = state.x[0]
    xi = y_mean - jnp.dot(A_mean, z) if offset else jnp.zeros((), A.dtype)
    return z, xi, state


def bucket_size(p: int) -> int:
    """The padded number of columns: the next power of two, at least 64."""
    return max(64, 1 << max(p - 1, 0).bit_length())


def pad_columns(A: Array, size: int) -> Array:
    """``A`` with zero columns appended up to ``size`` columns (zero columns keep a zero
    coefficient: their gradient is 0, so the prox leaves them at 0)."""
    return jnp.pad(A, ((0, 0), (0, size - A.shape[1])))


def _check_points(x, name: str = "x") -> Array:
    """1-D training points as a float ``(n,)`` array."""
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    shape = np.shape(x)
    if len(shape) == 2 and shape[1] == 1:
        x = jnp.asarray(x)[:, 0]
    elif len(shape) != 1:
        raise ValueError(f"{name} must have shape (n,) or (n, 1) (1-D inputs), got shape {shape}")
    return check_data_matrix(jnp.asarray(x)[:, None], name=name)[:, 0]


def check_depth_activation(depth, activation, negative_slope) -> None:
    """Validate the architecture arguments of the 1-D programs."""
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise TypeError(f"depth must be an int (2, 3 or 4), got {type(depth).__name__}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if depth not in (2, 3, 4):
        raise ValueError(f"depth must be 2, 3 or 4, got {depth}")
    if depth > 2 and activation != "relu":
        raise ValueError(
            f"depth={depth} is implemented for activation='relu' only (deep narrow ReLU "
            f"networks); got activation={activation!r}"
        )
    if activation == "leaky_relu":
        slope = float(negative_slope)
        if not (np.isfinite(slope) and -1.0 <= slope < 1.0):
            raise ValueError(f"negative_slope must lie in [-1, 1) for leaky_relu, got {slope}")


@full_precision
def fit_1d(
    x,
    y,
    lam=1e-3,
    *,
    depth: int = 2,
    activation: str = "relu",
    negative_slope: float = 0.01,
    dedupe: bool = True,
    solver=None,
    tol=1e-6,
    max_steps=100_000,
    throw: bool = False,
) -> Solution1D:
    """Train a network on 1-D data to global optimality through its Lasso.

    Solves ``min_{z, xi} 1/(2n) ||A z + xi 1 - y||^2 + lam ||z||_1`` with FISTA to a
    duality-gap certificate, over the dictionary :func:`dictionary_1d` of the
    architecture, and recovers the network (see :func:`recover_network_1d`) whose
    non-convex objective ``1/(2n) ||f(x) - y||^2 + lam * net.weight_decay()`` equals the
    Lasso objective. The paper's ``beta`` (unscaled squared loss) is ``n * lam``. Every
    hidden layer has a bias and the output an offset; none of them is penalised (the
    networks of Zeger et al.). For ReLU, depth 4 reaches the same optimal *value* as
    depth 3 on the training data (every unit is a clipped ramp, and one with a breakpoint
    between data points is, on the data, a convex combination of clipped ramps with
    breakpoints at data points at the same L1 cost); reflections add optimal solutions
    with fewer units and other extrapolations (Figure 3 of the paper).

    **Arguments:**
    - x: ``(n,)`` (or ``(n, 1)``) training inputs.
    - y: ``(n,)`` targets.
    - lam: scalar regularisation strength (>= 0).
    - depth: 2, 3 or 4 layers (3 and 4: deep narrow ReLU networks).
    - activation: ``"relu"``, ``"leaky_relu"``, ``"absolute"``, ``"threshold"`` or
      ``"sign"`` (the last two: depth 2, units with a trainable amplitude).
    - negative_slope: ``a`` of the leaky ReLU ``max(t, a t)``, in ``[-1, 1)``.
    - dedupe: drop features that are constant or repeat another one on ``x`` (same
      optimum, far fewer columns). Needs concrete ``x``: pass ``dedupe=False`` to call
      ``fit_1d`` inside ``jit``.
    - solver: ``None`` or a :class:`~cvxnn_jax.FISTA` instance.
    - tol: relative duality gap at which to stop.
    - max_steps: iteration budget.
    - throw: raise (``equinox.error_if``) if the solve does not converge; otherwise a
      ``ConvergenceWarning`` is issued outside ``jit``.

    **Returns:** a :class:`Solution1D`.
    """
    check_depth_activation(depth, activation, negative_slope)
    if solver is None:
        solver = FISTA()
    elif not isinstance(solver, FISTA):
        raise TypeError(f"solver must be None or a FISTA instance, got {type(solver).__name__}")
    x = _check_points(x)
    if np.ndim(y) == 1 and np.shape(y)[0] != x.shape[0]:
        raise ValueError(f"y has {np.shape(y)[0]} entries but x has {x.shape[0]}: shape mismatch")
    y = check_targets(y, x.shape[0], x.dtype, binary_labels=False)
    lam = check_lam(lam, x.dtype)
    check_positive_scalar(tol, "tol", allow_zero=True)
    check_positive_scalar(max_steps, "max_steps", integer=True)
    features = _dictionary(x, depth, activation, float(negative_slope))
    if dedupe:
        if not is_concrete(x):
            raise TypeError("dedupe=True needs concrete x (it runs outside jit); "
                            "pass dedupe=False to trace fit_1d")
        keep = unique_features(features, x)
        # Keep one (constant, hence zero after centring) column when nothing else is left.
        features = features.take(keep if keep.size else np.zeros(1, int))
    p = features.num_features
    A = pad_columns(_matrix(features, x), bucket_size(p))
    z, offset, state = solve_lasso(A, y, lam, jnp.asarray(tol, x.dtype),
                                   jnp.asarray(max_steps, jnp.int32), SquaredLoss(), solver, True)
    z = z[:p]
    solution = Solution1D(
        coefficients=z,
        offset=offset,
        features=features,
        network=_recover(features, z, offset),
        **solution_figures(state),
        lam=lam,
    )
    return report_convergence(solution, tol, throw, "fit_1d")
