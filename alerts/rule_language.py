"""Rule expressions: a small language over one device kind's fields, compiled to numpy.

An expression is parsed once with Python's `ast` and turned into a tree of numpy operations;
nothing is ever passed to `eval`. What is allowed (anything else is a `RuleSyntaxError` naming
the column):

    numbers, true / false                      1.5, 20, true
    fields of the rule's kind                  suction_bar, running
    parameters                                 dry_run_suction_bar (see rule files)
    arithmetic                                 + - * / %   and unary -
    comparisons, chained                       a < b,  0 < x <= 5,  ==, !=
    logic                                      and, or, not
    functions                                  abs(x), min(a, b, ...), max(a, b, ...)
    temporal                                   delta(field)  change since the device's
                                                              previous reading
                                               rate(field)   that change per second

A field the reading did not report is NaN: arithmetic with it gives NaN and every comparison
with NaN is false, so a missing field never fires a rule. In `and` / `or` / `not`, a number is
true when it is non-zero and not NaN.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from facility.batch import BoolArray, FloatArray, KindBatch
from facility.catalog import KindSpec
from facility.errors import FacilityError

Array = npt.NDArray[Any]


class RuleSyntaxError(FacilityError):
    def __init__(self, message: str, column: int) -> None:
        self.message = message
        self.column = column
        """1-based column in the expression text."""
        super().__init__(f"column {column}: {message}")


@dataclass
class RuleContext:
    """What an expression sees: one kind's time-ordered readings and what they need."""

    batch: KindBatch
    params: Mapping[str, FloatArray]
    """Per parameter, its value for each device of the kind (indexed by device row)."""
    previous_values: FloatArray
    """Each reading's device's previous reading, per field (NaN when there is none)."""
    previous_ts_ms: npt.NDArray[np.int64]
    _cache: dict[str, Array] = field(default_factory=dict)

    def column(self, name: str) -> FloatArray:
        return self.batch.column(name)

    def param(self, name: str) -> FloatArray:
        return self.params[name][self.batch.device]

    def delta(self, name: str) -> FloatArray:
        col = self.batch.kind.col(name)
        result: FloatArray = self.batch.values[:, col] - self.previous_values[:, col]
        return result

    def rate(self, name: str) -> FloatArray:
        seconds = (self.batch.ts_ms - self.previous_ts_ms).astype(np.float64) / 1000
        with np.errstate(divide="ignore", invalid="ignore"):
            result: FloatArray = np.where(seconds > 0, self.delta(name) / seconds, np.nan)
        return result


Node = Callable[[RuleContext], Array]


def truth(values: Array) -> BoolArray:
    if values.dtype == np.bool_:
        return values
    result: BoolArray = np.nan_to_num(values.astype(np.float64), nan=0.0) != 0
    return result


def _number(values: Array) -> FloatArray:
    result: FloatArray = values.astype(np.float64)
    return result


_COMPARE: dict[type[ast.cmpop], Callable[[Array, Array], Array]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Array, Array], Array]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Mod: np.mod,
}
TEMPORAL = ("delta", "rate")
FUNCTIONS = ("abs", "min", "max", *TEMPORAL)


@dataclass(frozen=True, slots=True)
class Expression:
    text: str
    fields: frozenset[str]
    params: frozenset[str]
    temporal: bool
    """Uses delta / rate: needs each device's previous reading."""
    _node: Node

    def __call__(self, context: RuleContext) -> BoolArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            result = self._node(context)
        if result.shape != (len(context.batch),):  # a constant expression
            result = np.broadcast_to(result, (len(context.batch),))
        return truth(result)


