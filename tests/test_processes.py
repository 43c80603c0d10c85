"""tests/processes.py: `stop_process` ends and reaps a child however it behaves, and the conftest's net reaps what
a test forgot (a child killed but never waited for failed a whole run: Popen.__del__'s "subprocess N is still
running" ResourceWarning is an error here, raised in whichever test the garbage collection happened to hit)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.processes import alive, stop_process

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)"]
_left: dict[str, int] = {}


def test_stop_process_kills_a_child_that_ignores_sigterm_and_reaps_it() -> None:
    process = subprocess.Popen(STUBBORN, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"
    started = time.monotonic()
    assert stop_process(process, grace=0.3) == -9
    assert time.monotonic() - started < 10 and process.returncode == -9 and process.stdout.closed
    assert not alive(process.pid)


def test_stop_process_on_an_exited_child_only_reaps_it() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    time.sleep(0.2)
    assert stop_process(process) == 3


def test_a_child_killed_and_never_waited_for_does_not_fail_the_run() -> None:
    subprocess.Popen(SLEEPER).kill()  # collected at once, unreaped: the net holds it until it reaped it


def test_a_child_the_test_left_running_is_stopped_after_it() -> None:
    _left["pid"] = subprocess.Popen(SLEEPER).pid


def test_the_child_left_running_by_the_previous_test_is_gone() -> None:
    if "pid" not in _left:
        pytest.skip("runs after test_a_child_the_test_left_running_is_stopped_after_it")
    assert not alive(_left["pid"])


@pytest.fixture(scope="module")
def module_child():  # noqa: ANN201
    process = subprocess.Popen(SLEEPER)
    yield process
    stop_process(process)


def test_a_longer_lived_fixture_s_child_is_left_alone(module_child) -> None:  # noqa: ANN001
    assert module_child.poll() is None


def test_and_still_runs_in_the_next_test(module_child) -> None:  # noqa: ANN001
    assert module_child.poll() is None
