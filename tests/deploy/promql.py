"""Which metric names a PromQL expression reads, and which names the daemon exports.

Not a PromQL parser: enough of the lexical structure to tell a metric name from a
function, keyword, label, duration, number or string, which is all the checks need.
"""

from __future__ import annotations

import re

from prometheus_client.registry import CollectorRegistry

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")  # label matchers, after strings are gone
_RANGE = re.compile(r"\[[^\[\]]*\]")  # [5m], [1h:1m]
_LABEL_LISTS = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_OFFSET = re.compile(r"\b(offset)\s+-?\d+[a-z]+", re.IGNORECASE)
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "offset", "atan2"}
    | {"group_left", "group_right", "inf", "nan"}
)
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (a bare name, or a name before `{...}`)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue  # a function (or aggregation) call, or an operator keyword
        names.add(name)
    return names


def exported_series(registry: CollectorRegistry) -> set[str]:
    """Every series name the registry can expose, labelled children or not."""
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in _HISTOGRAM_SUFFIXES)
        elif family.type == "summary":
            names.update({family.name, f"{family.name}_sum", f"{family.name}_count"})
        else:
            names.add(family.name)
    return names


def unknown_names(expr: str, exported: set[str]) -> set[str]:
    return metric_names(expr) - exported