class _Compiler:
    def __init__(self, kind: KindSpec, params: frozenset[str]) -> None:
        self.kind = kind
        self.known_params = params
        self.fields: set[str] = set()
        self.params: set[str] = set()
        self.temporal = False

    def fail(self, node: ast.AST, message: str) -> RuleSyntaxError:
        return RuleSyntaxError(message, getattr(node, "col_offset", 0) + 1)

    def compile(self, node: ast.AST) -> Node:
        if isinstance(node, ast.Expression):
            return self.compile(node.body)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BoolOp):
            parts = [self.compile(v) for v in node.values]
            reduce = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            return lambda c: reduce.reduce([truth(p(c)) for p in parts])
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            op = _ARITHMETIC.get(type(node.op))
            if op is None:
                raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
            left, right = self.compile(node.left), self.compile(node.right)
            return lambda c: op(_number(left(c)), _number(right(c)))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(node, f"{type(node).__name__} is not allowed in a rule expression")

    def constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool) or (isinstance(value, (int, float)) and value is not None):
            number = np.float64(float(value))
            return lambda c: np.asarray(number)
        raise self.fail(node, f"only numbers and true/false are allowed, not {value!r}")

    def name(self, node: ast.Name) -> Node:
        ident = node.id
        if ident in ("true", "false"):
            number = np.float64(1.0 if ident == "true" else 0.0)
            return lambda c: np.asarray(number)
        if ident in self.kind.index:
            self.fields.add(ident)
            return lambda c: c.column(ident)
        if ident in self.known_params:
            self.params.add(ident)
            return lambda c: c.param(ident)
        raise self.fail(
            node,
            f"unknown name {ident!r}: not a {self.kind.name} field nor a parameter "
            f"(fields: {', '.join(self.kind.field_names)})",
        )

    def unary(self, node: ast.UnaryOp) -> Node:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda c: np.logical_not(truth(operand(c)))
        if isinstance(node.op, ast.USub):
            return lambda c: np.negative(_number(operand(c)))
        if isinstance(node.op, ast.UAdd):
            return lambda c: _number(operand(c))
        raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")

    def compare(self, node: ast.Compare) -> Node:
        ops = []
        for op in node.ops:
            function = _COMPARE.get(type(op))
            if function is None:
                raise self.fail(node, f"comparison {type(op).__name__} is not allowed")
            ops.append(function)
        operands = [self.compile(node.left), *(self.compile(c) for c in node.comparators)]

        def evaluate(c: RuleContext) -> Array:
            values = [_number(o(c)) for o in operands]
            parts = [op(values[i], values[i + 1]) for i, op in enumerate(ops)]
            return np.logical_and.reduce(parts) if len(parts) > 1 else parts[0]

        return evaluate

    def call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.fail(node, f"unknown function; allowed: {', '.join(FUNCTIONS)}")
        name = node.func.id
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments")
        if name in TEMPORAL:
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
                raise self.fail(node, f"{name}() takes one field name, e.g. {name}(motor_temp_c)")
            ident = node.args[0].id
            if ident not in self.kind.index:
                raise self.fail(
                    node.args[0], f"{name}() needs a {self.kind.name} field, not {ident!r}"
                )
            self.fields.add(ident)
            self.temporal = True
            if name == "delta":
                return lambda c: c.delta(ident)
            return lambda c: c.rate(ident)
        args = [self.compile(a) for a in node.args]
        if name == "abs":
            if len(args) != 1:
                raise self.fail(node, "abs() takes one argument")
            return lambda c: np.abs(_number(args[0](c)))
        if len(args) < 2:
            raise self.fail(node, f"{name}() takes two or more arguments")
        reduce = np.minimum if name == "min" else np.maximum
        return lambda c: reduce.reduce(np.broadcast_arrays(*(_number(a(c)) for a in args)))


def compile_expression(
    text: str, kind: KindSpec, params: frozenset[str] = frozenset()
) -> Expression:
    """Compile `text` for `kind`; parameters are the names in `params`."""
    if not text.strip():
        raise RuleSyntaxError("the expression is empty", 1)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        # Python reports "unexpected end" as offset 0 (or a later line): point past the end.
        column = exc.offset if exc.offset and (exc.lineno or 1) == 1 else len(text) + 1
        raise RuleSyntaxError(f"not a valid expression: {exc.msg}", column) from exc
    compiler = _Compiler(kind, params)
    node = compiler.compile(tree)
    return Expression(
        text, frozenset(compiler.fields), frozenset(compiler.params), compiler.temporal, node
    )
