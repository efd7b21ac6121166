"""core.shapes: sizes, padding resolution and the worked explanations, checked against numbers
worked out by hand (the textbook examples) rather than against the code."""

from __future__ import annotations

import pytest

from core.shapes import (
    Padding,
    conv_geometry,
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel,
    explain_conv,
    explain_pool,
    pool_output_size,
    resolve_padding,
    window_geometry,
)


def test_same_3x3_is_one_on_every_side():
    assert resolve_padding("same", 3) == Padding(1, 1, 1, 1)


@pytest.mark.parametrize(
    ("padding", "expected"),
    [
        (0, Padding(0, 0, 0, 0)),
        (2, Padding(2, 2, 2, 2)),
        ((1, 3), Padding(1, 1, 3, 3)),
        ((0, 1, 2, 3), Padding(0, 1, 2, 3)),
        ("valid", Padding(0, 0, 0, 0)),
        ("VALID", Padding(0, 0, 0, 0)),
        ("full", Padding(2, 2, 2, 2)),
    ],
)
def test_padding_forms_3x3(padding, expected):
    assert resolve_padding(padding, 3) == expected


def test_same_even_kernel_puts_the_extra_pixel_bottom_right():
    # k = 4: total 3 -> top 1, bottom 2 (TensorFlow's split)
    assert resolve_padding("same", 4) == Padding(1, 2, 1, 2)
    # rectangular kernel 2x5
    assert resolve_padding("same", (2, 5)) == Padding(0, 1, 2, 2)


def test_same_with_dilation_and_full_with_dilation():
    # 3 taps, dilation 2 span 5 -> total 4
    assert resolve_padding("same", 3, dilation=2) == Padding(2, 2, 2, 2)
    assert resolve_padding("full", 3, dilation=2) == Padding(4, 4, 4, 4)


@pytest.mark.parametrize(
    ("n", "k", "s", "expected_total", "expected_out"),
    [
        # ceil(32/2) = 16 windows need (16-1)*2 + 3 = 33 pixels: one extra, at the bottom
        (32, 3, 2, 1, 16),
        # ceil(33/2) = 17 windows need 16*2 + 3 = 35 pixels: 2 extra, one each side
        (33, 3, 2, 2, 17),
        # ceil(7/3) = 3 windows need 2*3 + 2 = 8: one extra
        (7, 2, 3, 1, 3),
        # stride larger than kernel and everything fits: no padding at all
        (9, 1, 3, 0, 3),
    ],
)
def test_same_with_stride_gives_ceil_n_over_s(n, k, s, expected_total, expected_out):
    pad = resolve_padding("same", k, stride=s, input_size=n)
    assert pad.height_total == expected_total
    assert pad.bottom - pad.top in (0, 1)
    assert conv_output_size(n, k, s, "same") == expected_out


def test_same_with_stride_needs_the_input_size():
    with pytest.raises(ValueError, match="input_size"):
        resolve_padding("same", 3, stride=2)


def test_textbook_output_sizes():
    # 16 filters 3x3 on (1, 3, 32, 32)
    assert conv_geometry((1, 3, 32, 32), (16, 3, 3, 3), padding="same").output_shape == (1, 16, 32, 32)
    assert conv_geometry((1, 3, 32, 32), (16, 3, 3, 3), padding="valid").output_shape == (1, 16, 30, 30)
    assert conv_geometry((1, 3, 32, 32), (16, 3, 3, 3), 2, "valid").output_shape == (1, 16, 15, 15)
    # MNIST: 28 -> conv 5x5 -> 24 -> max pool 2x2 stride 2 -> 12
    assert conv_output_size(28, 5) == 24
    assert pool_output_size(24, 2, 2) == 12


def test_effective_kernel():
    assert effective_kernel(3, 1) == 3
    assert effective_kernel(3, 2) == 5
    assert effective_kernel(5, 3) == 13


