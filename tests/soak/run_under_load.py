"""`journey run` (what `make run` runs) K times in a row while CPU-burning processes keep the machine busy.

Each run starts in a fresh temporary directory with no ``JOURNEY_*`` variable set, exactly as
a new user's `make run`; meanwhile ``--load`` processes spin on the CPU (a load average well
above the core count on a small machine). Every run must exit 0: a run that fails only
because the machine is slow is a defect (waits must follow progress, not a clock).

    python -m tests.soak.run_under_load --runs 20 --load 4      (make soak SOAK_RUNS=20 SOAK_LOAD=4)

Prints one line per run (exit code, seconds, load average) and a summary; writes the results
as JSON (``--json``); exits 1 when any run did not exit 0. ``--timeout`` only bounds a hung
run so the soak ends (a run past it counts as failed, with its last output).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

BURN = "while True:\n    pass\n"


@dataclass
class RunResult:
    run: int
    code: int | None  # None: past --timeout, killed
    seconds: float
    max_load: float
    tail: str


def burners(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes that each keep one CPU busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True) for _ in range(count)]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def journey_run(index: int, args: list[str], timeout: float, keep: bool) -> RunResult:
    """One `journey run` in a fresh directory; its exit code, duration and the highest 1-minute load seen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")}
    workdir = Path(tempfile.mkdtemp(prefix=f"journey-soak-{index}-"))
    peak = [os.getloadavg()[0]]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(2.0):
            peak[0] = max(peak[0], os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    with (workdir / "run.log").open("w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "streams.cli", "run", *args], cwd=workdir, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            code = None
        seconds = time.monotonic() - started
        done.set()
        log.seek(0)
        tail = "" if code == 0 else "\n".join(log.read().splitlines()[-30:])
    if not keep and code == 0:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    elif code != 0:
        tail += f"\n(data and logs kept in {workdir})"
    return RunResult(index, code, round(seconds, 1), round(peak[0], 1), tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="how many runs in a row (default 20)")
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2,
                        help="CPU-burning processes kept running meanwhile (default: one per core)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="bound on one run, so a hung run ends the "
                        "soak (default 3600 s)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep every run's directory (failed ones are kept)")
    parser.add_argument("journey_args", nargs=argparse.REMAINDER,
                        help="after --: arguments for `journey run` (default: none, as `make run`)")
    options = parser.parse_args(argv)
    args = [a for a in options.journey_args if a != "--"]
    print(f"soak: {options.runs} x `journey run {' '.join(args)}` with {options.load} CPU burners on "
          f"{os.cpu_count()} cores", flush=True)
    load = burners(options.load)
    results: list[RunResult] = []
    try:
        for index in range(1, options.runs + 1):
            result = journey_run(index, args, options.timeout, options.keep)
            results.append(result)
            status = "ok" if result.code == 0 else ("TIMEOUT" if result.code is None else f"FAILED ({result.code})")
            print(f"run {index:>3}: {status:<12} {result.seconds:>7.1f}s  peak load {result.max_load:.1f}", flush=True)
            if result.code != 0:
                print(result.tail, flush=True)
    finally:
        stop(load)
    failed = [r for r in results if r.code != 0]
    durations = sorted(r.seconds for r in results)
    print(f"soak: {len(results) - len(failed)}/{len(results)} runs exited 0; seconds min {durations[0]:.1f} "
          f"median {durations[len(durations) // 2]:.1f} max {durations[-1]:.1f}", flush=True)
    if options.json is not None:
        options.json.write_bytes(orjson.dumps({"load": options.load, "args": args,
                                               "results": [asdict(r) for r in results]}, option=orjson.OPT_INDENT_2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
