"""engine/runs/in_use.py: which runs each tab has selected, expiring and bounded."""

from engine.runs.in_use import RunsInUse


def test_runs_in_use_expire_and_stay_bounded():
    now = [0.0]
    seen = RunsInUse(ttl=600, max_entries=3, clock=lambda: now[0])
    seen.record("a", "models", ["1", "2"])
    seen.record("b", "a", [3])
    assert seen.used_elsewhere("b") == {1, 2} and seen.used_elsewhere("a") == {3}
    seen.record("a", "models", ["2"])  # the picker changed: run 1 is no longer in use
    assert seen.used_elsewhere("c") == {2, 3}
    now[0] = 300.0
    seen.record("b", "a", [3])  # refreshed
    now[0] = 700.0  # a's entry is 700 s old, b's 400 s
    assert seen.used_elsewhere("c") == {3} and len(seen) == 1
    for owner in "defg":
        seen.record(owner, "models", [7])
    assert len(seen) == 3 and seen.used_elsewhere("x") == {7}  # the oldest were dropped
    seen.record("g", "models", [])  # a picker with nothing selected holds nothing
    assert len(seen) == 2
