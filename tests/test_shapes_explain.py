"""core.shapes' worked explanations for pooling and the transposed convolution, and the Explanation record:
defaults, every step's text and value, every refusal's sentence (the mutation run's survivors in these)."""

from __future__ import annotations

import re

import pytest
from textbook import pool_out, transpose_out

from core.shapes import Explanation, Step, explain_conv, explain_conv_transpose, explain_pool, pool_padding


def test_explain_conv_transpose_defaults_are_pytorchs():
    """stride 1, padding 0, output_padding 0, dilation 1, groups 1: a 3×3 kernel grows 4×5 to 6×7."""
    e = explain_conv_transpose((2, 4, 4, 5), (4, 3, 3, 3))
    assert e.output_shape == (2, 3, 6, 7)
    assert e.facts == {} and e.warnings == []
    assert [s.as_dict() for s in e.steps] == [
        {
            "quantity": "output height",
            "formula": "(n − 1)·s − 2·p + (k − 1)·d + 1 + output_padding",
            "substituted": "(4 − 1)·1 − 2·0 + (3 − 1)·1 + 1 + 0",
            "value": 6,
        },
        {
            "quantity": "output width",
            "formula": "(n − 1)·s − 2·p + (k − 1)·d + 1 + output_padding",
            "substituted": "(5 − 1)·1 − 2·0 + (3 − 1)·1 + 1 + 0",
            "value": 7,
        },
    ]


