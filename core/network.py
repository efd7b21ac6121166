"""The "simple ConvNet" for MNIST, built only from convlens' own core functions.

Architecture (the classic walk-through, PyTorch layouts so a student can copy the weights into torch)::

    input  (N, 1, 28, 28)  pixels / 255
    conv   (N, 30, 24, 24) 30 filters 5×5, stride 1, no padding      core.conv.conv2d
    relu   (N, 30, 24, 24)                                          core.activations.relu
    pool   (N, 30, 12, 12) max 2×2, stride 2                        core.pool.max_pool2d
    hidden (N, 100)        affine (flattened (c, h, w) order, as torch.flatten) then ReLU
    output (N, 10)         affine then softmax                      core.activations.softmax

Parameters are a dict of arrays (PyTorch layouts: ``conv_weight`` (F, C, KH, KW); affine weights
``(out_features, in_features)`` with ``y = x Wᵀ + b`` as ``torch.nn.Linear``):

=================  =====================  ==================================
name               shape                  torch equivalent
=================  =====================  ==================================
``conv_weight``    (30, 1, 5, 5)          ``nn.Conv2d(1, 30, 5).weight``
``conv_bias``      (30,)                  ``nn.Conv2d(1, 30, 5).bias``
``hidden_weight``  (100, 4320)            ``nn.Linear(4320, 100).weight``
``hidden_bias``    (100,)
``output_weight``  (10, 100)              ``nn.Linear(100, 10).weight``
``output_bias``    (10,)
=================  =====================  ==================================

Every size comes from :mod:`core.shapes`. The backward pass is written beside the forward pass and only
returns gradients; :class:`Adam` is the one thing that changes parameters.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from core.activations import log_softmax, relu, relu_backward, softmax
from core.conv import conv2d, conv2d_backward
from core.pool import max_pool2d, max_pool2d_backward
from core.shapes import conv_output_size, pool_output_size

Params = dict[str, np.ndarray]

PARAM_NAMES = ("conv_weight", "conv_bias", "hidden_weight", "hidden_bias", "output_weight", "output_bias")
LAYER_NAMES = ("conv", "relu", "pool", "hidden", "output")

WEIGHTS_PATH = Path(__file__).resolve().parents[1] / "data" / "weights" / "simple_convnet.npz"
"""The shipped, trained weights (float32)."""

METADATA_KEY = "metadata"

POOL_SIZE = 2
"""Max pool kernel and stride (2×2, stride 2)."""


@dataclass(frozen=True)
class Architecture:
    """Sizes of the simple ConvNet. The defaults are the MNIST network; tests use smaller ones.

    Attributes
    ----------
    input_shape : (C, H, W)
    filters, kernel_size : conv layer (stride 1, no padding); the max pool is always 2×2, stride 2
    hidden : units of the hidden affine layer
    classes : outputs
    """

    input_shape: tuple[int, int, int] = (1, 28, 28)
    filters: int = 30
    kernel_size: int = 5
    hidden: int = 100
    classes: int = 10

    @property
    def conv_shape(self) -> tuple[int, int, int]:
        """(F, OH, OW) of the conv (and ReLU) output."""
        _, h, w = self.input_shape
        oh, ow = conv_output_size((h, w), self.kernel_size, stride=1, padding=0)
        return (self.filters, oh, ow)

    @property
    def pool_shape(self) -> tuple[int, int, int]:
        """(F, PH, PW) of the pooled maps."""
        f, oh, ow = self.conv_shape
        ph, pw = pool_output_size((oh, ow), POOL_SIZE, stride=POOL_SIZE)
        return (f, ph, pw)

    @property
    def flat_size(self) -> int:
        """Inputs of the hidden layer: F·PH·PW (4320 for MNIST)."""
        f, ph, pw = self.pool_shape
        return f * ph * pw

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every parameter, in :data:`PARAM_NAMES` order."""
        c = self.input_shape[0]
        k = self.kernel_size
        return {
            "conv_weight": (self.filters, c, k, k),
            "conv_bias": (self.filters,),
            "hidden_weight": (self.hidden, self.flat_size),
            "hidden_bias": (self.hidden,),
            "output_weight": (self.classes, self.hidden),
            "output_bias": (self.classes,),
        }

    def layer_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        """Activation shape of every layer for a batch of ``batch`` images."""
        return {
            "input": (batch, *self.input_shape),
            "conv": (batch, *self.conv_shape),
            "relu": (batch, *self.conv_shape),
            "pool": (batch, *self.pool_shape),
            "hidden": (batch, self.hidden),
            "output": (batch, self.classes),
        }


