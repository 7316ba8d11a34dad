"""scikit-learn estimators: ``ConvexReLUClassifier`` and ``ConvexReLURegressor``.

The only module of the library that imports scikit-learn; import it explicitly
(``from cvxnn_jax.sklearn import ConvexReLUClassifier``), ``cvxnn_jax`` itself does not.

Each ``fit`` samples ``num_gates`` Gaussian gates once (on the data with the bias
column appended when ``bias=True``) from ``jax.random.PRNGKey(seed)`` and calls
:func:`cvxnn_jax.fit` with those gates, so that an estimator with ``random_state=s``
trains exactly the network that ``cn.fit(X, y, lam, gates=num_gates, bias=bias,
key=jax.random.PRNGKey(s), ...)`` trains with the same remaining arguments.

- ``ConvexReLURegressor``: squared loss ``(1/(2n)) sum (yhat - y)^2``, 1-D targets.
- ``ConvexReLUClassifier``: logistic loss. Two classes: one fit with ``classes_[1]``
  as +1 and ``classes_[0]`` as -1. More classes: one-vs-rest, one convex fit per
  class on the same gates; ``predict_proba`` normalises the per-class sigmoids.

Data are converted to JAX's default float dtype: float64 when ``jax_enable_x64`` is on,
float32 otherwise (the flag is never changed here). Predictions come back as NumPy
arrays.

A solve that stops before its certificate meets ``tol`` warns with
:class:`ConvergenceWarning`, which is both a :class:`cvxnn_jax.ConvergenceWarning`
and a :class:`sklearn.exceptions.ConvergenceWarning` (so either filter catches it),
and which names the class of a one-vs-rest fit.

Defaults differ from :func:`cvxnn_jax.fit` in two places: ``tol=1e-4`` (a relative
duality gap of 0.01%, ample for prediction) and ``max_steps=100_000``, so that the
small, unscaled data of scikit-learn's checks converge (10 000 FISTA steps, the
library's budget, did not on three of them).

scikit-learn's ``check_estimator`` passes for both estimators with their defaults;
no check is expected to fail and no ConvergenceWarning is filtered. Notes:

- ``sample_weight`` is not supported (the convex programs have unweighted losses), so
  the sample-weight checks are not generated.
- ``check_array_api_input`` passes when ``SCIPY_ARRAY_API=1`` is set (scikit-learn
  skips it otherwise); the ``*_data_not_an_array`` checks need pandas.
- Each new data shape compiles the solver (seconds on a CPU), and the checks fit on
  about 40 shapes: ``tests/test_sklearn.py`` runs them all (about 5 minutes on 2
  cores); ``CVXNN_FAST_SKLEARN_CHECKS=1`` skips the slow ones locally (see that file).
"""

from __future__ import annotations

import numbers
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import log_expit, log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._fit import ConvergenceWarning as _CvxnnConvergenceWarning, fit
from ._patterns import add_bias_column, sample_gates
from ._solvers._results import RESULTS

__all__ = ["ConvergenceWarning", "ConvexReLUClassifier", "ConvexReLURegressor"]


class ConvergenceWarning(_CvxnnConvergenceWarning, _SklearnConvergenceWarning):
    """An estimator's solve stopped before its certificate met ``tol``.

    Subclasses both :class:`cvxnn_jax.ConvergenceWarning` and
    :class:`sklearn.exceptions.ConvergenceWarning`.
    """


def _float_dtype() -> np.dtype:
    """JAX's default float dtype: float64 with ``jax_enable_x64``, else float32."""
    return np.dtype(jnp.result_type(float))


def _seed(random_state) -> int:
    """An int ``random_state`` is the seed itself; otherwise draw one from it."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _stack(trees):
    """One pytree with a leading axis over ``trees`` (same structure and shapes)."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


