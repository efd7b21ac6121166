"""core.shapes' worked explanations for pooling and the transposed convolution, and the Explanation record:
defaults, every step's text and value, every refusal's sentence (the mutation run's survivors in these)."""

from __future__ import annotations

import re

import pytest
from textbook import pool_out, transpose_out

from core.shapes import Explanation, Step, explain_conv, explain_conv_transpose, explain_pool


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
