"""Property-based fuzzing of every route and every /api/<name>: no 5xx, no logged error, no hang.

`make test` sends about BUDGET requests in all, split over the targets (FUZZ_EXAMPLES sets the
number per target instead); `make fuzz` runs tests/fuzz_run.py, the long version with counts
by status.
"""

from __future__ import annotations

import os

import pytest
from fuzzing import Fuzz, Req, Target, all_targets, known_hostile, send
from hypothesis import HealthCheck, Phase, given, settings

TARGETS = all_targets()
KNOWN = known_hostile(TARGETS)
# A fixed total, so the suite's time stays put as routes and API names are added.
BUDGET = 1_000
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or max(5, BUDGET // len(TARGETS)))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False,
    # No explain phase: its line tracing slows every replay and adds nothing to a request log.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    # Requests are slow next to pure functions, and a few bodies are deliberately huge.
    suppress_health_check=list(HealthCheck))


class FuzzFailure(AssertionError):
    """A request the app answered badly."""


_KINDS: dict[str, type[FuzzFailure]] = {}


def failure(signature: str, report: str) -> FuzzFailure:
    """One exception class per bug signature, so Hypothesis reports distinct bugs separately."""
    if signature not in _KINDS:
        _KINDS[signature] = type(f"FuzzFailure[{signature}]", (FuzzFailure,), {})
    return _KINDS[signature](report)


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory) -> Fuzz:
    return Fuzz(tmp_path_factory.mktemp("fuzz"))


def test_seeded_projects_read_cleanly(fuzz):
    """Every page and read call over the seeded projects, once, from a cold start."""
    problems = [outcome.report() for outcome in fuzz.warmup if outcome.problems]
    assert not problems, "\n\n".join(problems)


def test_every_api_name_is_dispatched(fuzz):
    """The discovered API names are the ones /api/<name> serves (else discovery is stale)."""
    names = [t.api_name for t in TARGETS if t.api_name]
    assert names, "no API names discovered"
    for name in names + ["no-such-api"]:
        outcome = send(fuzz.app, Req("meta", "POST", f"/api/{name}", body=b"{}"))
        assert (outcome.status == 404) == (name == "no-such-api"), (name, outcome.status)


@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_hostile_requests_get_a_sane_answer(fuzz, target: Target):
    """Any request to the target: status < 500, nothing logged as an error, answered in time."""

    @SETTINGS
    @given(req=fuzz.strategy(target))
    def check(req):
        for outcome in fuzz.check(req):
            if outcome.problems:
                raise failure(outcome.signature, outcome.report())

    check()


@pytest.mark.parametrize("req", [req for _, req in KNOWN], ids=[label for label, _ in KNOWN])
def test_known_hostile_request(fuzz, req: Req):
    """Requests that broke the app before (or are likeliest to) get a sane answer."""
    problems = [outcome.report() for outcome in fuzz.check(req) if outcome.problems]
    assert not problems, "\n\n".join(problems)
