"""A small declarative checker for untrusted JSON: each field's kind, bounds and nesting.

:func:`validate` walks a parsed document against a :class:`Field` tree and raises
:class:`Invalid` naming the dotted path of the first field that breaks it.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple


class Field(NamedTuple):
    """One field of a schema: a kind of JSON value and its bounds.

    ``low``/``high`` bound the value of an ``int`` or ``number`` and the length of a
    ``text``, ``list`` or ``mapping``. ``of`` is the item's field (``list``, ``mapping``),
    the fields (``section``), the allowed values (``choice``) or a regex (``text``).
    """

    kind: str  # int, number, bool, text, choice, scalar, list, section, mapping, json
    low: Any = None
    high: Any = None
    of: Any = None
    null: bool = False  # JSON null is allowed too
    required: bool = True  # in a section: the key must be present
    open: str = ""  # number: "low", "high" or "both" ends excluded from the range
    extra: Any = None  # section: the field any unknown key must satisfy (None: unknown keys refused)


def integer(low: int, high: int) -> Field:
    return Field("int", low, high)


def number(low: float, high: float, open: str = "") -> Field:
    return Field("number", low, high, open=open)


def text(high: int, pattern: re.Pattern | None = None) -> Field:
    return Field("text", 0, high, of=pattern)


def choice(*values: Any) -> Field:
    return Field("choice", of=values)


def list_of(item: Field, low: int, high: int) -> Field:
    return Field("list", low, high, of=item)


def section(fields: dict[str, Field], extra: Field | None = None) -> Field:
    return Field("section", of=fields, extra=extra)


def mapping(value: Field, high: int) -> Field:
    return Field("mapping", 0, high, of=value)


def nullable(f: Field) -> Field:
    return f._replace(null=True)


def optional(f: Field) -> Field:
    return f._replace(required=False)


FLAG = Field("bool")


class Invalid(ValueError):
    """A field of ganaug.json breaks the schema: (dotted path, what is wrong)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where, self.problem = where, problem


def short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def _describe(f: Field) -> str:
    if f.kind == "int":
        return f"an integer from {f.low} to {f.high}"
    if f.kind == "number":
        lo = "(" if f.open in ("low", "both") else "["
        hi = ")" if f.open in ("high", "both") else "]"
        return "a finite number" if math.isinf(f.low) else f"a number in {lo}{f.low:g}, {f.high:g}{hi}"
    if f.kind == "bool":
        return "true or false"
    if f.kind == "text":
        return f"a string of at most {f.high} characters" + (f" matching {f.of.pattern}" if f.of else "")
    if f.kind == "choice":
        return "one of " + ", ".join(repr(v) for v in f.of)
    if f.kind == "scalar":
        return f"a string (at most {f.high} characters), a finite number or a boolean"
    if f.kind == "list":
        return f"a list of {f.low} items" if f.low == f.high else f"a list of {f.low} to {f.high} items"
    if f.kind in ("section", "mapping"):
        return "an object"
    return "a JSON value"


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _json_depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth >= limit:
                return False
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return True


def validate(value: Any, f: Field, where: str = "") -> None:
    """Check ``value`` (parsed JSON) against field ``f``; raises ``Invalid(where, problem)``."""
    if value is None:
        if f.null or f.kind == "json":
            return
        raise Invalid(where, f"must be {_describe(f)}, got null")
    kind = f.kind
    bad = Invalid(where, f"must be {_describe(f)}, got {short(value)}")
    if kind == "int":
        if not is_int(value) or not f.low <= value <= f.high:
            raise bad
    elif kind == "number":
        if not is_number(value) or not math.isfinite(value):
            raise bad
        if (value < f.low or value > f.high or (value == f.low and f.open in ("low", "both"))
                or (value == f.high and f.open in ("high", "both"))):
            raise bad
    elif kind == "bool":
        if not isinstance(value, bool):
            raise bad
    elif kind == "text":
        if not isinstance(value, str) or len(value) > f.high or (f.of is not None and not f.of.fullmatch(value)):
            raise bad
    elif kind == "choice":
        if not isinstance(value, str) or value not in f.of:
            raise bad
    elif kind == "scalar":
        ok = (isinstance(value, str) and len(value) <= f.high) or isinstance(value, bool) or is_int(value) or (
            isinstance(value, float) and math.isfinite(value))
        if not ok:
            raise bad
    elif kind == "list":
        if not isinstance(value, list) or not f.low <= len(value) <= f.high:
            raise bad
        for i, item in enumerate(value):
            validate(item, f.of, f"{where}[{i}]")
    elif kind == "mapping":
        if not isinstance(value, dict) or len(value) > f.high:
            raise Invalid(where, f"must be an object of at most {f.high} entries, got {short(value)}")
        for key, item in value.items():
            validate(item, f.of, f"{where}.{key}" if where else key)
    elif kind == "section":
        if not isinstance(value, dict):
            raise bad
        for key, sub in f.of.items():
            if key in value:
                validate(value[key], sub, f"{where}.{key}" if where else key)
            elif sub.required:
                raise Invalid(f"{where}.{key}" if where else key, "is missing")
        for key in value:
            if key not in f.of:
                if f.extra is None:
                    raise Invalid(f"{where}.{key}" if where else key, "is not a known field")
                validate(value[key], f.extra, f"{where}.{key}" if where else key)
    elif kind == "json":
        if not _json_depth_ok(value, f.high):
            raise Invalid(where, f"is nested deeper than {f.high} levels")
    else:  # pragma: no cover - a typo in the schema
        raise AssertionError(f"unknown schema kind {kind!r}")

