"""Models for the learning job: softmax regression and a one-hidden-layer MLP, in numpy.

Spec: spec/13-learning.md#models (informative: the learning job lives in ``reference/``).

A model is stateless: its parameters are one flat float64 vector of
``size`` entries, which is what the nodes clip, quantize, share and sum.
The loss is cross-entropy, ``l(θ; x, y) = logsumexp(z) - z_y`` with
``z = logits(θ, x)``, computed with the maximum subtracted first so that
no exponential overflows. :meth:`Model.per_example_gradients` returns one
gradient row per example (not averaged), as DP-SGD needs (Abadi et al.,
"Deep learning with differential privacy", CCS 2016, Algorithm 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from protocol.errors import ParameterError
from protocol.xof import Seed, Tag, Xof
from reference.learning.data import F64, I64, Dataset, _uniform_doubles

__all__ = [
    "F64",
    "I64",
    "MODELS",
    "Mlp",
    "Model",
    "SoftmaxRegression",
    "accuracy",
    "clip_rows",
    "make_model",
    "mlp",
    "softmax_regression",
]


class Model(Protocol):
    """A classifier with a flat parameter vector of ``size`` float64 entries.

    Every method is pure: it reads ``params`` and returns new arrays. A
    batch is ``x`` of shape ``(B, features)`` and labels ``y`` of shape
    ``(B,)`` in ``[0, classes)``. Methods raise
    :class:`~protocol.errors.ParameterError` on arrays of the wrong shape.
    """

    @property
    def name(self) -> str:
        """``"softmax"`` or ``"mlp"`` (what :func:`make_model` accepts)."""
        ...

    @property
    def size(self) -> int:
        """The number of parameters."""
        ...

    def init(self, seed: Seed) -> F64:
        """Initial parameters, drawn from the XOF (or zeros, where that trains as well)."""
        ...

    def logits(self, params: F64, x: F64) -> F64:
        """The class scores, shape ``(B, classes)``."""
        ...

    def predict(self, params: F64, x: F64) -> I64:
        """The class of largest score (lowest class on ties), shape ``(B,)``."""
        ...

    def loss(self, params: F64, x: F64, y: I64) -> float:
        """The mean cross-entropy over the batch (``B >= 1``)."""
        ...

    def per_example_gradients(self, params: F64, x: F64, y: I64) -> F64:
        """Row ``i`` is the gradient of example ``i``'s cross-entropy; shape ``(B, size)``."""
        ...


def _log_softmax(z: F64) -> F64:
    """``z - logsumexp(z)`` per row, with the row maximum subtracted first."""
    shifted = z - z.max(axis=1, keepdims=True)
    result: F64 = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return result


def _cross_entropy(z: F64, y: I64) -> F64:
    """Per-example cross-entropy ``logsumexp(z_i) - z_i[y_i]``."""
    result: F64 = -_log_softmax(z)[np.arange(len(y)), y]
    return result


def _output_gradient(z: F64, y: I64) -> F64:
    """``d l_i / d z_i = softmax(z_i) - onehot(y_i)`` for every row."""
    g = np.exp(_log_softmax(z))
    g[np.arange(len(y)), y] -= 1.0
    return g


@dataclass(frozen=True)
class _Shapes:
    """Checks of the arrays a model is given; shared by both models."""

    features: int
    classes: int

    def __post_init__(self) -> None:
        if type(self.features) is not int or self.features < 1:
            raise ParameterError(f"features must be an int >= 1; got {self.features!r}")
        if type(self.classes) is not int or self.classes < 2:
            raise ParameterError(f"classes must be an int >= 2; got {self.classes!r}")

    def check(self, size: int, params: F64, x: F64, y: I64 | None = None) -> None:
        if params.shape != (size,):
            raise ParameterError(f"params must have shape ({size},); got {params.shape}")
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ParameterError(f"x must have shape (B, {self.features}); got {x.shape}")
        if y is not None:
            if y.shape != (x.shape[0],):
                raise ParameterError(f"y must have shape ({x.shape[0]},); got {y.shape}")
            if y.size and (y.min() < 0 or y.max() >= self.classes):
                raise ParameterError(
                    f"labels must be in [0, {self.classes}); got {int(y.min())}..{int(y.max())}"
                )


def _mean_loss(z: F64, y: I64) -> float:
    if len(y) == 0:
        raise ParameterError("the loss of an empty batch is undefined; got B = 0")
    return float(_cross_entropy(z, y).mean())


