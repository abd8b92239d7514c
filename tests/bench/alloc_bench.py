#!/usr/bin/env python3
"""Allocation profiling overhead on a malloc-heavy churn (examples/churn.c:
malloc/free pairs of 16 B - 4 KiB from call sites 8-12 frames deep, a live
set of 10,000 blocks per thread), 1 and 2 threads: unprofiled, kiln exact
(libunwind; fp on the frame-pointer build), kiln sampled (512 KiB),
heaptrack and gperftools' heap profiler (which also swaps in tcmalloc, so
tcmalloc alone is measured too), alternating, in the same run.

The churn's call chains are kept out of tail position, so its stacks really
are 8-12 frames deep (plus the thread's own). The machine may be shared:
CPU-time ratios are the figure to read, wall ratios are noisier.

BENCH_PAIRS, BENCH_ROUNDS, BENCH_REDIS_REQUESTS and BENCH_NO_GPERFTOOLS=1
(its heap profiler is ~100x) shorten a run.

Prints medians of the wall and CPU ratios against the unprofiled run of the
same binary, peak RSS (the largest process of the run: heaptrack's
interpreter included), and kiln's live-map bytes per live block.
"""
import os, re, statistics, subprocess, sys, tempfile, time

BUILD = os.environ.get("KILN_BUILD", "build")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PAIRS = os.environ.get("BENCH_PAIRS", "10000000")
LIB = "/usr/lib/x86_64-linux-gnu"
LIBKILN = os.path.abspath(f"{BUILD}/libkiln.so")


