"""Run a command while N busy-looping processes keep the CPU cores busy.

    python tests/cpu_hog.py [N] -- CMD [ARG...]

N defaults to os.cpu_count(). The hogs start before CMD and are killed when it ends (or when
this script is interrupted); the exit code is CMD's (128 + signal number if a signal ended it).
Used by `make e2e-under-load` to reproduce a busy CI machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

HOG = "while True: pass"


def parse(argv: list[str]) -> tuple[int, list[str]]:
    if "--" not in argv:
        raise SystemExit(__doc__)
    split = argv.index("--")
    head, command = argv[:split], argv[split + 1:]
    if len(head) > 1 or not command:
        raise SystemExit(__doc__)
    count = int(head[0]) if head else (os.cpu_count() or 1)
    if count < 0:
        raise SystemExit("N must be 0 or more")
    return count, command


def main(argv: list[str]) -> int:
    count, command = parse(argv)
    # SIGTERM (e.g. from a CI timeout) must still take the hogs down: turn it into an exception.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    hogs: list[subprocess.Popen] = []
    started = time.monotonic()
    child = None
    try:
        for _ in range(count):
            hogs.append(subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.DEVNULL))
        print(f"cpu_hog: {count} busy process(es) {[h.pid for h in hogs]} while running: "
              f"{' '.join(command)}", file=sys.stderr, flush=True)
        child = subprocess.Popen(command)
        code = child.wait()
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()
    if code < 0:
        code = 128 - code
    print(f"cpu_hog: command exited with {code} after {time.monotonic() - started:.1f} s",
          file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
