"""The soak run: its checker on hand-made histories, and the short run for real.

The short run starts PostgreSQL, Redis, the issuer, service-b (gunicorn, 4 workers) behind nginx and
Locust in subprocesses (Locust's gevent never patches this process) and fails on any violated
bound. It skips when a real component is not installed (fails in CI, as tests/realservices do).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.soak.checker import check
from tests.realservices.servers import require

REPO = Path(__file__).resolve().parents[1]
# The known bug: in an emergency rotation, a worker meeting the new kid while another process
# fetches the JWKS answers 401 at once (measured: 11-14 valid requests in the first ~200 ms). Helper
# A fixes it in jwks.py; once that is merged, set this to False: the short run then fails on them.
KNOWN_EMERGENCY_ROTATION_RACE = False
SETTINGS = {"REVOCATION_CHECK_INTERVAL": 1.0, "REVOCATION_DB_CHECK_INTERVAL": 5.0}


def req(t0, status, kind="valid", client="client-0001", gen=0, path="auth", dt=0.01, **extra):
    return {
        "path": path,
        "t0": t0,
        "t1": t0 + dt,
        "status": status,
        "kind": kind,
        "client": client,
        "gen": gen,
        **extra,
    }


def timeline(**parts):
    return {"settings": SETTINGS, "faults": [], "changes": [], "generations": [], **parts}


def test_a_clean_history_violates_nothing():
    history = [
        req(100.0, 200),
        req(100.1, 401, kind="expired"),
        req(100.2, 401, kind="tampered"),
        req(100.3, 401, kind="wrong_aud"),
        req(100.4, 401, kind="revoked_client"),
        req(100.5, 200, kind="floor", path="floor"),
    ]
    result = check(history, timeline())
    assert result.violations == []
    assert (result.auth_requests, result.floor_requests) == (5, 1)
    assert result.latency["p50_ratio"] == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["expired", "tampered", "wrong_aud", "revoked_client"])
def test_an_invalid_token_answered_200_is_a_false_accept(kind):
    result = check([req(100.0, 200, kind=kind)], timeline())
    assert len(result.false_accepts) == 1
    assert "1 false accepts" in result.violations[0]


def test_a_refused_valid_token_is_a_false_reject_timed_from_an_emergency_rotation():
    gens = [
        {"generation": 0, "started": 40.0, "published": 50.0},
        {"generation": 1, "started": 99.5, "published": 100.0, "emergency": True},
    ]
    history = [
        req(100.05, 401, gen=1),  # the new key, refused: the known unknown-kid race
        req(100.06, 200, gen=0),  # the withdrawn key after the rotation: not judged
        req(99.4, 401, gen=0, dt=0.2),  # answered after the rotation began: either answer, not judged
        req(99.2, 200, gen=0),  # the old key before it: judged, fine
        req(99.3, 401, gen=0),  # ...and refused before it began: a false reject
    ]
    result = check(history, timeline(generations=gens))
    assert len(result.false_rejects) == 2 and result.unjudged == 2
    assert "(+50 ms from the emergency rotation)" in result.violations[0]


def test_a_revocation_has_its_bound_and_its_propagation_is_measured():
    change = {"client": "watch-revoke", "what": "revoke", "start": 96.0, "end": 100.0, "committed": 99.0}
    ok = [
        req(95.0, 200, client="watch-revoke", kind="watch_revoke"),
        req(99.8, 200, client="watch-revoke", kind="watch_revoke"),  # within 1.5 s of the commit
        req(100.6, 401, client="watch-revoke", kind="watch_revoke"),
    ]
    result = check(ok, timeline(changes=[change]))
    assert result.violations == []
    assert result.propagation[0]["longest"] == pytest.approx(0.8)
    assert result.propagation[0]["per_worker"] == {"?": pytest.approx(0.8)}
    late = ok + [req(100.7, 200, client="watch-revoke", kind="watch_revoke")]  # 1.7 s after the commit
    result = check(late, timeline(changes=[change]))
    assert len(result.false_accepts) == 1
    assert any("past the 1.50s bound" in v for v in result.violations)


def test_a_revocation_while_redis_is_down_has_the_database_interval():
    change = {"client": "w", "what": "revoke", "start": 96.0, "end": 100.0, "committed": 99.0, "redis_down": True}
    history = [req(103.0, 200, client="w", kind="watch_revoke"), req(104.5, 200, client="w", kind="watch_revoke")]
    result = check(history, timeline(changes=[change]))
    assert [len(result.false_accepts), result.propagation[0]["bound"]] == [1, 5.0]


def test_a_status_list_revocation_has_the_lists_ttl_plus_one_second():
    """Issuer-driven revocation: a token revoked at the issuer, refused within the list's ttl + 1 s."""
    change = {"client": "s", "what": "token_status", "start": 96.0, "end": 100.0, "committed": 99.0}
    history = [req(104.5, 200, client="s", kind="watch_status"), req(106.5, 200, client="s", kind="watch_status")]
    result = check(history, timeline(changes=[change], settings={**SETTINGS, "STATUS_LIST_TTL": 5}))
    assert (len(result.false_accepts), result.propagation[0]["bound"]) == (1, 6.0)


def test_a_grant_is_403_before_and_200_after():
    change = {"client": "g", "what": "grant", "start": 96.0, "end": 100.0, "committed": 99.0}
    history = [req(95.0, 200, client="g", kind="watch_grant")]  # a 200 before the grant: a false accept
    history += [req(101.0, 403, client="g", kind="watch_grant")]  # a 403 2 s after it: a false reject
    result = check(history, timeline(changes=[change]))
    assert (len(result.false_accepts), len(result.false_rejects)) == (1, 1)