@dataclass(frozen=True)
class SoftmaxRegression:
    """Multinomial logistic regression: ``logits = x W + b``.

    ``params`` is ``W`` (``features × classes``, row-major) followed by ``b``
    (``classes``). For one example, with ``g = softmax(z) - onehot(y)``:
    ``dl/dW = x gᵀ`` (an outer product) and ``dl/db = g``.
    """

    features: int
    classes: int

    def __post_init__(self) -> None:
        _Shapes(self.features, self.classes)

    @property
    def name(self) -> str:
        return "softmax"

    @property
    def size(self) -> int:
        return self.features * self.classes + self.classes

    def _unpack(self, params: F64) -> tuple[F64, F64]:
        split = self.features * self.classes
        return params[:split].reshape(self.features, self.classes), params[split:]

    def init(self, seed: Seed) -> F64:
        """All zeros: the loss is convex, so no symmetry needs breaking (``seed`` is unused)."""
        del seed
        return np.zeros(self.size, dtype=np.float64)

    def logits(self, params: F64, x: F64) -> F64:
        _Shapes(self.features, self.classes).check(self.size, params, x)
        w, b = self._unpack(params)
        result: F64 = x @ w + b
        return result

    def predict(self, params: F64, x: F64) -> I64:
        result: I64 = self.logits(params, x).argmax(axis=1).astype(np.int64)
        return result

    def loss(self, params: F64, x: F64, y: I64) -> float:
        _Shapes(self.features, self.classes).check(self.size, params, x, y)
        return _mean_loss(self.logits(params, x), y)

    def per_example_gradients(self, params: F64, x: F64, y: I64) -> F64:
        _Shapes(self.features, self.classes).check(self.size, params, x, y)
        g = _output_gradient(self.logits(params, x), y)
        grad_w = (x[:, :, None] * g[:, None, :]).reshape(len(y), -1)
        return np.concatenate([grad_w, g], axis=1)


@dataclass(frozen=True)
class Mlp:
    """One hidden layer of ``tanh`` units: ``logits = tanh(x W1 + b1) W2 + b2``.

    ``params`` is ``W1`` (``features × hidden``), ``b1`` (``hidden``), ``W2``
    (``hidden × classes``), ``b2`` (``classes``), each row-major. For one
    example, with ``h = tanh(x W1 + b1)``, ``g = softmax(z) - onehot(y)`` and
    ``a = (W2 g) ⊙ (1 - h²)``: ``dl/dW2 = h gᵀ``, ``dl/db2 = g``,
    ``dl/dW1 = x aᵀ``, ``dl/db1 = a``.
    """

    features: int
    classes: int
    hidden: int = 32

    def __post_init__(self) -> None:
        _Shapes(self.features, self.classes)
        if type(self.hidden) is not int or self.hidden < 1:
            raise ParameterError(f"hidden must be an int >= 1; got {self.hidden!r}")

    @property
    def name(self) -> str:
        return "mlp"

    @property
    def size(self) -> int:
        return (self.features + 1) * self.hidden + (self.hidden + 1) * self.classes

    def _unpack(self, params: F64) -> tuple[F64, F64, F64, F64]:
        f, h, c = self.features, self.hidden, self.classes
        a, b, d = f * h, f * h + h, f * h + h + h * c
        return params[:a].reshape(f, h), params[a:b], params[b:d].reshape(h, c), params[d:]

    def init(self, seed: Seed) -> F64:
        """Glorot-uniform weights from ``Xof(seed, Tag("learning.init.mlp"))``, zero biases.

        Each weight of a layer with ``n_in`` inputs and ``n_out`` outputs is
        uniform on ``[-r, r]``, ``r = sqrt(6 / (n_in + n_out))`` (Glorot and
        Bengio, AISTATS 2010, eq. 16).
        """
        f, h, c = self.features, self.hidden, self.classes
        u = _uniform_doubles(Xof(seed, Tag("learning.init.mlp")), f * h + h * c)
        w1 = (2.0 * u[: f * h] - 1.0) * math.sqrt(6.0 / (f + h))
        w2 = (2.0 * u[f * h :] - 1.0) * math.sqrt(6.0 / (h + c))
        return np.concatenate([w1, np.zeros(h), w2, np.zeros(c)])

    def _forward(self, params: F64, x: F64) -> tuple[F64, F64]:
        w1, b1, w2, b2 = self._unpack(params)
        hidden = np.tanh(x @ w1 + b1)
        logits: F64 = hidden @ w2 + b2
        return hidden, logits

    def logits(self, params: F64, x: F64) -> F64:
        _Shapes(self.features, self.classes).check(self.size, params, x)
        return self._forward(params, x)[1]

    def predict(self, params: F64, x: F64) -> I64:
        result: I64 = self.logits(params, x).argmax(axis=1).astype(np.int64)
        return result

    def loss(self, params: F64, x: F64, y: I64) -> float:
        _Shapes(self.features, self.classes).check(self.size, params, x, y)
        return _mean_loss(self._forward(params, x)[1], y)

    def per_example_gradients(self, params: F64, x: F64, y: I64) -> F64:
        _Shapes(self.features, self.classes).check(self.size, params, x, y)
        _, _, w2, _ = self._unpack(params)
        hidden, z = self._forward(params, x)
        g = _output_gradient(z, y)
        a = (g @ w2.T) * (1.0 - hidden * hidden)
        b = len(y)
        grad_w1 = (x[:, :, None] * a[:, None, :]).reshape(b, -1)
        grad_w2 = (hidden[:, :, None] * g[:, None, :]).reshape(b, -1)
        return np.concatenate([grad_w1, a, grad_w2, g], axis=1)