@pytest.mark.parametrize(
    ("x", "w", "stride", "padding", "output_padding", "dilation", "groups"),
    [
        ((1, 4, 3, 5), (4, 2, 2, 3), (2, 3), (1, 0), (1, 2), (1, 2), 2),
        ((3, 6, 4, 4), (6, 1, 3, 1), 3, 2, 0, (3, 1), 3),
        ((1, 1, 1, 1), (1, 5, 4, 4), 1, 0, (0, 1), 2, 1),
    ],
)
def test_explain_conv_transpose_steps(x, w, stride, padding, output_padding, dilation, groups):
    e = explain_conv_transpose(x, w, stride, padding, output_padding, dilation, groups)
    oh, ow = transpose_out(x[2:], w[2:], stride, padding, output_padding, dilation)
    assert e.output_shape == (x[0], w[1] * groups, oh, ow)
    assert e.value("output height") == oh and e.value("output width") == ow
    pairs = [v if isinstance(v, tuple) else (v, v) for v in (stride, padding, output_padding, dilation)]
    for axis, name in enumerate(("height", "width")):
        s, p, op, d = (v[axis] for v in pairs)
        assert e.steps[axis].quantity == f"output {name}"
        assert e.steps[axis].substituted == (
            f"({x[2 + axis]} − 1)·{s} − 2·{p} + ({w[2 + axis]} − 1)·{d} + 1 + {op}"
        )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: explain_conv_transpose((1, 2, 3), (2, 1, 3, 3)),
            r"^input must have 4 dimensions \(N, C_in, H, W\)",
        ),
        (
            lambda: explain_conv_transpose((1, 2, 3, 3), (2, 1, 3)),
            r"^weight must have 4 dimensions \(C_in, C_out/groups, KH, KW\), got shape \(2, 1, 3\)$",
        ),
        (
            lambda: explain_conv_transpose((1, 2, 3, 3), (3, 1, 3, 3)),
            r"^weight has 3 input channels but the input has 2$",
        ),
        (
            lambda: explain_conv_transpose((1, 3, 3, 3), (3, 1, 3, 3), groups=2),
            r"^groups \(2\) must be a positive int dividing the input channels \(3\)$",
        ),
        (
            lambda: explain_conv_transpose((1, 2, 3, 3), (2, 1, 3, 3), groups=0),
            r"^groups \(0\) must be a positive int dividing the input channels \(2\)$",
        ),
        (
            lambda: explain_conv_transpose((1, 2, 3, 3), (2, 1, 3, 3), groups=1.0),
            r"^groups \(1\.0\) must be a positive int",
        ),
        (
            lambda: explain_conv_transpose((1, 1, 3, 3), (1, 1, 3, 3), stride=0),
            r"^stride must be at least 1, got 0$",
        ),
        (
            lambda: explain_conv_transpose((1, 1, 3, 3), (1, 1, 3, 3), padding=-1),
            r"^padding must be at least 0, got -1$",
        ),
        (
            lambda: explain_conv_transpose((1, 1, 3, 3), (1, 1, 3, 3), output_padding=-1),
            r"^output_padding must be at least 0, got -1$",
        ),
        (
            lambda: explain_conv_transpose((1, 1, 3, 3), (1, 1, 3, 3), dilation=(1, 0)),
            r"^dilation must be at least 1, got \(1, 0\)$",
        ),
        (lambda: explain_conv_transpose((1, 1, 3, 3), (1, 1, 3, 3), stride="2"), r"^stride must be an int"),
        (
            lambda: explain_conv_transpose((1, 1, 3, 3), (1, 1, 3, 3), padding=None),
            r"^padding must be an int",
        ),
        (
            lambda: explain_conv_transpose((1, 1, 3, 3), (1, 1, 3, 3), output_padding=1.5),
            r"^output_padding must be",
        ),
        (
            lambda: explain_conv_transpose((1, 1, 3, 3), (1, 1, 3, 3), dilation=None),
            r"^dilation must be an int",
        ),
    ],
)
def test_explain_conv_transpose_refusals(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_explain_conv_transpose_groups_one_of_each_kind():
    # groups divides C_in but the channels check is separate: both pass here
    e = explain_conv_transpose((1, 4, 2, 2), (4, 1, 1, 1), groups=4)
    assert e.output_shape == (1, 4, 2, 2)


def test_explain_pool_defaults_are_pytorchs():
    """stride = kernel, padding 0, dilation 1, floor mode."""
    e = explain_pool((2, 3, 7, 6), 2)
    assert e.output_shape == (2, 3, 3, 3)
    assert e.facts == {"padding": {"height": 0, "width": 0}, "kernel_size": [2, 2], "stride": [2, 2]}
    assert [s.quantity for s in e.steps] == ["pooled height", "pooled width"]
    assert e.steps[0].formula == "floor((H + 2·pad − k_eff) / s) + 1"
    assert e.steps[0].substituted == "floor((7 + 2·0 − 2) / 2) + 1"
    assert e.warnings == [
        "pool stride 2 does not fit the height: the last 1 of 7 padded rows are dropped "
        "(ceil_mode would keep a partial window)"
    ]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "dilation", "ceil_mode"),
    [((5, 5), 2, 2, 1, 1, True), ((9, 8), (3, 2), (2, 3), (1, 1), (2, 1), True), ((4, 4), 1, 1, 0, 1, False)],
)
def test_explain_pool_steps(size, kernel, stride, padding, dilation, ceil_mode):
    e = explain_pool((1, 2, *size), kernel, stride, padding, dilation, ceil_mode)
    assert e.output_shape == (1, 2, *pool_out(size, kernel, stride, padding, dilation, ceil_mode))
    rounding = "ceil" if ceil_mode else "floor"
    assert e.steps[0].formula == f"{rounding}((H + 2·pad − k_eff) / s) + 1"