def test_window_geometry_uncovered_rows():
    # 7 rows, kernel 3, stride 2: windows at 0, 2, 4 reach row 6 -> nothing left over
    assert window_geometry((7, 8), 3, 2).uncovered == (0, 1)
    # 8 columns: windows at 0, 2, 4 reach column 6; column 7 is never read
    assert window_geometry((7, 8), 3, 2).output == (3, 3)


def test_conv_transpose_output_size_by_hand():
    # (n - 1) s - 2p + (k - 1) d + 1 + op
    assert conv_transpose_output_size(5, 3, 2, 1, 1) == (5 - 1) * 2 - 2 + 3 + 1
    assert conv_transpose_output_size((4, 6), (3, 2), (1, 3), (0, 1), (0, 2), (2, 1)) == (
        3 + 5,
        15 - 2 + 2 + 2,
    )


def test_pool_ceil_mode_corner_case():
    # n=5, k=2, s=2, p=1, ceil: ceil((5+2-2)/2)+1 = 4 windows, the 4th would start at 6 = n + p -> dropped
    assert pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3
    # n=6, k=2, s=2, p=1: ceil((6+2-2)/2)+1 = 4, last starts at 6 < 7 -> kept
    assert pool_output_size(6, 2, 2, 1, ceil_mode=True) == 4
    # n=5, k=2, s=2, p=0: floor 2, ceil 3
    assert pool_output_size(5, 2, 2, 0) == 2
    assert pool_output_size(5, 2, 2, 0, ceil_mode=True) == 3


def test_explain_conv_mnist_steps():
    e = explain_conv((1, 1, 28, 28), (30, 1, 5, 5))
    step = next(s for s in e.steps if s.quantity == "output height")
    assert step.substituted == "floor((28 + 0 + 0 − 5) / 1) + 1"
    assert step.value == 24
    assert e.value("parameters") == 30 * 25 + 30
    assert e.value("multiply-adds") == 30 * 24 * 24 * 25
    assert e.output_shape == (1, 30, 24, 24)
    assert e.facts["uncovered_rows"] == [] and e.facts["uncovered_cols"] == []
    assert e.warnings == []


def test_explain_conv_textbook_448_parameters_and_im2col():
    e = explain_conv((1, 3, 32, 32), (16, 3, 3, 3), padding="valid")
    assert e.value("parameters") == 448
    assert e.facts["im2col_shape"] == [1, 27, 900]
    assert e.facts["im2col_bytes"] == 27 * 900 * 4
    # 27*900 entries copied from 3*32*32 pixels
    assert e.facts["duplication"] == round(27 * 900 / 3072, 4)
    e2 = explain_conv((1, 3, 32, 32), (16, 3, 3, 3), stride=2, padding="valid")
    assert e2.facts["im2col_shape"] == [1, 27, 225]


def test_explain_conv_uncovered_rows_by_hand():
    # H = 8, k = 3, s = 2, no padding: windows start 0, 2, 4 and end at row 6; row 7 is never read.
    # W = 10, k = 3, s = 4: windows start 0, 4 and end at column 6; columns 7..9 never read.
    e = explain_conv((1, 1, 8, 10), (1, 1, 3, 3), stride=(2, 4))
    assert e.facts["uncovered_rows"] == [7]
    assert e.facts["uncovered_cols"] == [7, 8, 9]
    assert e.value("uncovered rows") == 1
    assert e.value("uncovered columns") == 3
    assert any("last 1 row" in w for w in e.warnings)
    assert any("stride 4 is larger than the kernel span 3" in w for w in e.warnings)
    # padding 1 shifts the padded index: H + 2 = 10 rows, windows at 0, 2, 4, 6 end at 8; row 9 unread
    e = explain_conv((1, 1, 8, 8), (1, 1, 3, 3), stride=2, padding=1)
    assert e.facts["uncovered_rows"] == [9]


