"""The judge's bounded memory."""

from __future__ import annotations

from motionledger.domain.judge import FactKeys, Knowledge, Prior
from motionledger.services.memory import JudgeMemory, Recent


def test_recent_is_bounded_and_keeps_what_is_used() -> None:
    recent: Recent[int, bool] = Recent(100)
    recent.put(-1, True)
    for i in range(1000):
        recent.put(i, True)
        assert -1 in recent  # used all along: promoted, never evicted
    assert len(recent) <= 100
    assert 0 not in recent
    assert 999 in recent


def test_recent_present_does_not_promote() -> None:
    recent: Recent[str, bool] = Recent(4)
    recent.put_all(["a", "b"], True)
    assert recent.present({"a", "x"}) == {"a"}


def test_split_answers_from_memory_and_names_the_rest() -> None:
    memory = JudgeMemory(facts=100, event_ids=100)
    memory.absorb(
        Knowledge(
            priors={"e1": Prior(b"{}")},
            sessions={"S1"},
            cameras={("S1", "c1")},
            stills={"st1": "S1"},
            assets={"a1"},
        )
    )
    keys = FactKeys(
        sessions={"S1", "S2"},
        cameras={("S1", "c1"), ("S1", "c2")},
        stills={"st1", "st2"},
        assets={"a1", "a2"},
    )
    known, missing = memory.split(keys)
    assert memory.event_ids.present({"e1", "e2"}) == {"e1"}  # judged lately: looked up
    assert (known.sessions, known.cameras, known.stills, known.assets) == (
        {"S1"},
        {("S1", "c1")},
        {"st1": "S1"},
        {"a1"},
    )
    assert (missing.sessions, missing.cameras, missing.stills, missing.assets) == (
        {"S2"},
        {("S1", "c2")},
        {"st2"},
        {"a2"},
    )
    memory.clear()
    _, missing = memory.split(keys)
    assert missing.sessions == {"S1", "S2"}