def test_explain_pool_ceil_mode_correction_step():
    # n=5, k=2, s=2, p=1, ceil: raw ceil((5+2-2)/2)+1 = 4, but window 4 starts at 6 >= 5 + 1: dropped
    e = explain_pool((1, 1, 5, 5), 2, 2, 1, 1, True)
    assert e.output_shape == (1, 1, 3, 3)
    quantities = [s.quantity for s in e.steps]
    assert quantities == [
        "pooled height",
        "pooled height (ceil_mode correction)",
        "pooled width",
        "pooled width (ceil_mode correction)",
    ]
    assert e.steps[0].value == 4 and e.steps[1].value == 3
    assert e.steps[1].substituted == "(4 − 1)·2 = 6 ≥ 5 + 1"
    assert e.warnings == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: explain_pool((1, 2, 3), 2),
            r"^input must have 4 dimensions \(N, C, H, W\), got shape \(1, 2, 3\)$",
        ),
        (
            lambda: explain_pool((1, 0, 3, 3), 2),
            r"^input dimensions must all be at least 1, got shape \(1, 0, 3, 3\)$",
        ),
        (lambda: explain_pool((1, 1, 3, 3), 0), r"^kernel_size must be at least 1, got 0$"),
        (lambda: explain_pool((1, 1, 3, 3), "2"), r"^kernel_size must be an int"),
        (lambda: explain_pool((1, 1, 3, 3), 2, 0), r"^stride must be at least 1, got 0$"),
        (lambda: explain_pool((1, 1, 3, 3), 2, None, 0, 0), r"^dilation must be at least 1, got 0$"),
        (lambda: explain_pool((1, 1, 3, 3), 2, None, 0, "1"), r"^dilation must be an int"),
    ],
)
def test_explain_pool_refusals(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_explain_pool_kernel_of_one_is_allowed():
    assert explain_pool((1, 1, 3, 3), 1).output_shape == (1, 1, 3, 3)


def test_explanation_record():
    steps = [Step("a", "x", "1", 1), Step("b", "y", "2", 2)]
    e = Explanation(steps=steps, output_shape=(1, 2), warnings=["w"], facts={"k": 3})
    assert e.as_dict() == {
        "steps": [
            {"quantity": "a", "formula": "x", "substituted": "1", "value": 1},
            {"quantity": "b", "formula": "y", "substituted": "2", "value": 2},
        ],
        "output_shape": [1, 2],
        "warnings": ["w"],
        "k": 3,
    }
    assert e.value("b") == 2
    with pytest.raises(KeyError, match="^'missing'$"):
        e.value("missing")
    assert str(steps[0]) == "a = x = 1 = 1"
    assert Explanation(steps=[], output_shape=(1,)).as_dict() == {
        "steps": [],
        "output_shape": [1],
        "warnings": [],
    }


def test_explain_conv_as_dict_keys():
    d = explain_conv((1, 1, 5, 5), (1, 1, 3, 3)).as_dict()
    assert set(d) >= {"steps", "output_shape", "warnings", "padding", "macs", "duplication"}
    assert re.fullmatch(r"\d+", str(d["macs"]))


def test_explain_conv_worked_steps_written_out():
    """(2, 2, 7, 6) by (4, 1, 3, 2), stride (2, 3), padding (0, 1, 2, 0), dilation (1, 2), groups 2 — every
    line the page prints, with the numbers worked out by hand in the docstring's order:
    rows: k_eff 3, padded 7 + 0 + 1 = 8, floor(5 / 2) + 1 = 3, 5 mod 2 = 1 uncovered;
    columns: k_eff (2 − 1)·2 + 1 = 3, padded 6 + 2 + 0 = 8, floor(5 / 3) + 1 = 2, 5 mod 3 = 2 uncovered."""
    e = explain_conv((2, 2, 7, 6), (4, 1, 3, 2), (2, 3), (0, 1, 2, 0), (1, 2), groups=2)
    table = [(s.quantity, s.formula, s.substituted, s.value) for s in e.steps]
    assert table == [
        ("effective kernel height", "(k − 1)·d + 1", "(3 − 1)·1 + 1", 3),
        ("padded height", "H + pad_top + pad_bottom", "7 + 0 + 1", 8),
        (
            "output height",
            "floor((H + pad_top + pad_bottom − k_eff) / s) + 1",
            "floor((7 + 0 + 1 − 3) / 2) + 1",
            3,
        ),
        ("uncovered rows", "(H + pad_top + pad_bottom − k_eff) mod s", "(7 + 0 + 1 − 3) mod 2", 1),
        ("effective kernel width", "(k − 1)·d + 1", "(2 − 1)·2 + 1", 3),
        ("padded width", "W + pad_left + pad_right", "6 + 2 + 0", 8),
        (
            "output width",
            "floor((W + pad_left + pad_right − k_eff) / s) + 1",
            "floor((6 + 2 + 0 − 3) / 3) + 1",
            2,
        ),
        ("uncovered columns", "(W + pad_left + pad_right − k_eff) mod s", "(6 + 2 + 0 − 3) mod 3", 2),
        ("parameters", "F·(C/groups)·KH·KW + F", "4·1·3·2 + 4", 4 * 1 * 3 * 2 + 4),
        ("multiply-adds", "N·F·OH·OW·(C/groups)·KH·KW", "2·4·3·2·1·3·2", 2 * 4 * 3 * 2 * 1 * 3 * 2),
        ("im2col rows", "C·KH·KW", "2·3·2", 12),
        ("im2col columns", "OH·OW", "3·2", 6),
        ("im2col bytes", "N·C·KH·KW·OH·OW·itemsize", "2·12·6·4", 2 * 12 * 6 * 4),
        ("im2col duplication", "(C·KH·KW·OH·OW) / (C·H·W)", "(12·6) / (2·7·6)", round(72 / 84, 4)),
        ("GEMM", "W_col (F × C·KH·KW) · X_col (C·KH·KW × OH·OW)", "(4 × 12) · (12 × 6)", "4 × 6"),
    ]
    assert e.facts["uncovered_rows"] == [7] and e.facts["uncovered_cols"] == [6, 7]
    assert e.warnings == [
        "stride 2 does not fit: the last 1 row of the padded input (padded index 7, at the bottom) are "
        "reached by no window and do not affect the output",
        "stride 3 does not fit: the last 2 columns of the padded input (padded index 6–7, at the right) are "
        "reached by no window and do not affect the output",
    ]


def test_explain_conv_uncovered_warnings_for_several_rows_and_one_column():
    # rows: 9 − 2 = 7, stride 4: 3 rows left (padded 6–8); columns: 6 − 2 = 4, stride 3: 1 column (padded 5)
    e = explain_conv((1, 1, 9, 6), (1, 1, 2, 2), (4, 3))
    assert e.warnings[:2] == [
        "stride 4 does not fit: the last 3 rows of the padded input (padded index 6–8, at the bottom) are "
        "reached by no window and do not affect the output",
        "stride 4 is larger than the kernel span 2: 2 row(s) between neighbouring windows are never read",
    ]
    assert e.warnings[2:] == [
        "stride 3 does not fit: the last 1 column of the padded input (padded index 5, at the right) are "
        "reached by no window and do not affect the output",
        "stride 3 is larger than the kernel span 2: 1 column(s) between neighbouring windows are never read",
    ]


def test_explain_conv_without_bias_counts_no_bias():
    e = explain_conv((1, 3, 8, 8), (5, 3, 3, 3), bias=False, itemsize=8)
    assert e.value("parameters") == 5 * 3 * 3 * 3
    assert e.steps[8].formula == "F·(C/groups)·KH·KW" and e.steps[8].substituted == "5·3·3·3"
    assert e.value("im2col bytes") == 1 * 27 * 36 * 8


@pytest.mark.parametrize(
    ("padding", "kernel", "message"),
    [
        ((2, 0), (3, 3), r"^pooling padding must be at most half the kernel size: padding \(2, 0\) "
         r"with kernel \(3, 3\) allows at most \(1, 1\)$"),
        ((0, 2), (3, 3), r"allows at most \(1, 1\)$"),
        ((0, 3), (5, 5), r"^pooling padding must be at most half the kernel size: padding \(0, 3\) "
         r"with kernel \(5, 5\) allows at most \(2, 2\)$"),
        ((1, 1), 0, r"^kernel_size must be at least 1, got 0$"),
        ((1, 1), "3", r"^kernel_size must be an int"),
    ],
)  # fmt: skip
def test_pool_padding_refusals(padding, kernel, message):
    with pytest.raises(ValueError, match=message):
        pool_padding(padding, kernel)
