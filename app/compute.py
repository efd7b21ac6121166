"""From a validated request to the arrays ``core`` computes on, with every combination checked.

:func:`prepare` loads the image, resolves the weight form into ``(F, C/groups, KH, KW)`` float32,
checks the whole layer with :func:`core.shapes.explain_conv` (raising a 422 that names the field),
and enforces the work budget. :func:`forward` then runs convolution → activation → pooling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.errors import BodyError, field_for
from app.image_source import load_array
from app.schemas import ConvRequest, PoolSpec, as_tuple
from app.settings import Settings
from core.activations import relu
from core.conv import conv2d
from core.kernels import PRESETS
from core.pool import avg_pool2d, max_pool2d
from core.shapes import Explanation, explain_conv, explain_pool


@dataclass
class Prepared:
    """A request resolved to arrays and checked.

    Attributes
    ----------
    x : ndarray, shape (1, C, H, W), float32
    weight : ndarray, shape (F, C/groups, KH, KW), float32
    bias : ndarray, shape (F,), float32, or None
    stride, padding, dilation
        In the forms ``core`` takes (tuples for pairs).
    groups : int
    padding_mode : str
    explanation : Explanation
        From :func:`core.shapes.explain_conv`.
    timing : dict
        Milliseconds per stage so far.
    """

    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None
    stride: Any
    padding: Any
    dilation: Any
    groups: int
    explanation: Explanation
    timing: dict[str, float] = field(default_factory=dict)
    padding_mode: str = "zeros"

    @property
    def conv_kwargs(self) -> dict[str, Any]:
        """``stride``, ``padding``, ``dilation``, ``groups``, ``padding_mode`` as keyword arguments for
        ``core``."""
        return {
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "padding_mode": self.padding_mode,
        }

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(1, F, OH, OW)``."""
        n, f, oh, ow = self.explanation.output_shape
        return n, f, oh, ow


def _preset(name: str) -> np.ndarray:
    preset = PRESETS.get(name)
    if preset is None:
        raise BodyError("weight", f"unknown kernel {name!r}; known kernels: {', '.join(PRESETS)}")
    return np.asarray(preset.weights, dtype=np.float32)