def test_explain_pool_mnist_and_ceil_correction():
    e = explain_pool((1, 30, 24, 24), 2, 2)
    assert e.output_shape == (1, 30, 12, 12)
    assert e.value("pooled height") == 12
    e = explain_pool((1, 1, 5, 5), 2, 2, padding=1, ceil_mode=True)
    assert e.output_shape == (1, 1, 3, 3)
    assert e.value("pooled height (ceil_mode correction)") == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: resolve_padding("sam", 3), "unknown padding 'sam'"),
        (lambda: resolve_padding(-1, 3), "padding cannot be negative"),
        (lambda: resolve_padding((1, 2, 3), 3), "not understood"),
        # resolve_padding checks its own arguments (it is called directly, not only by window_geometry)
        (lambda: resolve_padding(1, 0), r"^kernel_size must be at least 1, got 0$"),
        (lambda: resolve_padding(1, "3"), r"^kernel_size must be an int or a \(height, width\) pair of ints"),
        (lambda: resolve_padding(1, 3, stride=0), r"^stride must be at least 1, got 0$"),
        (lambda: resolve_padding(1, 3, stride="2"), r"^stride must be an int or a \(height, width\) pair"),
        (lambda: resolve_padding(1, 3, dilation=(1, 0)), r"^dilation must be at least 1, got \(1, 0\)$"),
        (
            lambda: resolve_padding("same", 3, 2, input_size=(0, 4)),
            r"^input_size must be at least 1, got \(0, 4\)$",
        ),
        (
            lambda: resolve_padding("same", 3, 2, input_size="4"),
            r"^input_size must be an int or a \(height, width\)",
        ),
        (
            lambda: resolve_padding("same", 3, (2, 1)),
            r"^padding 'same' with stride 2 depends on the input height; pass input_size$",
        ),
        (
            lambda: resolve_padding("same", 3, (1, 3)),
            r"^padding 'same' with stride 3 depends on the input width; pass input_size$",
        ),
        (lambda: resolve_padding(1, 3, dilation="2"), r"^dilation must be an int or a \(height, width\)"),
        (lambda: window_geometry(4, 3, stride=0), "stride must be at least 1"),
        (lambda: window_geometry(0, 3), r"^input size must be at least 1, got 0$"),
        (lambda: window_geometry(5, 3, dilation=(1, 0)), r"^dilation must be at least 1, got \(1, 0\)$"),
        (
            lambda: window_geometry("5", 3),
            r"^input size must be an int or a \(height, width\) pair of ints, got '5'$",
        ),
        (lambda: window_geometry(5, (3, 0)), r"^kernel_size must be at least 1, got \(3, 0\)$"),
        (
            lambda: window_geometry(5, (3,)),
            r"^kernel_size must be an int or a \(height, width\) pair of ints, got \(3,\)$",
        ),
        (lambda: window_geometry(4, 7), r"kernel 7 spans 7 pixels but the padded input is only 4 tall"),
        (lambda: window_geometry(4, 3, dilation=2), r"dilation 2 spans 5 pixels"),
        (
            lambda: conv_geometry((1, 3, 8), (4, 3, 3, 3)),
            r"^input must have 4 dimensions \(N, C, H, W\), got shape \(1, 3, 8\)$",
        ),
        (
            lambda: conv_geometry((1, 3, 8, 8), (3, 3)),
            r"^weight must have 4 dimensions \(F, C/groups, KH, KW\), got shape \(3, 3\)$",
        ),
        (
            lambda: conv_geometry((1, 3, 8, 8), (4, 3, 3, 3), groups=0),
            r"^groups must be a positive int, got 0$",
        ),
        (
            lambda: conv_geometry((1, 3, 8, 8), (4, 3, 3, 3), groups=1.0),
            r"^groups must be a positive int, got 1\.0$",
        ),
        (
            lambda: conv_geometry((1, 3, 8, 8), (4, 2, 3, 3)),
            r"^weight has 2 input channels per filter but the input has 3 channels in 1 group\(s\), "
            r"so each filter needs 3$",
        ),
        (
            lambda: conv_geometry((1, 4, 8, 8), (4, 1, 3, 3), groups=2),
            r"^weight has 1 input channels per filter but the input has 4 channels in 2 group\(s\), "
            r"so each filter needs 2$",
        ),
        (lambda: conv_geometry((1, 3, 8, 8), (4, 1, 3, 3), groups=2), r"groups \(2\) must divide the input"),
        (lambda: conv_geometry((1, 4, 8, 8), (3, 2, 3, 3), groups=2), r"must divide the number of filters"),
        (lambda: pool_output_size(8, 2, padding=2), r"at most half the kernel"),
        (lambda: conv_transpose_output_size(4, 3, 2, 0, 2), r"output_padding 2 .* smaller than the stride"),
    ],
)
def test_bad_arguments_raise_a_sentence(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_conv_geometry_defaults_to_no_padding_stride_and_dilation_one() -> None:
    """5 × 6 input, 3 × 3 kernel, nothing else given: (5 − 3 + 1) × (6 − 3 + 1) = 3 × 4."""
    g = conv_geometry((2, 1, 5, 6), (4, 1, 3, 3))
    assert g.output_shape == (2, 4, 3, 4) and g.window.padding == Padding(0, 0, 0, 0)
    assert window_geometry((5, 6), 3).output == (3, 4)


def test_kernel_wider_than_the_unpadded_input_is_warned_about() -> None:
    # 5×6 input, 7×7 kernel, padding 1: padded 7×8, so it fits, but every window reads padding.
    explanation = explain_conv((1, 1, 5, 6), (1, 1, 7, 7), padding=1)
    assert explanation.output_shape == (1, 1, 1, 2)
    assert any("more than the input height (5)" in w for w in explanation.warnings)
    assert any("more than the input width (6)" in w for w in explanation.warnings)
    assert not any("more than the input" in w for w in explain_conv((1, 1, 7, 7), (1, 1, 7, 7)).warnings)


def test_without_padding_is_the_same_windows_over_the_padded_input():
    """A 5 × 4 input padded (top 1, bottom 2, left 0, right 1) by reflection is an 8 × 5 input with no
    padding; kernel (3, 2), stride (2, 1), dilation (1, 2): spans 3 and 3, output
    ((8 − 3) // 2 + 1, (5 − 3) // 1 + 1) = (3, 3), uncovered ((8 − 3) % 2, (5 − 3) % 1) = (1, 0)."""
    g = window_geometry((5, 4), (3, 2), (2, 1), (1, 2, 0, 1), (1, 2), "reflect")
    bare = g.without_padding()
    assert (bare.height, bare.width) == bare.padded == g.padded == (8, 5)
    assert bare.padding == Padding(0, 0, 0, 0) and bare.padding_mode == "zeros"
    assert (bare.kernel, bare.stride, bare.dilation, bare.effective) == ((3, 2), (2, 1), (1, 2), (3, 3))
    assert bare.output == g.output == (3, 3) and bare.uncovered == g.uncovered == (1, 0)
    assert bare == window_geometry((8, 5), (3, 2), (2, 1), 0, (1, 2))  # every field, as for a fresh input

    layer = conv_geometry((2, 4, 5, 4), (6, 2, 3, 2), (2, 1), (1, 2, 0, 1), (1, 2), 2, "reflect")
    assert layer.without_padding() == conv_geometry((2, 4, 8, 5), (6, 2, 3, 2), (2, 1), 0, (1, 2), 2)


def test_effective_kernel_defaults_to_no_dilation_and_refuses_zero():
    """span = (k − 1)·d + 1: 3 with no dilation, 5 with dilation 2."""
    assert effective_kernel(3) == 3 and effective_kernel(3, 2) == 5
    for k, d in ((0, 1), (3, 0)):
        with pytest.raises(ValueError) as refused:
            effective_kernel(k, d)
        sentence = f"kernel size and dilation must be at least 1, got kernel {k}, dilation {d}"
        assert str(refused.value) == sentence
