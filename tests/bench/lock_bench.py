#!/usr/bin/env python3
"""Cost of lock mode (KILN_MODE=lock) on the program's locks: kiln against
the same loop unprofiled, alternating runs, medians.

Workloads (examples/lock_contend.c):
  uncontended  one thread, 20M pthread_mutex_lock/unlock pairs: the try
               path (a trylock that succeeds), ns a pair of the loop's own
               thread CPU time (preemption by other processes left out)
  contended    4 threads, 500k locked sections each on one mutex (a little
               work inside): the waits among them are recorded (how many:
               printed; glibc's mutex lets a thread re-take it in bursts)

Configurations: unprofiled; kiln loaded with lock mode off (KILN_MODE=alloc
and no allocation in the loop: the wrappers only forward); lock mode.
For each: median over ROUNDS (BENCH_ROUNDS, default 9) runs, alternating,
of the loop's own time (uncontended: ns a pair, and the difference to the
unprofiled median: the few nanoseconds the issue asks for) and of the
process's CPU time ratio to unprofiled (contended). The machine is shared
and noisy: read the medians, and the CPU-time ratios.
"""
import glob, os, re, resource, shutil, statistics, subprocess, sys

BUILD = os.environ.get("KILN_BUILD", "build")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "9"))
LIBKILN = os.path.abspath(f"{BUILD}/libkiln.so")
PROG = os.path.abspath(f"{BUILD}/examples/lock_contend")
OUT = os.path.abspath(f"{BUILD}/bench-lock-out")

CONFIGS = [
    ("unprofiled", {}),
    ("kiln, lock mode off", {"LD_PRELOAD": LIBKILN, "KILN_MODE": "alloc", "KILN_LEAK_CHECK": "off"}),
    ("KILN_MODE=lock", {"LD_PRELOAD": LIBKILN, "KILN_MODE": "lock"}),
]


def run(argv, extra):
    shutil.rmtree(OUT, ignore_errors=True)
    env = dict(os.environ)
    env.update(extra)
    env["KILN_OUT"] = OUT
    env["KILN_QUIET"] = "1"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True,
                         text=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ns = float(re.search(r"([0-9.]+) ns", out).group(1))
    waits = 0
    for meta in glob.glob(f"{OUT}/*.meta.json"):
        m = re.search(r'"lock_waits": ([0-9]+)', open(meta).read())
        waits += int(m.group(1)) if m else 0
    return ns, cpu, waits


def bench(title, argv):
    ns = {c[0]: [] for c in CONFIGS}
    cpu = {c[0]: [] for c in CONFIGS}
    waits = []
    for _ in range(ROUNDS):
        for name, extra in CONFIGS:
            a, b, w = run(argv, extra)
            ns[name].append(a)
            cpu[name].append(b)
            if name == "KILN_MODE=lock":
                waits.append(w)
    base_ns = statistics.median(ns["unprofiled"])
    base_cpu = statistics.median(cpu["unprofiled"])
    print(f"{title}: {' '.join(argv[1:])}, {ROUNDS} alternating rounds, medians")
    for name, _ in CONFIGS:
        m_ns, m_cpu = statistics.median(ns[name]), statistics.median(cpu[name])
        print(f"  {name:22s} {m_ns:8.2f} ns  (+{m_ns - base_ns:5.2f} ns, x{m_ns / base_ns:.2f})"
              f"   cpu {m_cpu:6.3f} s  x{m_cpu / base_cpu:.2f}")
    print(f"  waits recorded by lock mode (median): {statistics.median(waits):.0f}")


def main():
    if not os.path.exists(PROG) or not os.path.exists(LIBKILN):
        print(f"lock_bench: build first ({PROG}, {LIBKILN})", file=sys.stderr)
        return 1
    os.makedirs(OUT, exist_ok=True)
    bench("uncontended (ns a lock/unlock pair)", [PROG, "bench", "20000000"])
    bench("contended (ns a locked section, 4 threads)", [PROG, "contend", "500000", "4"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
