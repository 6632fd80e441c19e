"""The rule engine's parallel path gives exactly the serial result."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import types

import pytest

import lora_core
from lora_core import ConfigError, Rule, Severity, hookimpl
from lora_core.engine import rule_units
from lora_core.reporters import Report, violation_json
from lora_core.testing import make_csv_dataset, registry_with
from tests.processes import children_of, kill_and_expect_no_survivor


def test_parallel_workers_match_serial(tmp_path, registry):
    rows = [(f"{i}.png", c) for i, c in enumerate(
        ["cybrpnk,  rain", "cybr\u200bpnk, neon, neon", "same", "same", "Rain, cybrpnk", "a,, b,",
         "\u201cx\u201d; y", "a sentence about a neon city at night"] * 5)]
    path = make_csv_dataset(tmp_path, rows)
    serial = lora_core.lint(path, registry=registry, isolated=True, jobs=1)
    parallel = lora_core.lint(path, registry=registry, isolated=True, jobs=2)
    assert not parallel.crashes

    def dump(result):
        return json.dumps([violation_json(v, Report(result, cwd=tmp_path)) for v in result], sort_keys=True)

    assert dump(parallel) == dump(serial) and len(serial) > 40
    assert all(v.record is not None for v in parallel if v.code == "LK101")
    fixed = lora_core.fix(path, registry=registry, isolated=True, jobs=2)
    assert fixed.applied > 0 and not fixed.remaining.crashes


def test_units_are_heaviest_first_and_keep_shared_work_together(registry):
    units = rule_units(list(registry.rules.values()))
    costs = [sum(r.cost for r in unit) for unit in units]
    assert costs == sorted(costs, reverse=True)
    for unit in units:
        assert len({r.shares for r in unit}) == 1 and (len(unit) == 1 or unit[0].shares)
    assert any(len(unit) > 1 for unit in units)  # LK201/LK204 share their style scan, for one


_PARENT = os.getpid()


class DiesInAWorker(Rule):
    """## What it does\nDies when a worker process runs it (a worker killed for memory, say)."""

    code = "TS901"
    name = "dies-in-a-worker"
    summary = "test rule"
    severity = Severity.WARNING
    cost = 1000

    def in_worker(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def check_dataset(self, dataset, ctx):
        if os.getpid() != _PARENT:
            self.in_worker()
        time.sleep(0.3)  # long enough for the worker to start and take the other unit
        yield self.at(dataset.location, f"{self.code} ran")


class AlsoDiesInAWorker(DiesInAWorker):
    code, name = "TS902", "also-dies-in-a-worker"


class FailsInAWorker(DiesInAWorker):
    """## What it does\nMeets a user-facing problem (a missing model, say) in the worker only."""

    code, name = "TS903", "fails-in-a-worker"

    def in_worker(self) -> None:
        raise ConfigError("TS903: the model folder does not exist")


class AlsoFailsInAWorker(FailsInAWorker):
    code, name = "TS904", "also-fails-in-a-worker"


def lint_in_two_processes(tmp_path, *rules: type[Rule]):
    @hookimpl
    def register_rules(register):
        for rule in rules:
            register(rule)

    registry = registry_with(types.SimpleNamespace(register_rules=register_rules), names=["workers"])
    path = make_csv_dataset(tmp_path, [("a.png", "cybrpnk, rain")])
    return lora_core.lint(path, registry=registry, isolated=True, jobs=2, select=["TS9"])


def test_a_worker_that_dies_has_its_share_done_here(tmp_path):
    """Whichever unit the worker took when it was killed is run again in this process."""
    result = lint_in_two_processes(tmp_path, DiesInAWorker, AlsoDiesInAWorker)
    assert sorted(v.message for v in result) == ["TS901 ran", "TS902 ran"] and not result.crashes


def test_a_user_facing_error_in_a_worker_is_raised_here(tmp_path):
    """A LorakitError in the worker is the same one clean error as in this process."""
    with pytest.raises(ConfigError, match="TS903: the model folder does not exist"):
        lint_in_two_processes(tmp_path, FailsInAWorker, AlsoFailsInAWorker)


def test_default_jobs_only_for_big_datasets_without_threads():
    import os
    import sys
    import threading
    import types

    from lora_core.engine import PARALLEL_MIN_CAPTIONS, default_jobs

    small = types.SimpleNamespace(records=[None] * 10)
    big = types.SimpleNamespace(records=[None] * PARALLEL_MIN_CAPTIONS)
    assert default_jobs(small) == 1
    expected = 2 if sys.platform == "linux" and (os.cpu_count() or 1) >= 2 else 1
    assert default_jobs(big) == expected
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        assert default_jobs(big) == 1  # forking a multi-threaded process is unsafe
    finally:
        stop.set()
        worker.join()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers are a Linux feature")
def test_a_killed_lint_takes_its_worker_with_it(tmp_path):
    """kill -9 on the main process of a two-process lint: the worker must not live on holding
    stdout open (whatever reads the output would wait forever)."""
    import subprocess

    rows = [(f"{i}.png", f"cybrpnk, neon city {i}, rain, night, view {i % 40}") for i in range(30_000)]
    path = make_csv_dataset(tmp_path / "big", rows, images=False)
    command = [sys.executable, "-m", "lora_core.cli", "lint", str(path), "--isolated", "--jobs", "2", "--ignore", "LK6"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        children = children_of(process)
        if not children:
            process.kill()
            pytest.skip("the lint finished before its worker could be seen")
        kill_and_expect_no_survivor(process, children, "the worker")
