"""Grid filters: small boolean expressions over a scenario's option values, e.g. `gbs % num_gpus == 0`.

Only literals, option names, arithmetic, comparisons, `and`/`or`/`not`, `in` and conditional expressions are
allowed; anything else (calls, attributes, subscripts) is rejected when the grid is loaded, so a grid file can
never run code.
"""

import ast
import operator
from collections.abc import Callable
from typing import Any

from costmodels.errors import SpecError

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos}
_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp,
            ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple, *_BINARY, *_COMPARE, *_UNARY)


class Filter:
    """One parsed filter expression; `keeps(values)` says whether a scenario passes it."""

    def __init__(self, text: str, names: set[str], source: str):
        self.text = text
        try:
            self._tree = ast.parse(text, mode="eval")
        except SyntaxError as exc:
            raise SpecError(f"filter {text!r} is not an expression: {exc.msg}", field="filters",
                            source=source) from None
        for node in ast.walk(self._tree):
            if not isinstance(node, _ALLOWED):
                raise SpecError(f"filter {text!r} uses {type(node).__name__}; allowed: names, literals, arithmetic, "
                                "comparisons, and/or/not, in, if-else", field="filters", source=source)
            if isinstance(node, ast.Name) and node.id not in names:
                raise SpecError(f"filter {text!r} names {node.id!r}, which is not a grid option; "
                                f"grid options: {', '.join(sorted(names))}", field="filters", source=source)

    def keeps(self, values: dict) -> bool:
        return bool(_eval(self._tree.body, values))


def _eval(node: ast.AST, values: dict) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values.get(node.id)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, values) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        parts = (_eval(v, values) for v in node.values)
        return all(parts) if isinstance(node.op, ast.And) else any(parts)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, ast.IfExp):
        return _eval(node.body, values) if _eval(node.test, values) else _eval(node.orelse, values)
    if not isinstance(node, ast.Compare):  # unreachable: Filter admits no other node
        raise TypeError(f"unexpected {type(node).__name__} in a filter")
    left = _eval(node.left, values)
    for op, right_node in zip(node.ops, node.comparators, strict=True):
        right = _eval(right_node, values)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True