MNIST_ARCHITECTURE = Architecture()


def images_to_input(images: Any, dtype: Any = np.float32) -> np.ndarray:
    """MNIST uint8 images to network input.

    Parameters
    ----------
    images : ndarray, shape (N, H, W) or (H, W), uint8 0..255 (ink bright)

    Returns
    -------
    ndarray, shape (N, 1, H, W), values in [0, 1]

    Notes
    -----
    ``x = pixel / 255`` (the API's grayscale convention); no mean/std normalisation.
    """
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W) or (H, W), got {images.shape}")
    return (images[:, None, :, :] / np.asarray(255.0, dtype=dtype)).astype(dtype, copy=False)


def init_params(
    rng: np.random.Generator, architecture: Architecture = MNIST_ARCHITECTURE, dtype: Any = np.float32
) -> Params:
    """Random initial parameters: He-normal weights, zero biases.

    Parameters
    ----------
    rng : numpy.random.Generator
        Seeded generator; the same seed gives the same parameters.
    architecture : Architecture
    dtype : float32 or float64

    Returns
    -------
    dict of str -> ndarray
        Shapes as :meth:`Architecture.param_shapes`.

    Notes
    -----
    He initialisation: ``w ~ N(0, 2 / fan_in)`` with fan_in = C·KH·KW for the conv and in_features for the
    affine layers (suited to the ReLU that follows).
    """
    params: Params = {}
    for name, shape in architecture.param_shapes().items():
        if name.endswith("_bias"):
            params[name] = np.zeros(shape, dtype=dtype)
        else:
            fan_in = int(np.prod(shape[1:]))
            params[name] = (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)
    return params


def architecture_of(params: Params, side: int = 28) -> Architecture:
    """The :class:`Architecture` that ``params`` fit (checked against every shape).

    Parameters
    ----------
    params : dict of str -> ndarray
    side : int
        Input height and width (not stored in the parameters; 28 for MNIST).

    Raises
    ------
    ValueError
        A parameter is missing, extra, or has a shape that does not fit the others.
    """
    missing = [n for n in PARAM_NAMES if n not in params]
    extra = sorted(set(params) - set(PARAM_NAMES))
    if missing or extra:
        raise ValueError(
            f"parameters must be exactly {list(PARAM_NAMES)}; missing {missing}, unexpected {extra}"
        )
    conv_weight = params["conv_weight"]
    if conv_weight.ndim != 4 or conv_weight.shape[2] != conv_weight.shape[3]:
        raise ValueError(f"conv_weight must have shape (F, C, K, K), got {conv_weight.shape}")
    f, c, k, _ = conv_weight.shape
    hidden, flat = params["hidden_weight"].shape if params["hidden_weight"].ndim == 2 else (-1, -1)
    classes = params["output_weight"].shape[0] if params["output_weight"].ndim == 2 else -1
    architecture = Architecture((c, side, side), f, k, hidden, classes)
    expected = architecture.param_shapes()
    wrong = {n: (params[n].shape, expected[n]) for n in PARAM_NAMES if params[n].shape != expected[n]}
    if wrong or flat != architecture.flat_size:
        details = "; ".join(f"{n} is {got}, expected {want}" for n, (got, want) in wrong.items())
        raise ValueError(f"parameter shapes do not fit a {side}×{side} simple ConvNet: {details}")
    return architecture


class Forward(NamedTuple):
    """Every activation of one forward pass (what the API shows, and what the backward pass reads).

    Attributes
    ----------
    input : ndarray, shape (N, C, H, W)
    conv : ndarray, shape (N, F, OH, OW)        conv + bias, before ReLU
    relu : ndarray, shape (N, F, OH, OW)
    pool : ndarray, shape (N, F, PH, PW)
    pool_indices : ndarray of int64, shape (N, F, PH, PW)   arg-max of each window, flat ``h·OW + w``
    hidden_pre : ndarray, shape (N, hidden)     affine, before ReLU
    hidden : ndarray, shape (N, hidden)         after ReLU
    logits : ndarray, shape (N, classes)
    probs : ndarray, shape (N, classes)         softmax(logits)
    """

    input: np.ndarray
    conv: np.ndarray
    relu: np.ndarray
    pool: np.ndarray
    pool_indices: np.ndarray
    hidden_pre: np.ndarray
    hidden: np.ndarray
    logits: np.ndarray
    probs: np.ndarray


def _check_input(params: Params, x: Any) -> np.ndarray:
    x = np.asarray(x)
    dtype = params["conv_weight"].dtype
    if x.ndim != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got shape {x.shape}")
    return x.astype(dtype, copy=False)


