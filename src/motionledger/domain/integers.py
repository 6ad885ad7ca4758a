"""Integers written as integral floats (`1764480000000.0`): JSON Schema calls them integers,
so the ledger takes them where an integer goes, at both doors alike.

msgspec's typed decode refuses a float for an `int` field, which keeps the hot path fast and
strict. Only when that is the complaint is the body decoded again, plainly, and each float
that stands where the type has an integer and has no fractional part becomes that integer;
floats anywhere else (metadata, float fields) are left exactly as sent. Then the typed
conversion runs as strictly as ever (bounds included).
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

import msgspec
import msgspec.inspect as mi

T = TypeVar("T")
_FLOAT_FOR_INT: Final = ("Expected `int", "got `float`")


def is_integral_float_complaint(error: msgspec.ValidationError) -> bool:
    message = str(error)
    return all(part in message for part in _FLOAT_FOR_INT)


def decode_with_integral_floats(raw: bytes, type_: type[T] | Any) -> T:
    """`raw` as `type_`, integral floats taken as the integers they are. Raises what a
    strict decode raises (ValidationError, DecodeError) for anything else wrong."""
    value = msgspec.json.decode(raw)
    fixed = _ints_where_typed(value, mi.type_info(type_))
    converted: T = msgspec.convert(fixed, type_, strict=True)
    return converted


def _ints_where_typed(value: Any, info: mi.Type) -> Any:
    info = _unwrapped(info)
    if isinstance(info, mi.IntType):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value
    if isinstance(info, mi.UnionType):
        return _in_union(value, info)
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        return _in_struct(value, info)
    if isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType) and (
        isinstance(value, list)
    ):
        return [_ints_where_typed(item, info.item_type) for item in value]
    return value


def _unwrapped(info: mi.Type) -> mi.Type:
    while isinstance(info, mi.Metadata):
        info = info.type
    return info


def _in_union(value: Any, info: mi.UnionType) -> Any:
    types = [_unwrapped(t) for t in info.types]
    if (
        isinstance(value, float)
        and any(isinstance(t, mi.IntType) for t in types)
        and not any(isinstance(t, mi.FloatType) for t in types)
    ):
        return _ints_where_typed(value, mi.IntType())
    structs = [t for t in types if isinstance(t, mi.StructType)]
    if isinstance(value, dict) and structs:
        chosen = _tagged(value, structs)
        if chosen is not None:
            return _in_struct(value, chosen)
    return value


def _tagged(value: dict[str, Any], structs: list[mi.StructType]) -> mi.StructType | None:
    if len(structs) == 1:
        return structs[0]
    for struct in structs:
        if struct.tag_field is not None and value.get(struct.tag_field) == struct.tag:
            return struct
    return None


def _in_struct(value: dict[str, Any], info: mi.StructType) -> dict[str, Any]:
    fixed = dict(value)
    for field in info.fields:
        if field.encode_name in fixed:
            fixed[field.encode_name] = _ints_where_typed(fixed[field.encode_name], field.type)
    return fixed
