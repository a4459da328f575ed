"""alkahest.parse / ExprPool.parse: Python's syntax and precedence, printing round trips,
errors with a caret, and hostile input (deep nesting, huge strings, random bytes) that
is parsed or refused, never a crash."""

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import alkahest as ak
from alkahest import _native, errors
from strategies import SETTINGS, setup_case, trees


def value(text, **env):
    pool = ak.ExprPool()
    e = pool.parse(text)
    names = sorted(s.name for s in e.free_symbols())
    f = ak.compile_expr(e, names, cache=False)
    return f(*[env[n] for n in names])


@pytest.mark.parametrize("text", [
    "-x**2", "2**-x", "x**y**0.5", "x - y - 1.5", "x / y / 3", "-x * y", "x + y * 2 - 3 / x",
    "(x + y) * (x - y)", "+x - -y", "x * -y ** 2", "1e-3 * x + .5 - 2.", "3 * 1_000",
])
def test_arithmetic_means_what_python_means(text):
    env = {"x": 1.7, "y": 2.3}
    assert value(text, **env) == eval(text, {}, env)  # noqa: S307 - Python is the reference here


@pytest.mark.parametrize("text, want", [
    ("x < y < 3", True), ("x < y > 3", False), ("not x > y and y > 0 or x == 5", True), ("x < y | (x > 4)", False),
    ("(x > 1) & ~(y > 3)", True), ("x != y", True), ("x >= y or False", False), ("True + True", 2.0),
])
def test_conditions_and_logic(text, want):
    assert value(text, x=1.7, y=2.3) == float(want)


def test_functions_under_alkahest_and_numpy_names():
    x = 0.6
    assert value("arcsin(x) - asin(x) + arctan2(x, 1) - atan2(x, 1)", x=x) == 0.0
    assert value("absolute(-x) + fabs(-x)", x=x) == 2 * x
    assert value("minimum(x, 1) + maximum(x, 1) + min(x, 2, 0.1) + max(x, 2, 3)", x=x) == x + 1 + 0.1 + 3
    assert value("where(x > 0.5, sqrt(x), -1)", x=x) == math.sqrt(x)
    assert value("x // 0.25 + x % 0.25", x=x) == 2.0 + (0.6 - 0.5)
    assert value("sign(-x) + trunc(-2.5) + rint(2.5) + rint(3.5) + square(3) + exp2(3)", x=x) == -1 - 2 + 2 + 4 + 9 + 8
    assert value("isnan(x * nan) + isinf(inf) + isfinite(x) + signbit(-0.0)", x=x) == 4.0
    assert value("pi * x", x=x) == math.pi * x


@SETTINGS
@given(trees, st.just([(0.5, -1.5, 2.0)]))
def test_printing_parses_back_to_the_same_node(tree, pts):
    syms, _, expr, _ = setup_case(tree, pts)
    assert syms[0].pool.parse(str(expr)).id == expr.id, str(expr)


def test_names_become_symbols_of_the_pool():
    pool = ak.ExprPool()
    x = pool.symbol("x")
    e = pool.parse("x * theta_2 + Δ")
    assert {s.name for s in e.free_symbols()} == {"x", "theta_2", "Δ"}
    assert (pool.parse("x + 1") - 1).id == x.id or pool.parse("x + 1").args[1].id == x.id
    assert ak.parse("sin(x)").pool != pool  # the module function makes a new pool
    assert ak.parse("sin(x)", pool).pool == pool


@pytest.mark.parametrize("text, message, column", [
    ("sin(x) + ", "found the end of the input", 9),
    ("x +* 2", "found '*'", 3),
    ("x ^ 2", "write powers as x**2", 2),
    ("x = 2", "compare with '=='", 2),
    ("(x + 1", "never closed", 0),
    ("x + 1)", "no matching '('", 5),
    ("np.sin(x)", "attribute access", 2),
    ("foo(x)", "unknown function 'foo'", 0),
    ("sin(x, y)", "sin() takes 1 argument, got 2", 0),
    ("x + 1j", "complex literals", 4),
    ("x y", "expected an operator", 2),
    ("lambda: 1", "expected an operand, found keyword 'lambda'", 0),
    ("x + 123456789012345678901", "not exactly representable", 4),
    ("", "empty", None),
])
def test_errors_show_where(text, message, column):
    with pytest.raises(errors.ParseError) as info:
        ak.parse(text)
    msg = str(info.value)
    assert message in msg
    if column is not None:
        lines = msg.splitlines()
        assert lines[1].strip() == text.strip()
        assert lines[2].index("^") - lines[1].index(text.strip()[0]) == column, msg
    assert isinstance(info.value, ValueError)


@SETTINGS
@given(st.lists(st.sampled_from(list("xy1.e+-*/()<>=!&|~%^, $'[") + ["sin", "where", "**", "//", " and ", "1e999"]),
                max_size=40).map("".join))
def test_any_text_parses_or_raises_the_projects_error(text):
    try:
        e = ak.parse(text)
    except errors.AlkahestError:
        return
    assert isinstance(e, ak.Expr)


def test_syntax_tree_for_front_ends():
    nodes = _native.parse_syntax_tree("2*a + f(b, 1.5) < 3")
    kinds = [n[0] for n in nodes]
    assert kinds == ["int", "name", "mul", "name", "float", "call", "add", "int", "lt"]
    assert nodes[5][1] == "f" and nodes[5][2] == (3, 4)
    assert nodes[-1][3:] == (0, 19)
    assert nodes[1][1:] == ("a", (), 2, 3)


HOSTILE = {
    "parens_10000": "'(' * 10000 + 'x' + ')' * 10000",
    "calls_20000": "'sin(' * 20000 + 'x' + ')' * 20000",
    "unary_200000": "'-' * 200000 + 'x'",
    "too_deep": "'(' * 200000 + 'x' + ')' * 200000",
    "sum_1e6_terms": "'+'.join(['x'] * 1_000_000)",
    "unclosed_10000": "'(' * 10000 + 'x'",
    "power_tower": "'**'.join(['x'] * 100000)",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_is_parsed_or_refused_in_a_subprocess(name):
    code = (
        "import alkahest as ak, numpy as np\n"
        f"text = {HOSTILE[name]}\n"
        "try:\n"
        "    e = ak.parse(text)\n"
        "except ak.errors.ParseError as err:\n"
        "    print('refused', str(err).splitlines()[0][:80])\n"
        "else:\n"
        "    f = ak.compile_expr(e, ['x'], cache=False)\n"
        "    print('parsed', f(0.5))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    outcome = run.stdout.split()[0]
    assert outcome == ("refused" if name in ("too_deep", "unclosed_10000") else "parsed"), run.stdout
    if name == "sum_1e6_terms":
        assert float(run.stdout.split()[1]) == 500000.0


def test_parse_takes_text():
    with pytest.raises(TypeError, match="str"):
        ak.parse(b"x + 1")
    assert np.isclose(value("x**0.5", x=4.0), 2.0)