def softmax_regression(features: int, classes: int) -> Model:
    """Softmax regression on ``features`` inputs and ``classes`` classes.

    Raises:
        ParameterError: unless ``features >= 1`` and ``classes >= 2``.
    """
    return SoftmaxRegression(features, classes)


def mlp(features: int, classes: int, *, hidden: int = 32) -> Model:
    """A one-hidden-layer ``tanh`` MLP with ``hidden`` units.

    Raises:
        ParameterError: unless ``features >= 1``, ``classes >= 2`` and ``hidden >= 1``.
    """
    return Mlp(features, classes, hidden)


#: The model names :func:`make_model` accepts (the ``--model`` choices).
MODELS: tuple[str, ...] = ("softmax", "mlp")


def make_model(name: str, features: int, classes: int) -> Model:
    """The model called ``name`` (``"softmax"`` or ``"mlp"``, with default settings).

    Raises:
        ParameterError: for any other name, or bad ``features`` / ``classes``.
    """
    if name == "softmax":
        return softmax_regression(features, classes)
    if name == "mlp":
        return mlp(features, classes)
    raise ParameterError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")


def clip_rows(grads: F64, clip: float) -> F64:
    """Each row scaled to L2 norm ``<= clip``: ``g · min(1, clip / ‖g‖)``.

    Rows whose norm is already ``<= clip`` (including zero rows) are
    returned bit for bit unchanged. A longer row is scaled by
    ``clip / ‖g‖`` and then, if rounding left its computed norm
    (``np.linalg.norm(row)``) above ``clip``, shrunk by a few ulps more, so
    that every returned row's computed norm is ``<= clip`` (the sensitivity
    bound the noise is calibrated to). A new array is returned.

    Pre-conditions:
        - ``grads`` is a 2-D float64 array with finite entries and finite row norms;
        - ``clip`` is finite and ``> 0``.

    Raises:
        ParameterError: if a pre-condition fails.
    """
    if not (isinstance(clip, float | int) and math.isfinite(clip) and clip > 0):
        raise ParameterError(f"clip must be a finite number > 0; got {clip!r}")
    if grads.ndim != 2:
        raise ParameterError(f"grads must be a 2-D array (B, size); got shape {grads.shape}")
    norms = np.linalg.norm(grads, axis=1)
    if not np.isfinite(norms).all():
        row = int(np.flatnonzero(~np.isfinite(norms))[0])
        raise ParameterError(f"row {row} of grads has a non-finite entry or L2 norm")
    out = grads.copy()
    long = norms > clip
    out[long] *= (clip / norms[long])[:, None]
    # Rounding can leave a scaled row's norm an ulp or so above clip; shrink such rows by
    # factors 1 - 2^-52, 1 - 2^-51, ... until none is. The last factor, 1 - 2^0, is 0, so
    # this ends; in practice it takes at most a step or two.
    for k in range(-52, 1):
        over = np.flatnonzero(np.linalg.norm(out, axis=1) > clip)
        if over.size == 0:
            break
        out[over] *= 1.0 - 2.0**k
    return out


def accuracy(model: Model, params: F64, data: Dataset) -> float:
    """The fraction of ``data`` that ``model`` with ``params`` classifies correctly.

    Raises:
        ParameterError: if ``data`` is empty or its shape does not fit the model.
    """
    if len(data) == 0:
        raise ParameterError(f"accuracy of an empty dataset ({data.name}) is undefined")
    return float((model.predict(params, data.x) == data.y).mean())
