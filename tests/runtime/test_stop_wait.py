"""A block told to stop while it waits stops at once (ADR 0059).

Each block's loop waits on its pipes with a timeout; Python resumes a ``select`` that a
signal interrupts (PEP 475), so without a wake-up it saw the stop only when the wait ran
out. Each case runs in its own interpreter: the stop handler is process-wide.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_CHILD = textwrap.dedent(
    """
    import os, signal, threading, time
    from kontur.runtime.spec import install_stop_handler, stop_requested, wait_or_stop

    install_stop_handler()
    r, w = os.pipe()
    signal.signal(signal.SIGUSR1, lambda *_: None)  # a signal that asks no stop
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    first = wait_or_stop([r], 1.5)  # (may end at the stray signal: the caller's loop goes on)
    t = time.monotonic()
    second = wait_or_stop([r], 1.0)
    after = time.monotonic() - t
    os.write(w, b"x")
    mine = wait_or_stop([r], 5.0)
    os.read(r, 1)
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    t = time.monotonic()
    stopped = wait_or_stop([r], 60.0)
    waited = time.monotonic() - t
    again = wait_or_stop([r], 60.0)  # a stop stays asked for: every later wait ends at once
    print(first, second, mine == [r], stopped, again, stop_requested(),
          round(after, 2), round(waited, 2))
    """
)


def test_a_stop_ends_the_wait_and_other_signals_do_not() -> None:
    r = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 0, r.stderr
    first, second, mine, stopped, again, asked, after, waited = r.stdout.split()
    assert (first, second, mine, stopped, again, asked) == ("[]", "[]", "True", "[]", "[]", "True")
    assert float(after) >= 0.9, "a stray signal's byte must be read away, or waits spin"
    assert float(waited) < 30.0, "a stop must end a 60 s wait, not its timeout"


def test_exit_now_keeps_what_was_written_and_its_code() -> None:
    """A block that ends with ``exit_now`` skips the interpreter's teardown, not its output:
    what it printed (buffered, no newline) and wrote to a pipe arrives, with its exit code."""
    child = textwrap.dedent(
        """
        import os, sys
        from kontur.runtime.spec import exit_now
        print("to stdout", end="")
        print("to stderr", end="", file=sys.stderr)
        os.write(int(sys.argv[1]), b"to a pipe")
        exit_now(3)
        """
    )
    # buffered streams: exit_now must not lean on the PYTHONUNBUFFERED the supervisor sets
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    r, w = os.pipe()
    try:
        done = subprocess.run(
            [sys.executable, "-c", child, str(w)], capture_output=True, text=True,
            timeout=120, check=False, pass_fds=(w,), env=env,
        )  # fmt: skip
        os.close(w)
        w = -1
        piped = os.read(r, 100)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert (done.returncode, done.stdout, done.stderr, piped) == (
        3,
        "to stdout",
        "to stderr",
        b"to a pipe",
    )
