"""Receptive fields of a layer stack: theoretical (size, jump, offset; one unit's box) and effective.

Theoretical field, per axis, as in A. Araujo, W. Norris and J. Sim, "Computing Receptive Fields of
Convolutional Neural Networks", Distill (2019). With layer ``l`` having effective kernel
``k'_l = (k_l − 1)·d_l + 1``, stride ``s_l`` and leading (top/left) padding ``p_l``::

    j_l = j_{l−1} · s_l                    jump: input pixels between neighbouring units (j_0 = 1)
    r_l = r_{l−1} + (k'_l − 1) · j_{l−1}   size (r_0 = 1)
    u_l = u_{l−1} − p_l · j_{l−1}          input coordinate of the first unit's left edge (u_0 = 0)

so unit ``i`` of layer ``l`` reads input pixels ``[u_l + i·j_l, u_l + i·j_l + r_l − 1]`` and its centre is
``u_l + i·j_l + (r_l − 1)/2``. A ReLU is the 1×1 window. Only the leading padding moves the offset, so
asymmetric padding is exact; pooling is a window like any other.

That box may hang into the padding, and a unit may not read all of it: a window that touches the padding
of an intermediate map, a ceil-mode window past the end, a stride larger than its kernel, or a dilation
that skips pixels. :func:`unit_box` therefore also propagates the exact set of input rows and columns
the unit depends on (1-D masks, walked from the unit down to the input); its bounding box is what the
gradient of the unit is non-zero on (all-one weights, positive input, average pooling).

Effective field: W. Luo, Y. Li, R. Urtasun and R. Zemel, "Understanding the Effective Receptive Field in
Deep Convolutional Neural Networks", NeurIPS (2016): ``|∂ unit / ∂ input|`` summed over input channels,
normalised to sum 1; its radius is the half-side of the smallest square around the unit's centre holding
95 % of that mass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.layers import Layer, Pair, ReLU, Window, windows

ERF_MASS = 0.95


@dataclass(frozen=True)
class AxisField:
    """One axis of one layer's receptive field (input coordinates are pixels of the stack's input).

    Attributes
    ----------
    size : int
        Output length of this layer along the axis.
    kernel, stride, dilation, pad_lo, pad_hi : int
        The layer's window along the axis (``pad_lo`` = top/left).
    r : int
        Receptive-field size in input pixels.
    j : int
        Jump: input pixels between neighbouring units.
    start : int
        Input coordinate of unit 0's first pixel (negative: it starts in the padding).
    centre : float
        ``start + (r − 1) / 2``: where unit 0 is centred (Distill's offset of the first centre).
    """

    size: int
    kernel: int
    stride: int
    dilation: int
    pad_lo: int
    pad_hi: int
    r: int
    j: int
    start: int
    centre: float


@dataclass(frozen=True)
class LayerField:
    """The theoretical field after one layer: ``height`` and ``width`` :class:`AxisField`."""

    index: int
    name: str
    height: AxisField
    width: AxisField

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return {
            "index": self.index,
            "name": self.name,
            "height": asdict(self.height),
            "width": asdict(self.width),
        }


def _axis(window: Window, axis: int, previous: tuple[int, int, int]) -> AxisField:
    r, j, start = previous
    eff = window.effective[axis]
    r = r + (eff - 1) * j
    start = start - window.pad_lo[axis] * j
    j = j * window.stride[axis]
    return AxisField(
        size=window.output[axis],
        kernel=window.kernel[axis],
        stride=window.stride[axis],
        dilation=window.dilation[axis],
        pad_lo=window.pad_lo[axis],
        pad_hi=window.pad_hi[axis],
        r=r,
        j=j,
        start=start,
        centre=start + (r - 1) / 2,
    )


def field_table(layers: Sequence[Layer], input_size: Pair) -> list[LayerField]:
    """The receptive field after every layer (Distill's recurrence), per axis.

    Parameters
    ----------
    layers : sequence of Layer
    input_size : (H, W)

    Returns
    -------
    list of LayerField
        One per layer.
    """
    rows = []
    state = [(1, 1, 0), (1, 1, 0)]
    for index, (layer, window) in enumerate(zip(layers, windows(layers, input_size), strict=True)):
        axes = [_axis(window, axis, state[axis]) for axis in (0, 1)]
        state = [(a.r, a.j, a.start) for a in axes]
        rows.append(LayerField(index, layer.name, axes[0], axes[1]))
    return rows


def field_warnings(layers: Sequence[Layer], input_size: Pair) -> list[str]:
    """Sentences about layers that add no context or that skip input pixels.

    - *unproductive* (in the sense of Richter et al.'s receptive-field analysis, the RFA toolbox): every unit
      entering the layer already sees more than the padded input (the image plus the first layer's
      padding), so the layer can widen nothing;
    - a stride larger than the (dilated) kernel: rows/columns of the layer's input are never read;
    - taps further apart than the field of the units they read (a dilation larger than what the layers below
      cover): the unit's field has holes (the gridding artefact of dilated stacks).
    """
    out: list[str] = []
    table = field_table(layers, input_size)
    wins = windows(layers, input_size)
    padded = [n + (wins[0].pad_lo[a] + wins[0].pad_hi[a] if wins else 0) for a, n in enumerate(input_size)]
    previous = [(1, 1), (1, 1)]  # (r, j) of the units entering the layer
    for index, (layer, row, window) in enumerate(zip(layers, table, wins, strict=True)):
        if not isinstance(layer, ReLU):
            for axis, word in ((0, "height"), (1, "width")):
                r_in, j_in = previous[axis]
                if r_in > padded[axis]:
                    out.append(
                        f"layer {index} ({layer.name}) is unproductive along the {word}: the units it reads "
                        f"already see {r_in} pixels, more than the {padded[axis]}-pixel padded input, so it "
                        "adds no context"
                    )
                eff, s = window.effective[axis], window.stride[axis]
                if s > eff:
                    out.append(
                        f"layer {index} ({layer.name}) skips pixels along the {word}: stride {s} is larger "
                        f"than the window's span {eff}, so {s - eff} of every {s} input {word} positions "
                        "are never read"
                    )
                d = window.dilation[axis]
                if d > 1 and d * j_in > r_in:
                    out.append(
                        f"layer {index} ({layer.name}) leaves holes along the {word}: its taps are "
                        f"{d * j_in} input pixels apart but each reads only {r_in}, so its field has gaps"
                    )
        previous = [(row.height.r, row.height.j), (row.width.r, row.width.j)]
    return out


# --------------------------------------------------------------------------------------------------
# one unit
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisBox:
    """One axis of one unit's field, in input pixels, ``stop`` exclusive.

    Attributes
    ----------
    start, stop : int
        Theoretical box ``[start, stop)`` (``stop − start = r``); may extend past the image.
    clipped_start, clipped_stop : int
        The box clipped to the image ``[0, n)``.
    pad_before, pad_after : int
        How much of the theoretical box lies before 0 / after ``n`` (in the padding).
    exact_start, exact_stop : int
        Bounding box of the input pixels the unit actually depends on (``exact_stop == exact_start`` when
        it sees only padding).
    centre : float
        ``start + (r − 1) / 2``.
    """

    start: int
    stop: int
    clipped_start: int
    clipped_stop: int
    pad_before: int
    pad_after: int
    exact_start: int
    exact_stop: int
    centre: float


@dataclass(frozen=True)
class UnitBox:
    """A unit's theoretical field on the input, per axis, plus the 1-D masks of the rows/columns it reads."""

    layer: int
    y: int
    x: int
    height: AxisBox
    width: AxisBox
    rows: np.ndarray
    columns: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict (without the masks)."""
        return {
            "layer": self.layer,
            "y": self.y,
            "x": self.x,
            "height": asdict(self.height),
            "width": asdict(self.width),
        }


def _support(wins: Sequence[Window], layer: int, axis: int, position: int) -> np.ndarray:
    """Boolean mask of the input positions (along ``axis``) that unit ``position`` of ``layer`` reads."""
    mask = np.zeros(wins[layer].output[axis], dtype=bool)
    mask[position] = True
    for window in reversed(wins[: layer + 1]):
        n = window.input[axis]
        k, s, d, p = window.kernel[axis], window.stride[axis], window.dilation[axis], window.pad_lo[axis]
        below = np.zeros(n, dtype=bool)
        units = np.flatnonzero(mask)
        taps = (units[:, None] * s - p + np.arange(k)[None, :] * d).ravel()
        below[taps[(taps >= 0) & (taps < n)]] = True
        mask = below
    return mask


def _axis_box(row: AxisField, n: int, position: int, mask: np.ndarray) -> AxisBox:
    start = row.start + position * row.j
    stop = start + row.r
    hit = np.flatnonzero(mask)
    exact = (int(hit[0]), int(hit[-1]) + 1) if hit.size else (0, 0)
    clipped = (min(max(start, 0), n), max(min(stop, n), 0))
    return AxisBox(
        start=start,
        stop=stop,
        clipped_start=clipped[0],
        clipped_stop=max(clipped),
        pad_before=max(0, min(stop, 0) - start),
        pad_after=max(0, stop - max(start, n)),
        exact_start=exact[0],
        exact_stop=exact[1],
        centre=start + (row.r - 1) / 2,
    )


def unit_box(layers: Sequence[Layer], input_size: Pair, layer: int, y: int, x: int) -> UnitBox:
    """The input box of unit ``(y, x)`` of ``layers[layer]``'s output.

    Parameters
    ----------
    layers : sequence of Layer
    input_size : (H, W)
    layer : int
        0-based layer index.
    y, x : int
        Position in that layer's output.

    Returns
    -------
    UnitBox
    """
    wins = windows(layers, input_size)
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be in 0..{len(layers) - 1}, got {layer}")
    oh, ow = wins[layer].output
    if not (0 <= y < oh and 0 <= x < ow):
        raise ValueError(f"unit ({y}, {x}) is outside layer {layer}'s {oh}×{ow} output")
    row = field_table(layers, input_size)[layer]
    rows, cols = _support(wins, layer, 0, y), _support(wins, layer, 1, x)
    return UnitBox(
        layer=layer,
        y=y,
        x=x,
        height=_axis_box(row.height, input_size[0], y, rows),
        width=_axis_box(row.width, input_size[1], x, cols),
        rows=rows,
        columns=cols,
    )


# --------------------------------------------------------------------------------------------------
# effective receptive field
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveField:
    """Luo et al.'s effective receptive field of one unit.

    Attributes
    ----------
    density : ndarray, shape (H, W)
        ``|∂unit/∂x|`` summed over input channels, divided by its total (all zeros when the total is 0).
    centre : (float, float)
        Where the square is centred (the unit's theoretical centre, input pixels).
    radius : float
        Half-side (``(side − 1) / 2``) of the smallest square around ``centre`` holding ``mass`` of the
        density; comparable to the theoretical ``(r − 1) / 2``.
    mass : float
        The fraction asked for (0.95).
    total : float
        ``Σ |∂unit/∂x|`` before normalising.
    """

    density: np.ndarray
    centre: tuple[float, float]
    radius: float
    mass: float
    total: float


def effective_field(
    gradient: np.ndarray, centre: tuple[float, float], mass: float = ERF_MASS
) -> EffectiveField:
    """The normalised ``|gradient|`` and the radius of the square holding ``mass`` of it.

    Parameters
    ----------
    gradient : ndarray, shape (C, H, W) or (H, W)
        ``∂ unit / ∂ input``.
    centre : (float, float)
        ``(cy, cx)`` in input pixels (a half-integer for an even field).
    mass : float
        In (0, 1].

    Notes
    -----
    Pixel ``(i, k)`` is at Chebyshev distance ``max(|i − cy|, |k − cx|)`` from the centre; the radius is the
    smallest such distance whose square (every pixel at most that far) holds ``mass`` of the total.
    """
    magnitude = np.abs(np.asarray(gradient, dtype=np.float64))
    if magnitude.ndim == 3:
        magnitude = magnitude.sum(axis=0)
    total = float(magnitude.sum())
    if total == 0.0 or not np.isfinite(total):
        return EffectiveField(np.zeros_like(magnitude), centre, 0.0, mass, total)
    density = magnitude / total
    h, w = density.shape
    dy = np.abs(np.arange(h) - centre[0])
    dx = np.abs(np.arange(w) - centre[1])
    distance = np.maximum(dy[:, None], dx[None, :]).ravel()
    order = np.argsort(distance, kind="stable")
    cumulative = np.cumsum(density.ravel()[order])
    # the square of radius ρ holds every pixel at distance ≤ ρ: take the mass at the last pixel of each ring
    first = int(np.searchsorted(cumulative, mass * (1 - 1e-12)))
    first = min(first, distance.size - 1)
    return EffectiveField(density, centre, float(distance[order][first]), mass, total)
