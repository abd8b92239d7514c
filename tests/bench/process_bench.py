#!/usr/bin/env python3
"""Per-process cost of profiling process trees: kiln against the same
workload unprofiled, alternating runs, medians.

Workloads (examples/proc_storm.c and two real ones):
  fork storm       300 forked children that each work a few microseconds (cpu)
  failed execvp    1,000 execvp calls of a program that is not on PATH (cpu)
  fork+leak        500 forked children that each allocate and leak one block (alloc)
  make -j2         a small C project (12 files) built from clean (cpu)
  shell script     a bash script of 1,000 commands (cpu)

For each: median over ROUNDS (BENCH_ROUNDS, default 5) of the profiled /
unprofiled ratio of CPU time (user+sys of the whole tree) and of wall
time. The machine is shared and noisy: CPU-time ratios are the figure to
read. Goal: at most 2x (1.3x wanted).
"""
import os, resource, shutil, statistics, subprocess, sys, tempfile, time

BUILD = os.environ.get("KILN_BUILD", "build")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
LIBKILN = os.path.abspath(f"{BUILD}/libkiln.so")
STORM = os.path.abspath(f"{BUILD}/examples/proc_storm")


def run(argv, env_extra, cwd=None):
    env = dict(os.environ)
    env.update(env_extra)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def make_project(root):
    src = os.path.join(root, "proj")
    os.makedirs(src, exist_ok=True)
    for i in range(12):
        with open(os.path.join(src, f"m{i}.c"), "w") as f:
            f.write(f"#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n")
            f.write(f"int f{i}(int n) {{ int s = 0; for (int k = 0; k < n; k++) s += k * {i + 1} % 7; return s; }}\n")
            f.write(f"const char *name{i}(void) {{ static char b[32]; snprintf(b, sizeof b, \"m%d\", {i}); return b; }}\n")
    with open(os.path.join(src, "main.c"), "w") as f:
        f.write("#include <stdio.h>\n")
        for i in range(12):
            f.write(f"int f{i}(int);\n")
        f.write("int main(void) { int s = 0;\n")
        for i in range(12):
            f.write(f"  s += f{i}(100);\n")
        f.write('  printf("%d\\n", s); return 0; }\n')
    objs = " ".join([f"m{i}.o" for i in range(12)] + ["main.o"])
    with open(os.path.join(src, "Makefile"), "w") as f:
        f.write(f"prog: {objs}\n\t$(CC) -o $@ $^\n%.o: %.c\n\t$(CC) -O2 -c -o $@ $<\nclean:\n\trm -f *.o prog\n")
    return src


def shell_script(root):
    path = os.path.join(root, "cmds.sh")
    with open(path, "w") as f:
        f.write("#!/bin/bash\n")
        for i in range(1000):
            f.write("/bin/true\n" if i % 2 else f"echo {i} > /dev/null; /bin/echo x{i} > /dev/null\n")
    return path


def create_cost(d, n=300):
    """Seconds to create (and remove) one empty file in d: the floor of
    what writing a profile costs there."""
    os.makedirs(d, exist_ok=True)
    t0 = time.monotonic()
    for i in range(n):
        with open(os.path.join(d, f"f{i}"), "w"):
            pass
    t = (time.monotonic() - t0) / n
    for i in range(n):
        os.unlink(os.path.join(d, f"f{i}"))
    return t


def out_root():
    """Where the profiles go: BENCH_OUT, else tmpfs (/dev/shm) when there is
    one. A profiled child writes several files; on a file system that
    takes a millisecond per create (this machine's /tmp, after many test
    runs), that alone is more than such a child's whole run, and the figure
    would measure the disk, not kiln."""
    if os.environ.get("BENCH_OUT"):
        return os.environ["BENCH_OUT"]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return None


def main():
    if not os.path.exists(STORM):
        print(f"process_bench: {STORM} missing (make examples)")
        return 1
    tmp = tempfile.mkdtemp(prefix="kiln-pbench-")
    root = out_root()
    outbase = tempfile.mkdtemp(prefix="kiln-pbench-out-", dir=root) if root else tmp
    print(f"profiles written under {outbase}: {create_cost(os.path.join(outbase, 'probe')) * 1e3:.3f} ms a file create "
          f"({create_cost(os.path.join(tmp, 'probe')) * 1e3:.3f} ms under {tempfile.gettempdir()})")
    proj = make_project(tmp)
    script = shell_script(tmp)

    def make_clean():
        subprocess.run(["make", "-s", "clean"], cwd=proj, stdout=subprocess.DEVNULL, check=True)

    work = [
        ("fork storm (300 children, cpu)", [STORM, "fork", "300"], "cpu", None, None),
        ("failed execvp x1000 (cpu)", [STORM, "execfail", "1000"], "cpu", None, None),
        ("fork+leak (500 children, alloc)", [STORM, "forkleak", "500"], "alloc", None, None),
        ("make -j2, 13 C files (cpu)", ["make", "-s", "-j2"], "cpu", proj, make_clean),
        ("bash script, 1000 commands (cpu)", ["bash", script], "cpu", None, None),
    ]
    res = {w[0]: {"cpu": [], "wall": []} for w in work}
    for r in range(ROUNDS):
        for name, argv, mode, cwd, reset in work:
            out = os.path.join(outbase, "out")
            shutil.rmtree(out, ignore_errors=True)
            if reset:
                reset()
            pc, pw = run(argv, {}, cwd)
            if reset:
                reset()
            kc, kw = run(argv, {"LD_PRELOAD": LIBKILN, "KILN_OUT": out, "KILN_MODE": mode, "KILN_QUIET": "1"}, cwd)
            res[name]["cpu"].append(kc / pc if pc > 0 else float("nan"))
            res[name]["wall"].append(kw / pw if pw > 0 else float("nan"))
            res[name].setdefault("base", []).append(pc)
    print(f"process trees, {ROUNDS} alternating rounds, medians (kiln / unprofiled)")
    print(f"{'workload':40s} {'cpu ratio':>10s} {'wall ratio':>10s} {'base cpu s':>10s}")
    worst = 0.0
    for name, _, _, _, _ in work:
        c = statistics.median(res[name]["cpu"])
        w = statistics.median(res[name]["wall"])
        b = statistics.median(res[name]["base"])
        worst = max(worst, c)
        print(f"{name:40s} {c:9.2f}x {w:9.2f}x {b:10.3f}")
    print(f"worst CPU-time ratio {worst:.2f}x (goal <= 2x, 1.3x wanted)")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(outbase, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