def resolve_weight(spec: Any, channels: int, groups: int) -> np.ndarray:
    """Any accepted weight form → ``(F, C/groups, KH, KW)`` float32.

    Parameters
    ----------
    spec : str, list of str, (KH, KW) nested list or (F, C/groups, KH, KW) nested list
        A preset name or a (KH, KW) kernel is one filter whose kernel is repeated on every input channel
        of its group; a list of preset names gives one filter per name.
    channels : int
        Input channels C.
    groups : int

    Returns
    -------
    ndarray, shape (F, C/groups, KH, KW), float32
    """
    per_group = max(channels // groups, 1)
    if isinstance(spec, str):
        kernel = _preset(spec)
        return np.ascontiguousarray(np.broadcast_to(kernel, (1, per_group, *kernel.shape)))
    if spec and isinstance(spec[0], str):
        kernels = [_preset(name) for name in spec]
        sizes = {k.shape for k in kernels}
        if len(sizes) > 1:
            described = ", ".join(
                f"{name} {k.shape[0]}×{k.shape[1]}" for name, k in zip(spec, kernels, strict=False)
            )
            raise BodyError("weight", f"presets in one request must have one size, got {described}")
        stacked = np.stack(kernels)[:, None]
        return np.ascontiguousarray(np.broadcast_to(stacked, (len(kernels), per_group, *kernels[0].shape)))
    array = np.asarray(spec, dtype=np.float32)
    if array.ndim == 2:
        return np.ascontiguousarray(np.broadcast_to(array, (1, per_group, *array.shape)))
    if array.ndim == 4:
        return array
    raise BodyError(
        "weight", f"weight must be (KH, KW) or (F, C/groups, KH, KW), got {array.ndim} dimensions"
    )


def check_budget(explanation: Explanation, settings: Settings) -> None:
    """Refuse (422) a convolution above the work or memory budget, saying what to reduce."""
    macs = int(explanation.facts["macs"])
    if macs > settings.max_macs:
        raise BodyError(
            "max_side",
            f"this convolution needs {macs:,} multiply-adds, more than the limit of {settings.max_macs:,} "
            "per request; reduce max_side (image size), the number of filters or the kernel size, or raise "
            "the stride",
        )
    col_bytes = int(explanation.facts["im2col_bytes"])
    if col_bytes > settings.max_im2col_bytes:
        raise BodyError(
            "max_side",
            f"the im2col matrix would take {col_bytes:,} bytes, more than the limit of "
            f"{settings.max_im2col_bytes:,}; reduce max_side (image size), the kernel size, the dilation or "
            "the padding, or raise the stride",
        )


def explain_or_422(call: Any, *args: Any, field_name: str | None = None, **kwargs: Any) -> Any:
    """Run a ``core.shapes`` check, turning its ``ValueError`` into a 422 about the right field."""
    try:
        return call(*args, **kwargs)
    except ValueError as exc:
        message = str(exc)
        raise BodyError(field_name or field_for(message), message) from None


def prepare(request: ConvRequest, settings: Settings) -> Prepared:
    """Load the image, resolve the weights and check the whole layer and the budget.

    Raises
    ------
    ApiError
        404 unknown image, 410 corrupt stored image.
    BodyError
        422 for an impossible combination or work above the budget.
    """
    start = time.perf_counter()
    x = load_array(request.image, request.color, request.max_side, settings)
    load_ms = (time.perf_counter() - start) * 1000
    channels = x.shape[1]
    weight = resolve_weight(request.weight, channels, request.groups)
    bias = None
    if request.bias is not None:
        if len(request.bias) != weight.shape[0]:
            raise BodyError(
                "bias",
                f"bias has {len(request.bias)} values but there are {weight.shape[0]} filters; give one each",
            )
        bias = np.asarray(request.bias, dtype=np.float32)
    stride, padding, dilation = (
        as_tuple(request.stride),
        as_tuple(request.padding),
        as_tuple(request.dilation),
    )
    explanation = explain_or_422(
        explain_conv,
        x.shape,
        weight.shape,
        stride,
        padding,
        dilation,
        request.groups,
        bias=bias is not None,
        padding_mode=request.padding_mode,
    )
    check_budget(explanation, settings)
    return Prepared(
        x=x,
        weight=weight,
        bias=bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=request.groups,
        explanation=explanation,
        timing={"load": load_ms},
        padding_mode=request.padding_mode,
    )


@dataclass
class Forward:
    """Every stage of convolution → activation → pooling.

    Attributes
    ----------
    pre_activation : ndarray, shape (1, F, OH, OW)
        Convolution plus bias.
    conv : ndarray, shape (1, F, OH, OW)
        After the activation (the maps the page shows).
    pooled : ndarray, shape (1, F, PH, PW), or None
    argmax : ndarray of int64, shape (1, F, PH, PW), or None
        Max pooling only: flat index ``oh·OW + ow`` into the conv map.
    pool_explanation : Explanation or None
    """

    pre_activation: np.ndarray
    conv: np.ndarray
    pooled: np.ndarray | None = None
    argmax: np.ndarray | None = None
    pool_explanation: Explanation | None = None


def pool_args(pool: PoolSpec) -> dict[str, Any]:
    """The pooling keyword arguments ``core`` takes."""
    return {
        "kernel_size": as_tuple(pool.kernel_size),
        "stride": as_tuple(pool.stride),
        "padding": as_tuple(pool.padding),
        "ceil_mode": pool.ceil_mode,
    }


def forward(
    prepared: Prepared,
    activation: str,
    pool: PoolSpec | None,
    timing: dict[str, float],
    pre: Callable[[], np.ndarray] | None = None,
) -> Forward:
    """Convolution (``core.conv.conv2d``), activation, then pooling; timings added to ``timing``.

    ``pre``, when given, returns the convolution + bias already computed (a cached layer's).
    """
    start = time.perf_counter()
    if pre is not None:
        result_pre = pre()
    else:
        result_pre = conv2d(prepared.x, prepared.weight, prepared.bias, **prepared.conv_kwargs)
    out = relu(result_pre) if activation == "relu" else result_pre
    timing["conv"] = (time.perf_counter() - start) * 1000
    result = Forward(pre_activation=result_pre, conv=out)
    if pool is None:
        timing["pool"] = 0.0
        return result
    start = time.perf_counter()
    args = pool_args(pool)
    result.pool_explanation = explain_or_422(
        explain_pool,
        out.shape,
        args["kernel_size"],
        args["stride"],
        args["padding"],
        1,
        args["ceil_mode"],
        field_name="pool",
    )
    if pool.mode == "max":
        result.pooled, result.argmax = max_pool2d(out, return_indices=True, **args)
    else:
        result.pooled = avg_pool2d(out, count_include_pad=pool.count_include_pad, **args)
    timing["pool"] = (time.perf_counter() - start) * 1000
    return result
