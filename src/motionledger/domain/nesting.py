"""How deep a JSON text nests, read from its bytes before anything decodes it.

Every walk over a decoded value in this process shares Python's one recursion budget
(~1,000 frames): msgspec's decoder, encoder and `to_builtins` are C, but count against it,
so how deep they reach depends on how deep the caller's stack already is (and on the
Python version); a Python recursion through a comprehension spends two frames per level.
A producer can send arrays nested 50,000 deep in 100 KB. PostgreSQL is not the bound:
its jsonb parser takes 10,000 levels at the default `max_stack_depth` of 2 MB (and
refuses 20,000 with "stack depth limit exceeded").

So the ledger takes JSON nested at most `MAX_JSON_DEPTH` deep: a bound every walk meets
with room to spare (256 levels at two frames each still leaves half the budget to the
caller), and far beyond what a shoot's metadata needs. It is checked on the raw bytes,
before decoding, so the verdict on a body is the same whoever checks it, from whatever
stack: the judge over NATS and the HTTP write routes agree.
"""

from __future__ import annotations

import re
from typing import Final

from .reasons import Reason, Rejection

MAX_JSON_DEPTH: Final = 256  # arrays and objects; the event object itself is level 1

TOO_DEEP: Final = Rejection(
    Reason.INVALID_JSON,
    f"JSON nested more than {MAX_JSON_DEPTH} levels deep (arrays and objects); "
    f"the ledger takes at most {MAX_JSON_DEPTH}",
)

# A string, closed or running to the end of the text: one left-to-right pass, so an
# unclosed quote costs no rescans (a lazy or unanchored pattern would be quadratic).
_STRING: Final = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_RUNS: Final = re.compile(rb"[\[{]+|[\]}]+")
_OPENING: Final = frozenset(b"[{")


def nests_deeper_than(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `raw` opens more than `limit` arrays/objects inside one another.

    Exact for JSON; for text that is not JSON, some reading of it that never raises (the
    decoder rejects such text anyway). Free for short bodies: nesting deeper than `limit`
    takes more than `2 * limit` bytes.
    """
    if len(raw) <= 2 * limit or raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for run in _RUNS.finditer(_STRING.sub(b"", raw)):
        brackets = run.group()
        if brackets[0] in _OPENING:
            depth += len(brackets)
            if depth > limit:
                return True
        else:
            depth -= len(brackets)
    return False