def forward(params: Params, x: Any) -> tuple[np.ndarray, Forward]:
    """Run the network.

    Parameters
    ----------
    params : dict of str -> ndarray
        As :func:`init_params` / :func:`load_weights` return.
    x : ndarray, shape (N, C, H, W)
        Images scaled to [0, 1] (MNIST: pixels / 255, ink bright). Cast to the parameters' dtype.

    Returns
    -------
    probs : ndarray, shape (N, classes)
        Softmax probabilities; each row sums to 1.
    cache : Forward
        Every layer's activation.

    Notes
    -----
    ``conv = x ⋆ W₁ + b₁``, ``relu = max(conv, 0)``, ``pool = maxpool₂ₓ₂(relu)``,
    ``hidden = max(flatten(pool) W₂ᵀ + b₂, 0)``, ``probs = softmax(hidden W₃ᵀ + b₃)``.
    """
    x = _check_input(params, x)
    conv = conv2d(x, params["conv_weight"], params["conv_bias"])
    relu_out = relu(conv)
    pool, pool_indices = max_pool2d(relu_out, POOL_SIZE, stride=POOL_SIZE, return_indices=True)
    flat = pool.reshape(pool.shape[0], -1)
    hidden_pre = flat @ params["hidden_weight"].T + params["hidden_bias"]
    hidden = relu(hidden_pre)
    logits = hidden @ params["output_weight"].T + params["output_bias"]
    probs = softmax(logits, axis=-1)
    return probs, Forward(x, conv, relu_out, pool, pool_indices, hidden_pre, hidden, logits, probs)


def predict(params: Params, x: Any, batch_size: int = 500) -> np.ndarray:
    """Probabilities for many images, computed in batches.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)

    Returns
    -------
    ndarray, shape (N, classes)
    """
    x = np.asarray(x)
    out = [forward(params, x[i : i + batch_size])[0] for i in range(0, x.shape[0], batch_size)]
    return np.concatenate(out, axis=0)


