"""REDCap branching logic and calculated fields: a small, safe evaluator written here.

REDCap writes "show this field only if …" conditions and calculations in its own syntax
(REDCap Help & FAQ, "Branching Logic" and "Calculated Fields"; Harris et al., J Biomed
Inform 2009;42:377–81):

- field references ``[age]``, checkbox options ``[meds(2)]`` (``'1'`` ticked, ``'0'``
  not), an event prefix ``[baseline_arm_1][weight]`` (the event is ignored here: a form
  instance sees its own record) and the smart variable ``[current-instance]``;
- literals ``'text'`` / ``"text"`` and numbers; ``=``, ``<>``, ``!=``, ``<``, ``<=``,
  ``>``, ``>=``; ``and``, ``or``, ``not``; ``+ - * / ^`` and parentheses;
- functions ``if``, ``round``, ``roundup``, ``rounddown``, ``sqrt``, ``abs``, ``min``,
  ``max``, ``sum``, ``mean``, ``median``, ``stdev``, ``datediff``, ``isblankormissingcode``,
  ``isnumber``, ``isinteger``, ``contains``, ``starts_with``, ``ends_with``, ``length``.

This is NOT Python ``eval``: the text is tokenised and parsed by the recursive-descent
parser below into a tree of the constructs listed, and only those are evaluated, so a
data dictionary from elsewhere cannot run code. REDCap's semantics kept: a comparison
is numeric when both sides are numbers, else textual; a blank field equals ``''``; any
arithmetic on a blank value gives a blank result (REDCap leaves such a calculation empty),
except ``sum``/``mean``/``min``/``max``, which skip blanks; ``datediff`` with ``'today'`` is
refused, because it gives a different value every day (the unstable-calculation trap
REDCap's own documentation warns of).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from oncohybrid.errors import InputError

__all__ = ["Expression", "parse", "evaluate", "is_true", "field_names"]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<ref>\[[A-Za-z0-9_\-]+(?:\([A-Za-z0-9_\-.]+\))?(?::[A-Za-z0-9_\-]+)?\])
  | (?P<num>\d+(?:\.\d*)?|\.\d+)
  | (?P<str>'[^']*'|"[^"]*")
  | (?P<op><>|!=|<=|>=|==|=|<|>|\+|-|\*|/|\^|\(|\)|,)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

#: Blank: REDCap's empty value.
BLANK = ""


@dataclass(frozen=True)
class _Node:
    kind: str  # ref, num, str, bin, not, neg, call, and, or
    value: Any = None
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Expression:
    """A parsed logic or calculation: ``text`` and its syntax tree."""

    text: str
    tree: _Node

    def fields(self) -> set[str]:
        """Field names the expression refers to (checkbox option suffix stripped)."""
        out: set[str] = set()

        def walk(n: Any) -> None:
            if isinstance(n, _Node):
                if n.kind == "ref" and n.value[0] != "current-instance":
                    out.add(n.value[0])
                for a in n.args:
                    walk(a)

        walk(self.tree)
        return out


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    # An event prefix [event][field] is two adjacent refs: keep the last one only.
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InputError(f"logic {text!r}: unexpected character {text[pos]!r} at "
                             f"position {pos + 1}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "ws":
            continue
        tok = m.group(kind)
        if kind == "ref" and out and out[-1][0] == "ref" and text[m.start() - 1] == "]":
            out[-1] = (kind, tok)
            continue
        if kind == "name":
            low = tok.lower()
            if low in ("and", "or", "not"):
                out.append(("op", low))
                continue
        out.append((kind, tok))
    return out


class _Parser:
    """Recursive descent; precedence: or < and < not < comparison < + - < * / < ^ < unary."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def error(self, what: str) -> InputError:
        return InputError(f"logic {self.text!r}: {what}")

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.error("ends too early")
        if value is not None and tok[1] != value:
            raise self.error(f"expected {value!r}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> _Node:
        if not self.toks:
            raise self.error("is empty")
        node = self.or_()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def or_(self) -> _Node:
        node = self.and_()
        while self.peek() == ("op", "or"):
            self.take()
            node = _Node("or", None, (node, self.and_()))
        return node

    def and_(self) -> _Node:
        node = self.not_()
        while self.peek() == ("op", "and"):
            self.take()
            node = _Node("and", None, (node, self.not_()))
        return node

    def not_(self) -> _Node:
        if self.peek() == ("op", "not"):
            self.take()
            return _Node("not", None, (self.not_(),))
        return self.cmp()

    def cmp(self) -> _Node:
        node = self.add()
        tok = self.peek()
        if tok and tok[1] in ("=", "==", "<>", "!=", "<", "<=", ">", ">="):
            self.take()
            op = {"==": "=", "!=": "<>"}.get(tok[1], tok[1])
            node = _Node("bin", op, (node, self.add()))
        return node

    def add(self) -> _Node:
        node = self.mul()
        while (tok := self.peek()) and tok[1] in ("+", "-"):
            self.take()
            node = _Node("bin", tok[1], (node, self.mul()))
        return node

    def mul(self) -> _Node:
        node = self.pow()
        while (tok := self.peek()) and tok[1] in ("*", "/"):
            self.take()
            node = _Node("bin", tok[1], (node, self.pow()))
        return node

    def pow(self) -> _Node:
        node = self.unary()
        if (tok := self.peek()) and tok[1] == "^":
            self.take()
            node = _Node("bin", "^", (node, self.pow()))
        return node

    def unary(self) -> _Node:
        tok = self.peek()
        if tok and tok[1] == "-":
            self.take()
            return _Node("neg", None, (self.unary(),))
        if tok and tok[1] == "+":
            self.take()
            return self.unary()
        return self.atom()

    def atom(self) -> _Node:
        kind, tok = self.take()
        if kind == "num":
            return _Node("num", float(tok))
        if kind == "str":
            return _Node("str", tok[1:-1])
        if kind == "ref":
            m = re.fullmatch(r"\[([A-Za-z0-9_\-]+)(?:\(([^)]+)\))?(?::[A-Za-z0-9_\-]+)?\]", tok)
            assert m is not None
            return _Node("ref", (m.group(1), m.group(2)))
        if kind == "op" and tok == "(":
            node = self.or_()
            self.take(")")
            return node
        if kind == "name":
            name = tok.lower()
            if name in ("true", "false"):
                return _Node("num", 1.0 if name == "true" else 0.0)
            if name not in _FUNCTIONS:
                raise self.error(f"unknown function or word {tok!r}")
            self.take("(")
            args: list[_Node] = []
            if self.peek() != ("op", ")"):
                args.append(self.or_())
                while self.peek() == ("op", ","):
                    self.take()
                    args.append(self.or_())
            self.take(")")
            return _Node("call", name, tuple(args))
        raise self.error(f"unexpected {tok!r}")


def parse(text: str) -> Expression:
    """Parse REDCap logic or a calculation; :class:`InputError` names the problem.

    >>> parse("[age] >= 18 and [sex] = '2'").fields() == {"age", "sex"}
    True
    """
    return Expression(text, _Parser(text).parse())


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return None if isinstance(v, float) and math.isnan(v) else float(v)
    s = str(v).strip()
    if s == "":
        return None
    try:
        return float(s)
    except ValueError:
        return None


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return "" if v is None else str(v)


def _truth(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    n = _num(v)
    if n is not None:
        return n != 0
    return False


def _date(v: Any) -> dt.datetime | None:
    s = _text(v).strip()
    if not s:
        return None
    if s.lower() in ("today", "now"):
        raise InputError("datediff with 'today' or 'now' is refused: the value would change "
                         "every day (give the date a field)")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(s, fmt)
        except ValueError:
            continue
    return None


def _datediff(a: Any, b: Any, unit: Any = "d", *_rest: Any) -> Any:
    d1, d2 = _date(a), _date(b)
    if d1 is None or d2 is None:
        return BLANK
    seconds = (d2 - d1).total_seconds()
    per = {"y": 365.2425 * 86400, "M": 30.44 * 86400, "d": 86400, "h": 3600, "m": 60,
           "s": 1}.get(_text(unit))
    if per is None:
        raise InputError(f"datediff: unit {unit!r} is not one of y, M, d, h, m, s")
    # REDCap returns |date2 - date1| unless the last argument (returnSignedValue, after an
    # optional date format "ymd"/"mdy"/"dmy") is true; signed means date2 - date1.
    last = _rest[-1] if _rest else False
    signed = _text(last) not in ("ymd", "mdy", "dmy") and _truth(last)
    value = seconds / per
    return value if signed else abs(value)


def _round(f: Callable[[float], float]) -> Callable[..., Any]:
    def fn(x: Any, places: Any = 0) -> Any:
        n = _num(x)
        if n is None:
            return BLANK
        p = int(_num(places) or 0)
        scale = 10.0 ** p
        return f(n * scale) / scale

    return fn


def _half_up(x: float) -> float:
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def _numbers(args: tuple[Any, ...]) -> list[float]:
    return [n for n in (_num(a) for a in args) if n is not None]


def _agg(f: Callable[[list[float]], float], need: int = 1) -> Callable[..., Any]:
    def fn(*args: Any) -> Any:
        ns = _numbers(args)
        return f(ns) if len(ns) >= need else BLANK

    return fn


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "round": _round(_half_up),
    "roundup": _round(math.ceil),
    "rounddown": _round(math.floor),
    "sqrt": lambda x: BLANK if _num(x) is None or _num(x) < 0 else math.sqrt(_num(x)),  # type: ignore[operator, arg-type]
    "abs": lambda x: BLANK if _num(x) is None else abs(_num(x)),  # type: ignore[arg-type]
    "min": _agg(min),
    "max": _agg(max),
    "sum": _agg(sum),
    "mean": _agg(statistics.fmean),
    "median": _agg(statistics.median),
    "stdev": _agg(statistics.stdev, 2),
    "datediff": _datediff,
    "isblankormissingcode": lambda x: _text(x).strip() == "",
    "isnumber": lambda x: _num(x) is not None,
    "isinteger": lambda x: _num(x) is not None and float(_num(x)).is_integer(),  # type: ignore[arg-type]
    "contains": lambda a, b: _text(b).lower() in _text(a).lower(),
    "starts_with": lambda a, b: _text(a).lower().startswith(_text(b).lower()),
    "ends_with": lambda a, b: _text(a).lower().endswith(_text(b).lower()),
    "length": lambda a: len(_text(a)),
    "if": lambda *a: None,  # evaluated lazily below
}


def _lookup(values: Mapping[str, Any], name: str, option: str | None) -> Any:
    if option is not None:
        v = values.get(f"{name}___{option}")
        if v is None:
            sel = values.get(name)
            if isinstance(sel, (list, tuple, set, frozenset)):
                return "1" if option in {str(x) for x in sel} else "0"
            return "0"
        return "1" if _truth(v) else "0"
    v = values.get(name, BLANK)
    return BLANK if v is None else v


def _eval(n: _Node, values: Mapping[str, Any]) -> Any:
    k = n.kind
    if k == "num" or k == "str":
        return n.value
    if k == "ref":
        name, option = n.value
        return _lookup(values, name, option)
    if k == "and":
        return _truth(_eval(n.args[0], values)) and _truth(_eval(n.args[1], values))
    if k == "or":
        return _truth(_eval(n.args[0], values)) or _truth(_eval(n.args[1], values))
    if k == "not":
        return not _truth(_eval(n.args[0], values))
    if k == "neg":
        x = _num(_eval(n.args[0], values))
        return BLANK if x is None else -x
    if k == "call":
        if n.value == "if":
            if len(n.args) != 3:
                raise InputError("if() takes three arguments: if(condition, then, else)")
            return _eval(n.args[1] if _truth(_eval(n.args[0], values)) else n.args[2], values)
        return _FUNCTIONS[n.value](*(_eval(a, values) for a in n.args))
    op = n.value
    a, b = _eval(n.args[0], values), _eval(n.args[1], values)
    if op in ("=", "<>", "<", "<=", ">", ">="):
        na, nb = _num(a), _num(b)
        if na is not None and nb is not None:
            x, y = na, nb
        else:
            if op in ("<", "<=", ">", ">=") and (_text(a) == "" or _text(b) == ""):
                return False
            x, y = _text(a), _text(b)  # type: ignore[assignment]
        return {"=": x == y, "<>": x != y, "<": x < y, "<=": x <= y, ">": x > y,
                ">=": x >= y}[op]
    na, nb = _num(a), _num(b)
    if na is None or nb is None:
        return BLANK
    if op == "+":
        return na + nb
    if op == "-":
        return na - nb
    if op == "*":
        return na * nb
    if op == "/":
        return BLANK if nb == 0 else na / nb
    if op == "^":
        try:
            return na ** nb
        except (OverflowError, ZeroDivisionError):
            return BLANK
    raise InputError(f"operator {op!r} is not supported")  # pragma: no cover


def evaluate(expr: Expression | str, values: Mapping[str, Any]) -> Any:
    """The value of a calculation (float, bool, text, or ``''`` when blank).

    >>> evaluate("round([weight] / ([height] / 100) ^ 2, 1)", {"weight": "70", "height": "175"})
    22.9
    """
    e = parse(expr) if isinstance(expr, str) else expr
    return _eval(e.tree, values)


def is_true(expr: Expression | str, values: Mapping[str, Any]) -> bool:
    """Whether branching logic holds (an empty condition always does).

    >>> is_true("[meds(2)] = '1' or [age] > 65", {"meds___2": "1", "age": ""})
    True
    """
    if isinstance(expr, str) and not expr.strip():
        return True
    return _truth(evaluate(expr, values))


def field_names(expr: str) -> set[str]:
    """The fields a logic or calculation text refers to."""
    return parse(expr).fields() if expr.strip() else set()


def format_calc(value: Any) -> str:
    """A calculation result as REDCap stores it: numbers without a trailing ``.0``."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ""
        return str(int(value)) if value.is_integer() else f"{value:.10g}"
    return _text(value)
