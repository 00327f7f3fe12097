"""``make bench``: run the benchmarks and write JSON reports to bench/results/.

    python -m bench.run [--only micro,setup,forwarding,memory,failover,cable,qos,dp_memory]
                        [--quick]

Each report carries the machine it ran on; figures meant to be compared (the DP worker
against kernel forwarding) are measured in the same run and reported as ratios. The macro
benchmarks need root (namespaces); the micro-benchmarks do not, nor do qos and dp_memory
(a worker driven in-process with a simulated clock; fresh interpreters measuring RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any

from bench.machine import describe

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
ALL = ("micro", "setup", "forwarding", "memory", "failover", "cable", "qos", "dp_memory")


def write(name: str, report: dict[str, Any]) -> pathlib.Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    report = {"machine": describe(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **report}
    path.write_text(json.dumps(report, indent=2))
    return path


def micro(quick: bool) -> pathlib.Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"micro-{stamp}.json"
    args = [
        sys.executable,
        "-m",
        "pytest",
        "bench",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={path}",
        "--benchmark-columns=min,median,mean,ops",
        "--benchmark-sort=name",
    ]
    if quick:
        args.append("--benchmark-min-rounds=3")
    subprocess.run(args, check=True)
    return path


def _fmt(d: dict[str, float]) -> str:
    if not d:
        return "-"
    return f"{d['min']:g}/{d['p50']:g}/{d['p99']:g}/{d['max']:g}"


def _print_qos(report: dict[str, Any]) -> None:
    """The QoS rows as a grid: error % per profile, one line per access, direction, frame."""
    rows = report["rows"]
    profiles = sorted({r["configured_mbps"] for r in rows})
    print(f"QoS error % (measured / configured - 1, {report['seconds']:g} s, x: outside ±5 %):")
    print(f"  {'':40s}" + "".join(f"{p:>8}M" for p in profiles))
    lines: dict[tuple[str, str, str], dict[int, str]] = {}
    for r in rows:
        mark = "" if r["within_5pct"] else "x"
        line = lines.setdefault((r["access"], r["direction"].split()[0], r["frame"]), {})
        line[r["configured_mbps"]] = f"{r['error_pct']:+.2f}{mark}"
    for (access, direction, frame), cells in lines.items():
        label = f"{access} {direction} {frame}"
        print(f"  {label:40s}" + "".join(f"{cells.get(p, '-'):>9}" for p in profiles))
    for b in report["burst"]:
        print(
            f"  burst {b['access']} {b['direction'].split()[0]} {b['configured_mbps']} Mbit/s "
            f"depth {b['bucket_depth_bytes']:,} B: first-interval overshoot "
            f"{b['overshoot_bytes']:,} B ({b['error_pct']:+.2f} %), then {b['after_mbps']} Mbit/s"
        )
    for c in report["runtime_change"]:
        print(
            f"  MODIFY {c['access']} {c['direction'].split()[0]} "
            f"{c['configured_before_mbps']} -> {c['configured_after_mbps']} Mbit/s: measured "
            f"{c['measured_before_mbps']} -> {c['measured_after_mbps']} Mbit/s "
            f"({c['error_before_pct']:+.2f} % / {c['error_after_pct']:+.2f} %)"
        )
    summary = report["summary"]
    print(
        f"  max |error| {summary['max_abs_error_pct']} % over {summary['rows']} rows; "
        f"misses {summary['misses']}; DP counters agree: {summary['dp_counters_agree']}"
    )
    for omitted in report["omitted"]:
        print(f"  omitted: {omitted}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated: {', '.join(ALL)}")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    unknown = set(wanted) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    needs_root = {"setup", "forwarding", "failover", "cable"} & set(wanted)
    if needs_root and os.geteuid() != 0:
        parser.error(f"{', '.join(sorted(needs_root))} need root (network namespaces)")
    written = []
    if "micro" in wanted:
        written.append(micro(args.quick))
    if "setup" in wanted:
        from bench import setup_rate

        report = setup_rate.run(
            subscribers=500 if args.quick else 2000, runs=1 if args.quick else 3
        )
        written.append(write("setup_rate", report))
        print(
            f"setup rate: {report['setup_rate_avg']} sessions/s "
            f"(min {report['setup_rate_min']} / max {report['setup_rate_max']} over runs)"
        )
    if "forwarding" in wanted:
        from bench import forwarding

        # Every backend in both placements of the DUT's receive work, next to the kernel
        # (its work all on one core), 1,000 and 64,000 sessions, QoS on; see bench/forwarding.py.
        report = forwarding.run(
            seconds=3.0 if args.quick else 5.0,
            repeat=1 if args.quick else 3,
            sessions=(1000, 64000),
        )
        written.append(write("forwarding", report))
        print("forwarding (pps, ratio to kernel IPv4 forwarding on one core):")
        print("\n".join(forwarding.table(report)))
    if "memory" in wanted:
        from bench import cp_memory

        report = cp_memory.run(sessions=20_000 if args.quick else 100_000)
        written.append(write("cp_memory", report))
        print(
            f"CP memory: {report['bytes_per_session']} bytes/session at {report['active']} sessions"
        )
    if "failover" in wanted:
        from bench import failover

        report = failover.run(subscribers=1000, rounds=2 if args.quick else 5, seconds=4.5)
        written.append(write("failover", report))
        print("failover (ms: min / p50 / p99 / max):")
        for case, row in report["cases"].items():
            print(
                f"  {case:14s} detection {_fmt(row['detection_ms'])}  takeover "
                f"{_fmt(row['takeover_ms'])}  gap max {_fmt(row['gap_max_ms'])}  "
                f"lost {row['lost']}/{row['sent']}  flapped {row['sessions_flapped']}"
            )
    if "cable" in wanted:
        from bench import cable

        report = cable.run(modems=2000 if args.quick else 10_000)
        written.append(write("cable", report))
        per = report["rss_bytes_per_modem"]
        print(
            f"cable: {report['modems_online_with_cpe']}/{report['modems']} modems online on one "
            f"DP in {report['registration_time_s']} s = {report['registration_rate_per_s']}/s; "
            f"RSS per modem CP {per['cp']} B, DP {per['dp']} B"
        )
    if "qos" in wanted:
        from bench import qos

        report = qos.run(quick=args.quick)
        written.append(write("qos", report))
        _print_qos(report)
    if "dp_memory" in wanted:
        from bench import dp_memory

        report = dp_memory.run(sessions=16_000 if args.quick else 64_000)
        written.append(write("dp_memory", report))
        print(f"DP memory at {report['sessions']:,} sessions (RSS delta / sessions):")
        for name, point in report["points"].items():
            print(
                f"  {name:26s} {point['bytes_per_session']:>7} B/session  "
                f"(arrays {point['arrays_touched_bytes_per_session']} B + Python objects "
                f"{point['python_objects_bytes_per_session']} B; {point['groups']} groups)"
            )
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