def accuracy(params: Params, x: Any, labels: Any, batch_size: int = 500) -> float:
    """Fraction of ``labels`` (shape (N,)) that the arg-max of :func:`predict` gets right."""
    labels = np.asarray(labels)
    return float(np.mean(predict(params, x, batch_size).argmax(axis=1) == labels))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy ``-1/N Σ log softmax(logits)[n, label_n]`` (stable, via log-softmax)."""
    n = logits.shape[0]
    return float(-log_softmax(logits, axis=-1)[np.arange(n), labels].mean())


class LossAndGrads(NamedTuple):
    """Result of :func:`loss_and_grads`."""

    loss: float
    grads: Params
    probs: np.ndarray


def backward(params: Params, cache: Forward, labels: np.ndarray) -> Params:
    """Gradients of the mean cross-entropy with respect to every parameter. Pure.

    Parameters
    ----------
    params : dict of str -> ndarray
    cache : Forward
        From :func:`forward` on the same parameters.
    labels : ndarray, shape (N,), ints in [0, classes)

    Returns
    -------
    dict of str -> ndarray
        Same keys and shapes as ``params``.

    Notes
    -----
    ``∂L/∂logits = (probs − onehot(labels)) / N``; an affine layer ``y = x Wᵀ + b`` passes back
    ``∂x = ∂y W``, ``∂W = ∂yᵀ x``, ``∂b = Σₙ ∂y``; ReLU passes ``∂y · [x > 0]``; the max pool routes each
    gradient to the arg-max of its window; the conv layer uses :func:`core.conv.conv2d_backward`.
    """
    n = cache.input.shape[0]
    grad_logits = cache.probs.copy()
    grad_logits[np.arange(n), labels] -= 1
    grad_logits /= n
    grads: Params = {}
    grads["output_weight"] = grad_logits.T @ cache.hidden
    grads["output_bias"] = grad_logits.sum(axis=0)
    grad_hidden = grad_logits @ params["output_weight"]
    grad_hidden_pre = relu_backward(grad_hidden, cache.hidden_pre)
    flat = cache.pool.reshape(n, -1)
    grads["hidden_weight"] = grad_hidden_pre.T @ flat
    grads["hidden_bias"] = grad_hidden_pre.sum(axis=0)
    grad_pool = (grad_hidden_pre @ params["hidden_weight"]).reshape(cache.pool.shape)
    grad_relu = max_pool2d_backward(
        grad_pool, cache.relu, POOL_SIZE, stride=POOL_SIZE, indices=cache.pool_indices
    )
    grad_conv = relu_backward(grad_relu, cache.conv)
    _, grads["conv_weight"], grads["conv_bias"] = conv2d_backward(
        grad_conv, cache.input, params["conv_weight"]
    )
    dtype = params["conv_weight"].dtype
    return {name: grads[name].astype(dtype, copy=False) for name in PARAM_NAMES}


def loss_and_grads(params: Params, x: Any, labels: Any) -> LossAndGrads:
    """Forward, loss and backward in one call.

    Parameters
    ----------
    params : dict of str -> ndarray
    x : ndarray, shape (N, C, H, W)
    labels : ndarray, shape (N,)

    Returns
    -------
    LossAndGrads
        ``loss`` (mean cross-entropy, float), ``grads`` (dict like ``params``), ``probs`` (N, classes).
    """
    labels = np.asarray(labels).astype(np.intp)
    probs, cache = forward(params, x)
    loss = cross_entropy(cache.logits, labels)
    return LossAndGrads(loss, backward(params, cache, labels), probs)


class Adam:
    """Adam optimizer (Kingma & Ba, 2015). The only code here that changes parameters.

    Parameters
    ----------
    params : dict of str -> ndarray
        Updated in place by :meth:`step`.
    lr, beta1, beta2, eps : float

    Notes
    -----
    ``m ← β₁ m + (1 − β₁) g``, ``v ← β₂ v + (1 − β₂) g²``,
    ``θ ← θ − lr · m̂ / (√v̂ + ε)`` with ``m̂ = m / (1 − β₁ᵗ)``, ``v̂ = v / (1 − β₂ᵗ)`` (as ``torch.optim.Adam``).
    """

    def __init__(
        self, params: Params, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        self.params = params
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: Params) -> None:
        """Apply one update with ``grads`` (same keys and shapes as the parameters)."""
        self.t += 1
        correction1 = 1.0 - self.beta1**self.t
        correction2 = 1.0 - self.beta2**self.t
        for name, param in self.params.items():
            g = grads[name]
            m, v = self.m[name], self.v[name]
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g * g
            update = (self.lr / correction1) * m / (np.sqrt(v / correction2) + self.eps)
            param -= update.astype(param.dtype, copy=False)


# --------------------------------------------------------------------------------------------------
# weights on disk: .npz (no pickle), metadata as a JSON string
# --------------------------------------------------------------------------------------------------


def save_weights(
    path: str | os.PathLike[str], params: Params, metadata: dict[str, Any] | None = None
) -> None:
    """Write ``params`` and ``metadata`` to an ``.npz`` file (no pickle).

    Parameters
    ----------
    path : str or path-like
    params : dict of str -> ndarray
        Checked with :func:`architecture_of`.
    metadata : dict, optional
        JSON-serialisable; stored as a 1-element string array under the key ``"metadata"``.
    """
    architecture_of(params)
    text = json.dumps(metadata or {}, sort_keys=True)
    arrays: dict[str, np.ndarray] = {name: np.ascontiguousarray(params[name]) for name in PARAM_NAMES}
    arrays[METADATA_KEY] = np.array([text])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def load_weights(path: str | os.PathLike[str] = WEIGHTS_PATH) -> tuple[Params, dict[str, Any]]:
    """Read weights written by :func:`save_weights`.

    Parameters
    ----------
    path : str or path-like, optional
        Default: the shipped ``data/weights/simple_convnet.npz``.

    Returns
    -------
    params : dict of str -> ndarray
        float32 or float64 as stored.
    metadata : dict

    Raises
    ------
    ValueError
        The file holds pickled/object arrays (refused: ``allow_pickle=False``), non-float parameters, or
        parameters that do not fit the network.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as exc:
        raise ValueError(
            f"{path}: refusing to load (object arrays need pickle, which is not allowed): {exc}"
        ) from None
    metadata_array = arrays.pop(METADATA_KEY, None)
    metadata: dict[str, Any] = {}
    if metadata_array is not None:
        if metadata_array.dtype.kind != "U" or metadata_array.size != 1:
            raise ValueError(f"{path}: metadata must be one JSON string")
        metadata = json.loads(str(metadata_array.reshape(())[()]))
    for name, array in arrays.items():
        if array.dtype not in (np.float32, np.float64):
            raise ValueError(f"{path}: parameter {name} has dtype {array.dtype}, expected float32 or float64")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{path}: parameter {name} holds non-finite values")
    architecture_of(arrays)
    return arrays, metadata


def architecture_dict(architecture: Architecture = MNIST_ARCHITECTURE) -> dict[str, Any]:
    """The architecture as plain data (for metadata and the API)."""
    return asdict(architecture)
