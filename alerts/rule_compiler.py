"""The compiler of rule expressions (the language: `alerts.rule_language`): Python's `ast` of
the text, checked node by node, turned into a tree of numpy closures over a `RuleContext`.

Nothing is passed to `eval`. Pure sub-expressions (no window state) are memoised under their
text in the context, so rules of one kind share them within a batch.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alerts.rule_context import RuleContext
from alerts.rule_language import (
    DEFAULT_CAPACITY,
    MAX_CAPACITY,
    RuleSyntaxError,
    as_number,
    parse_duration_s,
    truth,
)
from alerts.rule_windows import WindowSpec
from facility.batch import Array, BoolArray, FloatArray
from facility.catalog import KindSpec

Node = Callable[[RuleContext], Array]
"""A compiled (sub-)expression: its value at every row of the context."""


def _not_equal(a: Array, b: Array) -> Array:
    return np.not_equal(a, b) & ~np.isnan(a) & ~np.isnan(b)


_COMPARE: dict[type[ast.cmpop], Callable[[Array, Array], Array]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: _not_equal,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Array, Array], Array]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Mod: np.mod,
}
TEMPORAL = ("delta", "rate")
WINDOWED = ("count", "changes", "mean", "median", "slope")
FUNCTIONS = (
    "abs", "min", "max", "rail", "moving", "pinned", *TEMPORAL, "age", "stuck", *WINDOWED,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled rule expression: called with a context, its truth at every row."""

    text: str
    fields: frozenset[str]
    params: frozenset[str]
    temporal: bool
    """Uses delta / rate: needs each device's previous reading."""
    node: Node
    """The compiled tree."""
    windows: tuple[WindowSpec, ...] = ()
    uses_age: bool = False
    """Uses age(): evaluated on the engine's timer as well as at readings."""
    reads_field_age: bool = False
    """Uses age(field): the engine must keep when each field last had a value."""

    def __call__(self, context: RuleContext) -> BoolArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            result = self.node(context)
        if result.shape != (len(context.batch),):  # a constant expression
            result = np.broadcast_to(result, (len(context.batch),))
        return truth(result)

    def number(self, context: RuleContext) -> FloatArray:
        """The expression's value at each reading as a number (true = 1, NaN = none)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            result = as_number(self.node(context))
        if result.shape != (len(context.batch),):  # a constant expression
            result = np.broadcast_to(result, (len(context.batch),)).astype(np.float64)
        return result


class _Compiler:
    def __init__(
        self,
        kind: KindSpec,
        params: frozenset[str],
        prefix: str,
        window_texts: dict[str, WindowSpec] | None = None,
    ) -> None:
        self.kind = kind
        self.known_params = params
        self.prefix = prefix
        self.fields: set[str] = set()
        self.params: set[str] = set()
        self.temporal = False
        self.uses_age = False
        self.reads_field_age = False
        self.windows: list[WindowSpec] = []
        self.window_texts = {} if window_texts is None else window_texts
        """Windows by text: this expression's, and those of the rule's other expressions."""

    def fail(self, node: ast.AST, message: str) -> RuleSyntaxError:
        return RuleSyntaxError(message, getattr(node, "col_offset", 0) + 1)

    def compile(self, node: ast.AST) -> Node:
        """The node's numpy function; a pure one (no window inside) is memoised in the
        context under its text, so rules of one kind share it within a batch."""
        windows = len(self.windows)
        compiled = self._compile(node)
        if isinstance(node, (ast.Expression, ast.Constant)) or len(self.windows) != windows:
            return compiled
        key = ast.unparse(node)

        def memoised(c: RuleContext) -> Array:
            value = c.memo.get(key)
            if value is None:
                value = c.memo[key] = compiled(c)
            return value

        return memoised

    def _compile(self, node: ast.AST) -> Node:
        if isinstance(node, ast.Expression):
            return self.compile(node.body)
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            op = _ARITHMETIC.get(type(node.op))
            if op is None:
                raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
            left, right = self.compile(node.left), self.compile(node.right)
            return lambda c: op(as_number(left(c)), as_number(right(c)))
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
        if isinstance(value, str):
            raise self.fail(
                node,
                f"only numbers and true/false are allowed, not {value!r} "
                '(text only as a window, e.g. mean(x, "10m"))',
            )
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
        if ident == "heartbeat_s":
            heartbeat = np.float64(self.kind.heartbeat_s)
            return lambda c: np.asarray(heartbeat)
        raise self.fail(
            node,
            f"unknown name {ident!r}: not a {self.kind.name} field nor a parameter "
            f"(fields: {', '.join(self.kind.field_names)})",
        )

    def bool_op(self, node: ast.BoolOp) -> Node:
        """`and` / `or` over every part; once the result is settled for every row, the
        remaining parts without window state are skipped (windows must see every batch)."""
        is_and = isinstance(node.op, ast.And)
        parts = []
        for value in node.values:
            windows = len(self.windows)
            parts.append((self.compile(value), len(self.windows) == windows))

        def evaluate(c: RuleContext) -> Array:
            result = truth(np.asarray(parts[0][0](c)))
            for part, pure in parts[1:]:
                settled = not result.any() if is_and else bool(result.all())
                if settled and pure:
                    continue
                value = truth(np.asarray(part(c)))
                result = (result & value) if is_and else (result | value)
            return result

        return evaluate

    def unary(self, node: ast.UnaryOp) -> Node:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda c: np.logical_not(truth(operand(c)))
        if isinstance(node.op, ast.USub):
            return lambda c: np.negative(as_number(operand(c)))
        if isinstance(node.op, ast.UAdd):
            return lambda c: as_number(operand(c))
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
            values = [as_number(o(c)) for o in operands]
            result = ops[0](values[0], values[1])
            for i in range(1, len(ops)):
                result = result & ops[i](values[i], values[i + 1])
            return result

        return evaluate

    def field_arg(self, node: ast.Call, name: str) -> str:
        if not node.args or not isinstance(node.args[0], ast.Name):
            raise self.fail(node, f"{name}() takes one field name, e.g. {name}(motor_temp_c)")
        ident = node.args[0].id
        if ident not in self.kind.index:
            raise self.fail(node.args[0], f"{name}() needs a {self.kind.name} field, not {ident!r}")
        self.fields.add(ident)
        return ident

    def call(self, node: ast.Call) -> Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.fail(node, f"unknown function; allowed: {', '.join(FUNCTIONS)}")
        name = node.func.id
        if name in (*WINDOWED, "stuck"):
            return self.windowed(node, name)
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments")
        if name == "age":
            self.uses_age = True
            if not node.args:
                return lambda c: c.age(None)
            if len(node.args) != 1:
                raise self.fail(node, "age() takes no argument or one field name")
            ident = self.field_arg(node, name)
            self.reads_field_age = True
            return lambda c: c.age(ident)
        if name in ("moving", "pinned"):
            if len(node.args) != 1:
                raise self.fail(node, f"{name}() takes one field name, e.g. {name}(lux)")
            return self.sensor(node, name, self.field_arg(node, name))
        if name in (*TEMPORAL, "rail"):
            if len(node.args) != 1:
                raise self.fail(node, f"{name}() takes one field name, e.g. {name}(motor_temp_c)")
            ident = self.field_arg(node, name)
            if name == "rail":
                spec = self.kind.fields[self.kind.col(ident)]
                lo, hi = spec.min, spec.max
                return lambda c: (c.column(ident) <= lo) | (c.column(ident) >= hi)
            self.temporal = True
            if name == "delta":
                return lambda c: c.delta(ident)
            return lambda c: c.rate(ident)
        args = [self.compile(a) for a in node.args]
        if name == "abs":
            if len(args) != 1:
                raise self.fail(node, "abs() takes one argument")
            return lambda c: np.abs(as_number(args[0](c)))
        if len(args) < 2:
            raise self.fail(node, f"{name}() takes two or more arguments")
        pairwise = np.minimum if name == "min" else np.maximum

        def extreme(c: RuleContext) -> Array:
            result = as_number(args[0](c))
            for a in args[1:]:
                result = pairwise(result, as_number(a(c)))
            return result

        return extreme

    def sensor(self, node: ast.Call, name: str, ident: str) -> Node:
        """moving(field): the catalog's condition under which the signal must be live (true
        when it gives none). pinned(field): the reading sits at a rail that is not a value at
        rest: its top, or its bottom unless the catalog calls that a rest value and the
        signal need not move now."""
        spec = self.kind.fields[self.kind.col(ident)]
        if spec.moves_when:
            try:
                moving = self.compile(ast.parse(spec.moves_when, mode="eval").body)
            except (SyntaxError, RuleSyntaxError) as exc:  # the catalog is ours: a bug
                raise self.fail(
                    node, f"the catalog's moves_when of {ident} is broken: {exc}"
                ) from exc
        else:
            moving = None
        if name == "moving":
            if moving is None:
                return lambda c: np.ones(len(c.batch), np.bool_)
            return moving
        lo, hi = spec.min, spec.max
        if not spec.rest_at_rail:
            return lambda c: (c.column(ident) <= lo) | (c.column(ident) >= hi)
        if moving is None:
            return lambda c: c.column(ident) >= hi
        live = moving

        def pinned(c: RuleContext) -> Array:
            values = c.column(ident)
            result: Array = (values >= hi) | ((values <= lo) & truth(live(c)))
            return result

        return pinned

    def window_arg(
        self, node: ast.Call, name: str, *, time_only: bool
    ) -> tuple[int | None, int | None]:
        if len(node.args) != 2:
            raise self.fail(node, f'{name}() takes a value and a window, e.g. {name}(x, "10m")')
        arg = node.args[1]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            seconds = parse_duration_s(arg.value)
            if seconds is None or seconds <= 0:
                raise self.fail(
                    arg, f'window {arg.value!r} is not a duration like "30s", "10m", "2h"'
                )
            return round(seconds * 1000), None
        if (
            not time_only
            and isinstance(arg, ast.Constant)
            and isinstance(arg.value, int)
            and not isinstance(arg.value, bool)
        ):
            if not 1 <= arg.value <= MAX_CAPACITY:
                raise self.fail(
                    arg, f"a window of the last n readings needs 1 <= n <= {MAX_CAPACITY}"
                )
            return None, arg.value
        what = 'a duration like "10m"' if time_only else 'a duration like "10m" or a count like 5'
        raise self.fail(arg, f"{name}() window must be {what}")

    def windowed(self, node: ast.Call, name: str) -> Node:
        window_ms, last_n = self.window_arg(node, name, time_only=name in ("stuck", "slope"))
        only: Node | None = None
        capacity = max(DEFAULT_CAPACITY, last_n or 0)
        for keyword in node.keywords:
            if name == "stuck":
                raise self.fail(node, "stuck() takes no keyword arguments")
            if keyword.arg == "only":
                only = self.compile(keyword.value)
            elif keyword.arg == "capacity":
                value = keyword.value
                if not (
                    isinstance(value, ast.Constant)
                    and isinstance(value.value, int)
                    and not isinstance(value.value, bool)
                    and 1 <= value.value <= MAX_CAPACITY
                ):
                    raise self.fail(value, f"capacity must be a whole number 1..{MAX_CAPACITY}")
                capacity = value.value
                if last_n is not None and last_n > capacity:
                    raise self.fail(value, "capacity must hold the last n readings")
            else:
                raise self.fail(node, f"{name}() knows the keywords only= and capacity=")
        if name == "stuck":
            ident = self.field_arg(node, name)
            value_node: Node = lambda c: c.column(ident)  # noqa: E731
        else:
            value_node = self.compile(node.args[0])
        text = f"{ast.unparse(node)}/{capacity}"
        twin = self.window_texts.get(text)
        # the same window twice in a rule's expressions: one state, computed once per batch
        # (the twin still takes its number, so later windows keep their checkpointed keys)
        written = ast.Call(node.func, node.args, [k for k in node.keywords if k.arg != "capacity"])
        spec = twin or WindowSpec(  # a last-n window keeps just its n readings
            f"{self.prefix}w{len(self.windows)}",
            name,
            window_ms,
            last_n,
            last_n or capacity,
            ast.unparse(written),
        )
        self.windows.append(spec)
        self.window_texts[text] = spec
        as_bool = name == "count"

        def evaluate(c: RuleContext) -> Array:
            done = c.window_values.get(spec)
            if done is not None:
                return done
            values = value_node(c)
            values = truth(values).astype(np.float64) if as_bool else as_number(values)
            if values.shape != (len(c.batch),):  # a constant
                values = np.full(len(c.batch), values, np.float64)
            mask = None if only is None else truth(only(c))
            if mask is not None and mask.shape != (len(c.batch),):  # a constant
                mask = np.full(len(c.batch), bool(mask), np.bool_)
            result = c.window_values[spec] = c.window(spec, values, mask)
            return result

        return evaluate


def compile_expression(
    text: str,
    kind: KindSpec,
    params: frozenset[str] = frozenset(),
    *,
    prefix: str = "",
    windows: dict[str, WindowSpec] | None = None,
) -> Expression:
    """Compile `text` for `kind`; parameters are the names in `params`; window state keys
    start with `prefix` (so a rule's `when` and `clear` keep theirs apart). `windows`: the
    windows of the rule's expressions compiled before, by text; a window written the same way
    again is the same window (one state, computed once per batch: a title value that shows
    the `when`'s trend does not keep a second copy of it), and this one's new windows go in."""
    if not text.strip():
        raise RuleSyntaxError("the expression is empty", 1)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        # Python reports "unexpected end" as offset 0 (or a later line): point past the end.
        column = exc.offset if exc.offset and (exc.lineno or 1) == 1 else len(text) + 1
        raise RuleSyntaxError(f"not a valid expression: {exc.msg}", column) from exc
    compiler = _Compiler(kind, params, prefix, windows)
    node = compiler.compile(tree)
    if compiler.uses_age and (compiler.windows or compiler.temporal):
        raise RuleSyntaxError(
            "age() is evaluated on the timer as well as at readings: it cannot be combined "
            "with window functions or delta / rate in one expression",
            1,
        )
    return Expression(
        text,
        frozenset(compiler.fields),
        frozenset(compiler.params),
        compiler.temporal,
        node,
        tuple(compiler.windows),
        compiler.uses_age,
        compiler.reads_field_age,
    )
