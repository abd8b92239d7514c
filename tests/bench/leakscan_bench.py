#!/usr/bin/env python3
"""Leak-scan time at exit on a large live heap (examples/heap_graph.c: 1M
blocks of 48 bytes in a binary tree, half of it cut off), measured inside
the runtime (leak_scan_seconds in meta.json: pausing the threads, the
live-map snapshot, the sort, the scan from the roots, the cliques and the
per-stack counts). Prints the median and the range over the rounds, the
categories found, and the whole run's wall time against the unprofiled one.
"""
import json, os, statistics, subprocess, sys, tempfile, time

BUILD = os.environ.get("KILN_BUILD", "build")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
BLOCKS = os.environ.get("BENCH_BLOCKS", "1000000")
LIBKILN = os.path.abspath(f"{BUILD}/libkiln.so")
PROG = f"{BUILD}/examples/heap_graph"


def timed(argv, env):
    t0 = time.monotonic()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - t0


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-leakscan-bench-")
    scans, walls, plains, meta = [], [], [], None
    for r in range(ROUNDS):
        plains.append(timed([PROG, BLOCKS], dict(os.environ)))
        out = os.path.join(tmp, f"r{r}")
        env = dict(os.environ, LD_PRELOAD=LIBKILN, KILN_MODE="alloc", KILN_QUIET="1", KILN_OUT=out)
        walls.append(timed([PROG, BLOCKS], env))
        [name] = [f for f in os.listdir(out) if f.endswith(".meta.json")]
        with open(os.path.join(out, name)) as f:
            meta = json.load(f)
        scans.append(meta["leak_scan_seconds"])
        subprocess.run(["rm", "-rf", out])
    os.rmdir(tmp)
    blocks = meta["leak_scan_blocks"]
    print(f"leak scan: {blocks} live blocks at exit, {ROUNDS} runs")
    print(f"  leak_scan_seconds  median {statistics.median(scans):.3f} s "
          f"(min {min(scans):.3f}, max {max(scans):.3f}); {statistics.median(scans) / blocks * 1e9:.0f} ns a block")
    cats = ", ".join(f"{k} {meta[k + '_count']}" for k in ("definite", "indirect", "possible", "reachable"))
    print(f"  categories         {cats}")
    print(f"  whole run          {statistics.median(walls):.2f} s under kiln (exact), "
          f"{statistics.median(plains):.2f} s unprofiled")
    if statistics.median(scans) >= 1.0:
        print("leakscan_bench: the scan took a second or more", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