class _ConvexReLUBase(BaseEstimator):
    """What both estimators share: parameters, gates, solves and fitted attributes."""

    _loss: str  # set by the subclasses

    def __init__(
        self,
        lam=1e-3,
        *,
        num_gates=100,
        model="gated_relu",
        solver=None,
        tol=1e-4,
        max_steps=100_000,
        bias=True,
        random_state=None,
    ):
        self.lam = lam
        self.num_gates = num_gates
        self.model = model
        self.solver = solver
        self.tol = tol
        self.max_steps = max_steps
        self.bias = bias
        self.random_state = random_state

    def _fit_targets(self, X: np.ndarray, targets: list[np.ndarray], names: list[str]):
        """One convex solve per target (same gates); sets the fitted attributes."""
        key = jax.random.PRNGKey(_seed(self.random_state))
        X = jnp.asarray(X)
        Xb = add_bias_column(X) if self.bias else X
        gates = sample_gates(key, Xb, self.num_gates)
        solutions = []
        for target, name in zip(targets, names):
            with warnings.catch_warnings():
                # Re-issued below as this module's ConvergenceWarning, naming the class.
                warnings.simplefilter("ignore", _CvxnnConvergenceWarning)
                solution = fit(X, target, self.lam, gates=gates, model=self.model,
                               loss=self._loss, solver=self.solver, tol=self.tol,
                               max_steps=self.max_steps, bias=self.bias, key=key)
            if not bool(solution.converged):
                warnings.warn(
                    f"{type(self).__name__}{name} did not converge: "
                    f"{RESULTS[solution.result]} (relative gap "
                    f"{float(solution.relative_gap):.3g}, tol {float(self.tol):.3g}, steps "
                    f"{int(solution.num_steps)})",
                    ConvergenceWarning,
                    stacklevel=3,
                )
            solutions.append(solution)

        self.gates_ = gates
        if len(solutions) == 1:
            self.solution_ = solutions[0]
            self._networks = [solutions[0].network]
            self.converged_ = bool(solutions[0].converged)
            self.objective_ = float(solutions[0].objective)
            self.gap_ = float(solutions[0].gap)
            self.n_iter_ = int(solutions[0].num_steps)
        else:
            self.solution_ = _stack(solutions)
            self._networks = [s.network for s in solutions]
            self.converged_ = np.asarray(self.solution_.converged)
            self.objective_ = np.asarray(self.solution_.objective)
            self.gap_ = np.asarray(self.solution_.gap)
            self.n_iter_ = np.asarray(self.solution_.num_steps)
        self.network_ = self.solution_.network
        return self

    def _raw_outputs(self, X) -> np.ndarray:
        """``(n, k)`` outputs of the ``k`` fitted networks on validated ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=_float_dtype())
        X = jnp.asarray(X)
        return np.stack([np.asarray(net.predict(X)) for net in self._networks], axis=1)


class ConvexReLURegressor(RegressorMixin, _ConvexReLUBase):
    """Two-layer (gated) ReLU network regression, trained to global optimality.

    Minimises ``(1/(2n)) sum (f(x_k) - y_k)^2 + lam * sum_i ||w_i||`` over the sampled
    patterns (the convex program of DESIGN.md section 2) with :func:`cvxnn_jax.fit`.

    **Arguments:**
    - lam: regularisation strength (>= 0), the network's weight decay.
    - num_gates: number of Gaussian gates to sample (patterns; duplicates are dropped).
    - model: ``"gated_relu"`` (unconstrained group lasso) or ``"relu"`` (the
      cone-constrained program, exactly a ReLU network).
    - solver: as :func:`cvxnn_jax.fit` (``None`` picks FISTA for gated ReLU, and for ReLU
      :func:`cvxnn_jax.default_relu_solver`: the interior point where it fits).
    - tol: relative duality gap at which a solve stops.
    - max_steps: iteration budget per solve (FISTA steps; inner steps for the
      augmented Lagrangian; ADMM or interior-point iterations). ``None``: the library's
      default.
    - bias: append a ones column to ``X`` (a bias in every hidden unit).
    - random_state: an int seeds ``jax.random.PRNGKey(random_state)``; ``None`` or a
      ``numpy.random.RandomState`` draws the seed from NumPy.

    **Attributes:**
    - solution_: the :class:`cvxnn_jax.Solution` of the solve.
    - network_: the recovered network (``solution_.network``).
    - gates_: ``(d', P)`` gates used (``d' = n_features_in_ + 1`` with ``bias``).
    - converged_, objective_, gap_, n_iter_: the solve's status, objective, duality
      gap and number of steps.
    - n_features_in_, feature_names_in_: as in scikit-learn.

    Example:

        >>> import numpy as np
        >>> from cvxnn_jax.sklearn import ConvexReLURegressor
        >>> X = np.random.default_rng(0).normal(size=(50, 3))
        >>> y = np.maximum(X[:, 0], 0.0) - X[:, 1]
        >>> reg = ConvexReLURegressor(lam=1e-3, num_gates=20, random_state=0).fit(X, y)
        >>> reg.score(X, y) > 0.9
        True
    """

    _loss = "squared"

    def fit(self, X, y):
        """Fit to ``X`` (``(n, d)``) and targets ``y`` (``(n,)``); returns ``self``."""
        X, y = validate_data(self, X, y, dtype=_float_dtype(), y_numeric=True)
        return self._fit_targets(X, [np.asarray(y, X.dtype)], [""])

    def predict(self, X) -> np.ndarray:
        """Predictions of the fitted network, shape ``(n,)``."""
        return self._raw_outputs(X)[:, 0]


class ConvexReLUClassifier(ClassifierMixin, _ConvexReLUBase):
    """Two-layer (gated) ReLU network classification, trained to global optimality.

    Minimises the logistic loss ``(1/n) sum log(1 + exp(-y_k f(x_k))) + lam * sum_i
    ||w_i||`` (labels mapped to -1/+1) with :func:`cvxnn_jax.fit`. Two classes: one
    solve, ``classes_[1]`` is +1. More classes: one-vs-rest, one solve per class on the
    same gates.

    **Arguments:** as :class:`ConvexReLURegressor`.

    **Attributes:**
    - classes_: the class labels, sorted.
    - solution_: the :class:`cvxnn_jax.Solution`; with more than two classes, the
      solutions stacked along a leading axis of length ``len(classes_)`` (as
      :func:`cvxnn_jax.fit_path` stacks a path).
    - network_: ``solution_.network`` (stacked likewise).
    - gates_: ``(d', P)`` gates shared by every solve.
    - converged_, objective_, gap_, n_iter_: per solve; scalars for two classes, arrays
      of shape ``(len(classes_),)`` otherwise.
    - n_features_in_, feature_names_in_: as in scikit-learn.

    Example:

        >>> import numpy as np
        >>> from cvxnn_jax.sklearn import ConvexReLUClassifier
        >>> X = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = np.where(X[:, 0] * X[:, 1] > 0, "same", "diff")
        >>> clf = ConvexReLUClassifier(lam=1e-3, num_gates=50, random_state=0).fit(X, y)
        >>> clf.score(X, y) > 0.9
        True
    """

    _loss = "logistic"

    def fit(self, X, y):
        """Fit to ``X`` (``(n, d)``) and labels ``y`` (``(n,)``); returns ``self``."""
        X, y = validate_data(self, X, y, dtype=_float_dtype())
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but "
                f"the data contain only one class: {self.classes_[0]!r}"
            )
        one, minus_one = np.asarray(1.0, X.dtype), np.asarray(-1.0, X.dtype)
        if len(self.classes_) == 2:
            return self._fit_targets(X, [np.where(encoded == 1, one, minus_one)], [""])
        targets = [np.where(encoded == k, one, minus_one) for k in range(len(self.classes_))]
        names = [f" (class {c!r} vs rest)" for c in self.classes_]
        return self._fit_targets(X, targets, names)

    def decision_function(self, X) -> np.ndarray:
        """Network outputs: shape ``(n,)`` for two classes (positive means
        ``classes_[1]``), ``(n, len(classes_))`` (one-vs-rest scores) otherwise."""
        outputs = self._raw_outputs(X)
        return outputs[:, 0] if len(self.classes_) == 2 else outputs

    def predict(self, X) -> np.ndarray:
        """Predicted class labels, shape ``(n,)``."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n, len(classes_))``: the sigmoid of the output
        for two classes; the one-vs-rest sigmoids normalised to sum to one otherwise."""
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`, computed without under- or overflow."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return log_expit(np.stack([-scores, scores], axis=1))
        return log_softmax(log_expit(scores), axis=1)
