"""The tests' own shape arithmetic: the textbook formulas written out here, sharing nothing with core.shapes.

A reference that took its padding or its output size from ``core.shapes`` would agree with any wrong rule
there; these helpers are what the references (the im2col loop, the PyTorch padding tuples, the expected
shapes) use instead. Sources: V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep
learning" (2016), relationships 1–14; TensorFlow's 'SAME' padding (output ``ceil(n / s)``, the odd pixel at
the bottom/right); PyTorch's pooling size rule (``ceil_mode`` drops a last window that starts in the right
padding).
"""

from __future__ import annotations

import math


def pair(value) -> tuple[int, int]:
    """``v`` → ``(v, v)``; a pair stays a pair."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def span(k: int, d: int) -> int:
    """A dilated kernel covers ``k + (k − 1)(d − 1)`` pixels (Dumoulin & Visin, relationship 15)."""
    return k + (k - 1) * (d - 1)


def padding_tblr(padding, size, kernel, stride=1, dilation=1) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` for any padding form the project accepts."""
    (h, w), (kh, kw), (sh, sw), (dh, dw) = pair(size), pair(kernel), pair(stride), pair(dilation)
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "full":
        # every window that overlaps the input in at least one pixel: span − 1 on each side
        return span(kh, dh) - 1, span(kh, dh) - 1, span(kw, dw) - 1, span(kw, dw) - 1
    if padding == "same":
        sides = []
        for n, k, s, d in ((h, kh, sh, dh), (w, kw, sw, dw)):
            out = math.ceil(n / s)
            need = (out - 1) * s + span(k, d)  # pixels the last window reaches
            total = need - n if need > n else 0
            sides += [total // 2, total - total // 2]
        return tuple(sides)  # type: ignore[return-value]
    if isinstance(padding, int):
        return padding, padding, padding, padding
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    return tuple(padding)  # type: ignore[return-value]


def conv_out(size, kernel, stride=1, padding=0, dilation=1) -> tuple[int, int]:
    """``(OH, OW)``: ``floor((n + p_lo + p_hi − span) / s) + 1`` (relationship 15)."""
    top, bottom, left, right = padding_tblr(padding, size, kernel, stride, dilation)
    (h, w), (kh, kw), (sh, sw), (dh, dw) = pair(size), pair(kernel), pair(stride), pair(dilation)
    return (
        math.floor((h + top + bottom - span(kh, dh)) / sh) + 1,
        math.floor((w + left + right - span(kw, dw)) / sw) + 1,
    )


def pool_out(size, kernel, stride=None, padding=0, dilation=1, ceil_mode=False) -> tuple[int, int]:
    """PyTorch's pooled size: ``floor/ceil((n + 2p − span) / s) + 1``, minus a last window in the padding."""
    stride = kernel if stride is None else stride
    out = []
    for n, k, s, p, d in zip(
        pair(size), pair(kernel), pair(stride), pair(padding), pair(dilation), strict=True
    ):
        rounding = math.ceil if ceil_mode else math.floor
        o = rounding((n + 2 * p - span(k, d)) / s) + 1
        if ceil_mode and (o - 1) * s >= n + p:
            o -= 1
        out.append(o)
    return out[0], out[1]


def transpose_out(size, kernel, stride=1, padding=0, output_padding=0, dilation=1) -> tuple[int, int]:
    """``(n − 1)·s − 2p + span + output_padding`` (relationship 14 with dilation)."""
    return tuple(  # type: ignore[return-value]
        (n - 1) * s - 2 * p + span(k, d) + op
        for n, k, s, p, op, d in zip(
            pair(size),
            pair(kernel),
            pair(stride),
            pair(padding),
            pair(output_padding),
            pair(dilation),
            strict=True,
        )
    )