def test_only_requests_in_flight_at_a_worker_kill_may_fail():
    kill = {"name": "worker_kill", "start": 100.0, "end": 100.0, "pid": 1, "concurrency": 1}
    in_flight = req(99.99, 502, dt=0.05)
    result = check([in_flight], timeline(faults=[kill]))
    assert result.violations == [] and len(result.in_flight_at_kill) == 1
    result = check([in_flight, req(100.2, 502)], timeline(faults=[kill]))  # sent after the kill
    assert len(result.failures) == 1
    result = check([in_flight, req(99.98, 502, dt=0.1)], timeline(faults=[kill]))  # more than one
    assert any("more than the 1" in v for v in result.violations)


def test_a_fault_that_left_no_trace_is_a_violation():
    result = check([req(100.0, 200)], timeline(evidence={"jwks_down": 3, "redis_down": 0}))
    assert result.violations == ["fault redis_down left no trace in the logs"]


@pytest.mark.parametrize("status", [0, 500, 502, 503])
def test_5xx_and_timeouts_are_failures(status):
    result = check([req(100.0, status, error="Timeout" if not status else None)], timeline())
    assert len(result.failures) == 1
    assert len(result.responses_503) == (status == 503)
    assert len(check([req(100.0, status, kind="floor", path="floor")], timeline()).failures) == 1


@pytest.mark.slow
def test_short_soak_run_holds_every_bound(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak" / "run.py"), "--short", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(REPO),
        env={k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SOAK_"))},
    )
    if done.returncode == 77:
        require(done.stdout.strip().removeprefix("SKIP: "), False)
    assert done.returncode in (0, 1), f"the soak run did not finish:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    print(done.stdout)  # the report: shown with -s or on failure
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["auth_requests"] > 1000 and result["floor_requests"] > 200, "too little load to judge"
    if KNOWN_EMERGENCY_ROTATION_RACE and result["violations"] and _only_the_known_race(result):
        published = [g["published"] for g in result["timeline"]["generations"] if g.get("emergency")]
        offsets = [min((t - p for p in published), key=abs) * 1000 for t in result["false_reject_times"]]
        pytest.xfail(
            f"the known emergency-rotation race only: {result['false_rejects']} false rejects, "
            f"{min(offsets):+.0f} to {max(offsets):+.0f} ms from the new key's publication; "
            f"answers: {result['false_reject_reasons']}"
        )
    assert result["violations"] == [], done.stdout
    assert done.returncode == 0


def _only_the_known_race(result: dict) -> bool:
    """Every violation is a valid token refused within 1 s of an emergency rotation's publication."""
    if result["false_accepts"] or result["failures"] or any(c["late"] for c in result["propagation"]):
        return False
    emergencies = [g["published"] for g in result["timeline"]["generations"] if g.get("emergency")]
    rejects = result["false_reject_times"]
    return bool(rejects) and all(any(0 <= t - e <= 1.0 for e in emergencies) for t in rejects)


def test_only_false_rejects_right_after_an_emergency_rotation_count_as_the_known_race():
    def result(times, **counts):
        return {
            "false_accepts": counts.get("false_accepts", 0),
            "failures": counts.get("failures", 0),
            "propagation": [{"late": counts.get("late", 0)}],
            "timeline": {"generations": [{"published": 50.0}, {"published": 100.0, "emergency": True}]},
            "false_reject_times": times,
        }

    assert _only_the_known_race(result([100.01, 100.2]))
    assert not _only_the_known_race(result([100.01, 103.0]))  # one 3 s later: not the race
    assert not _only_the_known_race(result([50.05]))  # after a normal rotation: never allowed
    assert not _only_the_known_race(result([100.01], failures=1))
    assert not _only_the_known_race(result([100.01], late=1))


def test_503_answers_are_grouped_into_windows():
    history = [req(100.0, 503), req(100.5, 503), req(103.0, 503), req(100.2, 200)]
    result = check(history, timeline()).as_dict()
    assert [(w[0], w[2]) for w in result["windows_503"]] == [(100.0, 2), (103.0, 1)]
    assert result["failures"] == 3  # still failures: no 503 window is documented for these faults


def test_a_watched_clients_401_after_an_emergency_rotation_is_not_judged_but_a_200_is():
    gens = [
        {"generation": 0, "published": 50.0},
        {"generation": 1, "started": 99.5, "published": 100.0, "emergency": True},
    ]
    grant = {"client": "g", "what": "grant", "start": 80.0, "end": 81.0, "committed": 80.5}
    revoke = {"client": "r", "what": "revoke", "start": 80.0, "end": 81.0, "committed": 80.5}
    history = [
        req(100.1, 401, client="g", kind="watch_grant", gen=0),  # withdrawn key: a 401 may be right
        req(100.2, 200, client="r", kind="watch_revoke", gen=0),  # revoked 20 s ago: still a false accept
        req(100.3, 401, client="g", kind="watch_grant", gen=1),  # the new key refused: a false reject
    ]
    result = check(history, timeline(generations=gens, changes=[grant, revoke]))
    assert (result.unjudged, len(result.false_accepts), len(result.false_rejects)) == (1, 1, 1)


def test_a_change_never_observed_after_its_bound_is_a_violation():
    change = {"client": "s", "what": "token_status", "start": 96.0, "end": 96.1, "committed": 96.0}
    settings = {**SETTINGS, "STATUS_LIST_TTL": 5}
    only_before = [req(97.0, 200, client="s", kind="watch_status")]
    result = check(only_before, timeline(changes=[change], settings=settings))
    assert result.violations == ["token_status of s: no request after its bound, so it was never judged"]
    seen = only_before + [req(102.5, 401, client="s", kind="watch_status")]
    assert check(seen, timeline(changes=[change], settings=settings)).violations == []
