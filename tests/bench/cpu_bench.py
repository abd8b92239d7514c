#!/usr/bin/env python3
"""CPU profiling overhead: kiln (libunwind and fp) and gperftools'
libprofiler at the same requested rates, in the same run, alternating.

For each configuration: median over ROUNDS runs of the profiled/unprofiled
ratio of CPU time (user+sys of the child) and of wall time, the delivered
sampling rate (samples per CPU-second of the program) and kiln's cost per
sample. The machine is shared and noisy: read the medians, not one run.
"""
import os, re, resource, statistics, subprocess, sys, tempfile, time

BUILD = os.environ.get("KILN_BUILD", "build")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
ARG = os.environ.get("BENCH_ROUNDS_ARG", "40")  # cpu_split rounds: ~1.3 s
LIBKILN = os.path.abspath(f"{BUILD}/libkiln.so")
PROFILER = "/usr/lib/x86_64-linux-gnu/libprofiler.so.0"


def run(argv, env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def kiln_samples(outdir):
    for name in os.listdir(outdir):
        if name.endswith(".meta.json"):
            text = open(os.path.join(outdir, name)).read()
            return int(re.search(r'"samples": (\d+)', text).group(1))
    return 0


def gperf_samples(binary, prof):
    # The legacy CPU profile: 64-bit words; header of 5 words, then records
    # (count, npcs, pcs...), ended by a record with count 0.
    import struct
    data = open(prof, "rb").read()
    words = struct.unpack(f"<{len(data) // 8}Q", data[: len(data) // 8 * 8])
    i, total = 5, 0
    while i + 2 <= len(words):
        count, n = words[i], words[i + 1]
        if count == 0:
            break
        total += count
        i += 2 + n
    return total


def main():
    bins = {"nofp": f"{BUILD}/examples/cpu_split", "fp": f"{BUILD}/examples/cpu_split.fp"}
    configs = []
    for hz in (99, 999, 4999):
        configs.append((f"kiln libunwind {hz} Hz", "nofp", "kiln", {"KILN_HZ": str(hz), "KILN_UNWIND": "libunwind"}))
        configs.append((f"kiln fp {hz} Hz (fp binary)", "fp", "kiln", {"KILN_HZ": str(hz), "KILN_UNWIND": "fp"}))
        if hz != 4999:  # gperftools is capped near 250 Hz here anyway
            configs.append((f"gperftools {hz} Hz", "nofp", "gperf", {"CPUPROFILE_FREQUENCY": str(hz)}))
    have_gperf = os.path.exists(PROFILER)
    results = {c[0]: {"cpu": [], "wall": [], "hz": [], "us": []} for c in configs}
    tmp = tempfile.mkdtemp(prefix="kiln-bench-")
    for r in range(ROUNDS):
        base = {k: run([b, ARG], {}) for k, b in bins.items()}
        for ci, (name, kind, tool, env) in enumerate(configs):
            if tool == "gperf" and not have_gperf:
                continue
            out = os.path.join(tmp, f"r{r}-c{ci}")
            os.makedirs(out, exist_ok=True)
            if tool == "kiln":
                env = dict(env, LD_PRELOAD=LIBKILN, KILN_OUT=out, KILN_QUIET="1")
            else:
                env = dict(env, LD_PRELOAD=PROFILER, CPUPROFILE=os.path.join(out, "prof"))
            cpu, wall = run([bins[kind], ARG], env)
            samples = kiln_samples(out) if tool == "kiln" else gperf_samples(bins[kind], os.path.join(out, "prof"))
            pcpu, pwall = base[kind]
            res = results[name]
            res["cpu"].append(cpu / pcpu)
            res["wall"].append(wall / pwall)
            res["hz"].append(samples / cpu if cpu > 0 else 0)
            res["us"].append((cpu - pcpu) / samples * 1e6 if samples else float("nan"))
    print(f"cpu_split {ARG} rounds, {ROUNDS} alternating runs; medians")
    print(f"{'configuration':32} {'CPU ratio':>10} {'wall ratio':>11} {'delivered Hz':>13} {'us/sample':>10}")
    for name, *_ in configs:
        res = results[name]
        if not res["cpu"]:
            print(f"{name:32} (not installed)")
            continue
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"{name:32} {med['cpu']:10.3f} {med['wall']:11.3f} {med['hz']:13.0f} {med['us']:10.2f}")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
