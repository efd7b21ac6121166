"""Weights for a layer stack: preset kernels, the trained MNIST network, an uploaded ``.npz`` — and presets.

Random (Kaiming-uniform) initialisation lives in :func:`core.layers.kaiming_uniform`. An ``.npz`` holds
``"<layer>.weight"`` ``(F, C/groups, KH, KW)`` and ``"<layer>.bias"`` ``(F,)`` per ``Conv2d`` — the keys of
``nn.Sequential.state_dict()`` — and is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from core import network
from core.kernels import get_preset
from core.layers import Conv2d, ConvParams, Layer, Params, StackError, check_params, kaiming_uniform
from core.stack_text import parse

MAX_NPZ_ARRAYS = 256

PRESET_TEXT: dict[str, tuple[str, str, tuple[int, int, int]]] = {
    # name: (description, nn.Sequential text, a typical input (C, H, W))
    "mnist": (
        "This repo's trained MNIST network: conv 5×5 (30 filters), ReLU, max pool 2×2",
        "nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2))",
        (1, 28, 28),
    ),
    "lenet5": (
        "LeNet-5's feature extractor (LeCun et al. 1998, ReLU and max pooling as commonly taught)",
        "nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), "
        "nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))",
        (1, 28, 28),
    ),
    "vgg_block": (
        "A VGG block: three 3×3 convolutions (padding 1) and a 2×2 max pool",
        "nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), "
        "nn.ReLU(), "
        "nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))",
        (3, 128, 128),
    ),
    "resnet_stem": (
        "ResNet's stem: conv 7×7 stride 2 padding 3, ReLU, max pool 3×3 stride 2 padding 1",
        "nn.Sequential(nn.Conv2d(3, 16, 7, stride=2, padding=3, bias=False), nn.ReLU(), "
        "nn.MaxPool2d(3, stride=2, padding=1))",
        (3, 224, 224),
    ),
    "alexnet": (
        "AlexNet's first layers: conv 11×11 stride 4, max pool 3×3 stride 2, conv 5×5 padding 2, max pool",
        "nn.Sequential(nn.Conv2d(3, 16, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, stride=2), "
        "nn.Conv2d(16, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, stride=2))",
        (3, 224, 224),
    ),
    "dilated": (
        "A dilated stack (dilation 1, 2, 4, 8): the field grows exponentially at full resolution",
        "nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=2, dilation=2), "
        "nn.ReLU(), nn.Conv2d(8, 8, 3, padding=4, dilation=4), nn.ReLU(), "
        "nn.Conv2d(8, 8, 3, padding=8, dilation=8))",
        (3, 128, 128),
    ),
}
"""The preset stacks (channel counts kept small so that every map of a photo stays quick to draw)."""


def preset_layers(name: str) -> list[Layer]:
    """The layers of preset ``name`` (see :data:`PRESET_TEXT`)."""
    if name not in PRESET_TEXT:
        raise ValueError(f"unknown stack preset {name!r}; known presets: {', '.join(PRESET_TEXT)}")
    return parse(PRESET_TEXT[name][1])


def mnist_params(layers: Sequence[Layer]) -> Params:
    """The trained MNIST network's conv weights for a stack whose first layer is its ``Conv2d(1, 30, 5)``.

    Raises
    ------
    StackError
        When layer 0 is not ``Conv2d(1, 30, 5)`` with a bias, or another layer is a ``Conv2d`` (the trained
        network has only one).
    """
    trained, _ = network.load_weights()
    weight, bias = trained["conv_weight"], trained["conv_bias"]
    first = layers[0] if layers else None
    if not isinstance(first, Conv2d) or first.weight_shape != weight.shape or not first.bias:
        raise StackError(
            0,
            "weights",
            f"the trained MNIST weights fit Conv2d(1, {weight.shape[0]}, {weight.shape[2]}) as layer 0",
        )
    params: Params = [ConvParams(weight, bias)]
    for index, layer in enumerate(layers[1:], start=1):
        if isinstance(layer, Conv2d):
            raise StackError(index, "weights", "the trained MNIST network has one convolution only (layer 0)")
        params.append(None)
    return params


def preset_kernel_params(
    layers: Sequence[Layer], kernels: dict[int, Sequence[str]], seed: int = 0, dtype: Any = np.float32
) -> Params:
    """Random weights, except the layers in ``kernels`` whose filters are preset kernels.

    Parameters
    ----------
    kernels : dict of int -> sequence of str
        Layer index → preset names, used in turn for the filters (cycled); each kernel is repeated on every
        input channel of the filter's group and divided by that count, and the bias is 0.
    """
    params = kaiming_uniform(layers, seed, dtype)
    for index, names in kernels.items():
        layer = layers[index] if 0 <= index < len(layers) else None
        if not isinstance(layer, Conv2d):
            raise StackError(index, "kernels", "preset kernels can only be given to a Conv2d layer")
        if not names:
            raise StackError(index, "kernels", "give at least one preset name")
        try:
            planes = [np.asarray(get_preset(name).weights) for name in names]
        except ValueError as exc:
            raise StackError(index, "kernels", str(exc)) from None
        for name, plane in zip(names, planes, strict=True):
            if plane.shape != layer.kernel_size:
                raise StackError(
                    index,
                    "kernels",
                    f"preset {name!r} is {plane.shape[0]}×{plane.shape[1]} but the layer's kernel is "
                    f"{layer.kernel_size[0]}×{layer.kernel_size[1]}",
                )
        per_group = layer.in_channels // layer.groups
        weight = np.stack([planes[f % len(planes)] for f in range(layer.out_channels)])[:, None] / per_group
        weight = np.broadcast_to(weight, layer.weight_shape).astype(dtype)
        bias = np.zeros(layer.out_channels, dtype=dtype) if layer.bias else None
        params[index] = ConvParams(np.ascontiguousarray(weight), bias)
    return params


def params_from_npz(layers: Sequence[Layer], data: bytes, dtype: Any = np.float32) -> Params:
    """Weights from ``.npz`` bytes (``"<layer>.weight"``, ``"<layer>.bias"``), never unpickling.

    Raises
    ------
    StackError
        Not an npz, object arrays, a missing/extra key, a wrong shape or a non-finite value.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if len(archive.files) > MAX_NPZ_ARRAYS:
                raise StackError(
                    None, "weights", f"the .npz holds {len(archive.files)} arrays; at most {MAX_NPZ_ARRAYS}"
                )
            arrays = {name: archive[name] for name in archive.files}
    except StackError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise StackError(None, "weights", f"could not read the .npz (no pickle allowed): {exc}") from None
    params: Params = []
    expected: set[str] = set()
    for index, layer in enumerate(layers):
        if not isinstance(layer, Conv2d):
            params.append(None)
            continue
        keys = [f"{index}.weight"] + ([f"{index}.bias"] if layer.bias else [])
        expected.update(keys)
        missing = [key for key in keys if key not in arrays]
        if missing:
            raise StackError(index, "weights", f"the .npz has no {', '.join(missing)}")
        found = [arrays[key] for key in keys]
        if any(array.dtype.kind not in "fiu" for array in found):
            raise StackError(index, "weights", "weights must be numbers")
        weight = found[0].astype(dtype)
        bias = found[1].astype(dtype) if layer.bias else None
        params.append(ConvParams(weight, bias))
    extra = sorted(set(arrays) - expected)
    if extra:
        raise StackError(None, "weights", f"the .npz has arrays no layer uses: {', '.join(extra[:5])}")
    check_params(layers, params)
    return params