def run(argv, env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    if status != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({status})")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def main():
    churn, churn_fp = f"{BUILD}/examples/churn", f"{BUILD}/examples/churn.fp"
    tmp = tempfile.mkdtemp(prefix="kiln-alloc-bench-")
    kiln = lambda extra: dict(extra, LD_PRELOAD=LIBKILN, KILN_MODE="alloc", KILN_QUIET="1")
    configs = [
        ("kiln exact, libunwind", churn, "plain", kiln({}), []),
        ("kiln exact, fp (fp build)", churn_fp, "plain.fp", kiln({"KILN_UNWIND": "fp"}), []),
        ("kiln sampled 512 KiB", churn, "plain", kiln({"KILN_ALLOC_SAMPLE": "524288"}), []),
    ]
    if os.path.exists("/usr/bin/heaptrack"):
        configs.append(("heaptrack", churn, "plain", {}, ["heaptrack", "-o", "@OUT@/ht"]))
    if os.path.exists(f"{LIB}/libtcmalloc.so.4") and not os.environ.get("BENCH_NO_GPERFTOOLS"):
        configs.append(("tcmalloc alone (no profiling)", churn, "plain", {"LD_PRELOAD": f"{LIB}/libtcmalloc.so.4"}, []))
        configs.append(("gperftools heap profiler", churn, "plain",
                        {"LD_PRELOAD": f"{LIB}/libtcmalloc.so.4", "HEAPPROFILE": "@OUT@/hp"}, []))
    for threads in ("1", "2", "2 cross"):
        res = {name: {"wall": [], "cpu": [], "rss": [], "bpb": []} for name, *_ in configs}
        base_rss = {}
        for r in range(ROUNDS):
            targs = threads.split()
            base = {"plain": run([churn, PAIRS, *targs], {}), "plain.fp": run([churn_fp, PAIRS, *targs], {})}
            for k, v in base.items():
                base_rss.setdefault(k, []).append(v[2])
            for i, (name, binary, bkey, env, prefix) in enumerate(configs):
                out = os.path.join(tmp, f"t{threads}-r{r}-c{i}")
                os.makedirs(out)
                env = {k: v.replace("@OUT@", out) for k, v in env.items()}
                if "KILN_MODE" in env:
                    env["KILN_OUT"] = out
                argv = [a.replace("@OUT@", out) for a in prefix] + [binary, PAIRS, *targs]
                wall, cpu, rss = run(argv, env)
                bwall, bcpu, _ = base[bkey]
                res[name]["wall"].append(wall / bwall)
                res[name]["cpu"].append(cpu / bcpu)
                res[name]["rss"].append(rss)
                for f in os.listdir(out):
                    if f.endswith(".meta.json"):
                        m = re.search(r'"live_map_peak_bytes": (\d+)', open(os.path.join(out, f)).read())
                        if m:
                            res[name]["bpb"].append(int(m.group(1)) / (10000 * int(targs[0])))
                subprocess.run(["rm", "-rf", out])
        what = f"{targs[0]} thread(s)" + (", cross-thread frees" if len(targs) > 1 else "")
        print(f"\nchurn: {PAIRS} malloc/free pairs, {what}, {ROUNDS} alternating runs; medians")
        print(f"  unprofiled peak RSS: {statistics.median(base_rss['plain']) / 1024:.0f} MiB")
        print(f"  {'configuration':32} {'wall ratio':>10} {'CPU ratio':>10} {'peak RSS MiB':>13} {'map B/live block':>17}")
        for name, *_ in configs:
            v = res[name]
            bpb = f"{statistics.median(v['bpb']):.1f}" if v["bpb"] else "-"
            print(f"  {name:32} {statistics.median(v['wall']):10.2f} {statistics.median(v['cpu']):10.2f} "
                  f"{statistics.median(v['rss']) / 1024:13.0f} {bpb:>17}")
        if "heaptrack" in res and res["heaptrack"]["cpu"]:
            for name in ("kiln exact, libunwind", "kiln exact, fp (fp build)"):
                k = statistics.median(res[name]["cpu"])
                h = statistics.median(res["heaptrack"]["cpu"])
                print(f"  heaptrack / {name}: {h / k:.2f}x the CPU time")
    subprocess.run(["rm", "-rf", tmp])
    redis_bench()


def redis_bench():
    """redis-server (Debian's, on jemalloc) under redis-benchmark on
    loopback: requests per second, unprofiled, kiln exact and heaptrack,
    alternating; the ratio is throughput against the unprofiled server."""
    if not (os.path.exists("/usr/bin/redis-server") and os.path.exists("/usr/bin/redis-benchmark")):
        print("\nredis: redis-server / redis-benchmark not installed (make deps-test)")
        return
    n = os.environ.get("BENCH_REDIS_REQUESTS", "200000")
    tmp = tempfile.mkdtemp(prefix="kiln-redis-bench-")
    configs = [("unprofiled", {}, []),
               ("kiln exact, libunwind", {"LD_PRELOAD": LIBKILN, "KILN_MODE": "alloc", "KILN_QUIET": "1",
                                          "KILN_LEAK_CHECK": "off", "KILN_OUT": tmp}, [])]
    if os.path.exists("/usr/bin/heaptrack"):
        configs.append(("heaptrack", {}, ["heaptrack", "-o", f"{tmp}/ht"]))
    res = {name: [] for name, *_ in configs}
    cpu = {name: [] for name, *_ in configs}  # the server's CPU time (heaptrack: its whole process tree)
    port = 20000 + os.getpid() % 20000
    for r in range(ROUNDS):
        for name, env_extra, prefix in configs:
            env = dict(os.environ)
            env.update(env_extra)
            server = subprocess.Popen(prefix + ["/usr/bin/redis-server", "--port", str(port), "--save", "",
                                                "--appendonly", "no", "--dir", tmp],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(200):
                if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                    break
                time.sleep(0.05)
            out = subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", n, "-c", "20",
                                  "-t", "set,get,lpush,lpop,sadd", "--csv"], capture_output=True, text=True).stdout
            rps = [float(line.split(",")[1].strip('"')) for line in out.splitlines()[1:] if line.count(",") >= 1]
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True)
            _, _, ru = os.wait4(server.pid, 0)
            res[name].append(sum(rps) / len(rps) if rps else 0)
            cpu[name].append(ru.ru_utime + ru.ru_stime)
    base = statistics.median(res["unprofiled"])
    base_cpu = statistics.median(cpu["unprofiled"])
    print(f"\nredis-server under redis-benchmark ({n} requests x set,get,lpush,lpop,sadd, 20 clients, "
          f"loopback), {ROUNDS} alternating runs; medians")
    for name, *_ in configs:
        v = statistics.median(res[name])
        c = statistics.median(cpu[name])
        print(f"  {name:32} {v:12.0f} req/s {v / base:8.2f}x unprofiled throughput, "
              f"server CPU {c / base_cpu:5.2f}x")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
