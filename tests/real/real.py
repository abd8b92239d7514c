#!/usr/bin/env python3
"""Real programs under kiln, checked against perf on the same run.

For each program of programs.py: one unprofiled run, then, per kiln mode
(cpu, cpu,alloc), one run of
    perf record -F 999 -g -e cpu-clock -o X -- env LD_PRELOAD=libkiln.so KILN_OUT=... prog
so that perf and kiln see the very same processes. Checks, one line each
("PASS name" / "FAIL name: why" / "SKIP name: why", SKIP counts as neither):
  finished, exit status, stdout, files: as the unprofiled run; every run
      is bounded, one that does not end is killed and fails
  stderr: as the unprofiled run but kiln's summary lines, from one process
  samples: kiln took >= 80% as many samples of the program as perf
  top function: perf's top unit, perf's top named function, kiln's top
      unit: kiln's share within 5 points of perf's share of the same unit
  kernel share, kiln's own cost: within 5 points of perf's
  no kiln internals: no frame of kiln's or libunwind's code in the profile
  processes / threads: every process and thread perf saw with >= 20
      samples has a kiln profile / is in kiln's meta.json threads_list
README.md beside this file explains the name matching and the noise bound.

Usage: real.py [--set ci|all] [--table] [--only NAME,...] [--keep DIR] [--selfcheck]
Environment: KILN_BUILD (build directory, default build).
"""
import argparse
import collections
import glob
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import programs  # noqa: E402

MODES = ("cpu", "cpu,alloc")
HZ = 999
TOL = 5.0            # points of share
MIN_THREAD = 20      # perf samples that make a thread or process "seen"
MIN_SAMPLE_RATIO = 0.80
SLOWDOWN_LIMIT = 40  # a profiled run this many times slower than unprofiled is a hang
MIN_PERF = 2000      # perf samples below which an entry is too short to judge
COLLECTOR = "kiln-collector"
KILN_MODULE = "[kiln]"
KERNEL = "[kernel]"
UNMATCHED = "(a name perf never gave)"
PERF_MAP_RE = re.compile(r"^(/tmp/)?perf-\d+\.map$")
# kiln's summary lines: "kiln: prog[pid]: ..."
SUMMARY_RE = re.compile(rb"^kiln: [^\s\[]+\[(\d+)\]: ")
MODFRAME_RE = re.compile(r"^(.+)\+0x[0-9a-fA-F]+$")
KILN_INTERNAL_RE = re.compile(r"^(kiln_|_ULx86_64_|_Ux86_64_|unw_|_U_dyn_|libkiln\.so\+|libunwind[^+]*\+)")
SOVERSION_RE = re.compile(r"\.so(\.[0-9]+)*$")
# kiln's marker frames that stand for the program's own samples; any other
# "[kiln: ...]" frame (e.g. "[kiln: allocation tracking]") is kiln's cost.
PROGRAM_MARKERS = ("[kiln: unwind skipped]", "[kiln: truncated]", "[kiln: table full]")
KILN_DSOS = ("libkiln.so",)
UNWIND_DSOS = ("libunwind.so", "libunwind-x86_64.so")
# kiln's own start and exit on a program's thread (its constructor, a fork
# child's set-up, the final dumps): perf sees them, no kiln sample can. A
# thread or process is "seen" by its other samples: a bash fork child whose
# 20 samples were all its exit dump (leak scan and names of the heap it
# inherited) used no CPU of the program's.
KILN_OWN_FUNCS = ("kiln_preload_init", "kiln_profiler_start_env", "kiln_profiler_fork_child",
                  "kiln_profiler_final_sets", "kiln_profiler_at_exit")


COUNTS = collections.Counter()


def out(line):
    COUNTS[line.split(" ", 1)[0]] += 1
    print(line, flush=True)


def norm_name(s):
    """Function names as both profilers spell them: no @VERSION / @plt,
    no C++ parameter list."""
    s = s.split("@", 1)[0]
    if "(" in s and not s.startswith("("):
        s = s.split("(", 1)[0]
    return s


# ---------------------------------------------------------------- running
class Run:
    """What one run did, as the user and its parent see it."""

    def __init__(self):
        self.rc = None
        self.stdout = b""
        self.stderr = b""
        self.client = b""
        self.files = {}
        self.wall = 0.0
        self.hung = ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline, proc):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def kill_tree(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def fill(s, ctx):
    return s.format(**ctx)


def run_program(prog, ctx, prefix, env, limit):
    """Runs prog once (prefix: perf + env for a profiled run). The run's
    directory {work} is made empty first, so every run sees the same."""
    work = ctx["work"]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.chmod(work, 0o755)
    if prog.prepare:
        prog.prepare(work, ctx["port"], ctx["data"])
    argv = prefix + [fill(a, ctx) for a in prog.argv] + (prog.more_args(ctx) if prog.more_args else [])
    r = Run()
    so = open(os.path.join(ctx["tmp"], "stdout"), "w+b")
    se = open(os.path.join(ctx["tmp"], "stderr"), "w+b")
    si = open(fill(prog.stdin, ctx), "rb") if prog.stdin else subprocess.DEVNULL
    start = time.monotonic()
    deadline = start + limit
    proc = subprocess.Popen(argv, cwd=work, stdin=si, stdout=so, stderr=se, env=env, start_new_session=True)
    try:
        if prog.daemon:
            d = prog.daemon
            if not wait_port(ctx["port"], deadline, proc):
                r.hung = "did not listen on port %d" % ctx["port"] if proc.poll() is None else ""
            else:
                keep = re.compile(d.client_keep) if d.client_keep else None
                for c in d.clients:
                    left = max(1.0, deadline - time.monotonic())
                    try:
                        cp = subprocess.run([fill(a, ctx) for a in c], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=left)
                    except subprocess.TimeoutExpired:
                        r.hung = "client %s did not finish" % c[0]
                        break
                    lines = cp.stdout.replace(b"\r", b"\n").split(b"\n")
                    kept = [ln for ln in lines if keep is None or keep.search(ln.decode("latin-1"))]
                    r.client += b"$ %s (status %d)\n" % (c[0].encode(), cp.returncode) + b"\n".join(kept) + b"\n"
                if d.stop and not r.hung:
                    try:
                        d.stop(work, ctx["port"])
                    except (OSError, ValueError, subprocess.SubprocessError) as e:
                        r.hung = "could not be stopped (%s)" % e
        left = max(1.0, deadline - time.monotonic())
        try:
            r.rc = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            r.hung = r.hung or "still running after %.0f s" % limit
        if r.hung:
            kill_tree(proc)
            r.rc = proc.returncode
    finally:
        if proc.poll() is None:
            kill_tree(proc)
        if si is not subprocess.DEVNULL:
            si.close()
    r.wall = time.monotonic() - start
    if r.rc is not None and r.rc < 0:
        r.rc = 128 - r.rc  # as a shell (and perf) reports a signal
    so.seek(0)
    se.seek(0)
    r.stdout, r.stderr = so.read(), se.read()
    so.close()
    se.close()
    for pattern in prog.files:
        paths = sorted(glob.glob(os.path.join(work, pattern)))
        blob = b""
        for path in paths:
            with open(path, "rb") as fh:
                blob += os.path.relpath(path, work).encode() + b"\0" + fh.read()
        r.files[pattern] = blob if paths else b"(no such file)"
    return r


# ---------------------------------------------------------------- perf's picture
class Picture:
    """One profiler's view of a run: CPU samples by unit (module, function),
    kernel samples, and per process / thread counts. Samples in kiln's own
    code ("own", the unit [kiln]) are kept apart: the program's picture
    (shares of functions, of the kernel) is over the other samples, as kiln
    cannot sample its own signal handler or its exit-time work while perf
    can; kiln's own cost is compared on its own."""

    def __init__(self):
        self.total = 0
        self.own = 0
        self.kernel = 0
        self.units = collections.Counter()   # (module, fn or None) -> samples
        self.names = set()                   # every function name seen in any frame
        self.pids = collections.Counter()
        self.tids = collections.Counter()
        self.tid_comm = {}
        self.internals = collections.Counter()

    @property
    def prog(self):
        return self.total - self.own

    def share(self, n):
        """Percent of the program's samples."""
        return 100.0 * n / self.prog if self.prog else float("nan")

    def own_share(self):
        return 100.0 * self.own / self.total if self.total else float("nan")

    def add(self, unit, n, kernel):
        self.units[unit] += n
        if unit[0] == KILN_MODULE:
            self.own += n
        elif kernel:
            self.kernel += n

    def module_samples(self, module):
        return sum(n for (m, _), n in self.units.items() if m == module)

    def function_samples(self, fn):
        return sum(n for (_, f), n in self.units.items() if f == fn)


def canon_module(name):
    """One spelling per module: perf names the file mapped
    (libsqlite3.so.0.8.6), kiln the name it was loaded by (libsqlite3.so.0)."""
    return SOVERSION_RE.sub(".so", os.path.basename(name))


def perf_module(dso):
    if dso.startswith("[kernel") or dso.startswith("[vdso"):
        return dso
    # A JIT's code (anonymous executable memory): perf names it after the
    # perf map it would read (/tmp/perf-PID.map), kiln "[unknown]".
    if PERF_MAP_RE.match(dso):
        return "?"
    return canon_module(dso) if dso not in ("[unknown]", "") else "?"


def read_perf(data, perf_picture_log):
    """perf script of a recording -> Picture, and the name -> module map of
    every symbol perf saw (to place kiln's named frames in a module)."""
    cp = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,period,ip,sym,dso"],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300)
    with open(perf_picture_log, "wb") as f:
        f.write(cp.stdout)
    p, names = parse_perf(cp.stdout.decode("utf-8", "replace"))
    return p, names, cp.returncode


def parse_perf(text, event=None, synth=None):
    """perf script text (-F [event,]comm,pid,tid,period,ip,sym,dso) ->
    Picture of the samples of one event (all when event is None). synth:
    a dict that receives, per pid, the samples as kiln would fold them
    (for --selfcheck)."""
    p = Picture()
    modmap = collections.defaultdict(collections.Counter)
    head_re = re.compile(r"^(.*?)\s+(\d+)/(\d+)\s+(\d+)(?:\s+([\w:-]+):)?\s*$")
    frame_re = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)$")

    def flush(head, frames):
        if head is None:
            return
        comm, pid, tid, ev = head
        if comm == COLLECTOR or (event is not None and ev != event):
            return
        if synth is not None:
            fold_like_kiln(synth, comm, pid, tid, frames)
        p.total += 1
        if not any(s in KILN_OWN_FUNCS for _, s, _ in frames):
            p.pids[pid] += 1
            p.tids[tid] += 1
        p.tid_comm[tid] = comm
        if not frames:
            p.add(("?", None), 1, False)
            return
        ip, sym, dso = frames[0]
        kernel_leaf = ip >= 0xffff800000000000 or dso.startswith("[kernel")
        mods = [perf_module(d) for _, _, d in frames]
        for _, s, d in frames:
            if s != "[unknown]":
                fn = norm_name(s)
                p.names.add(fn)
                modmap[fn][KERNEL if d.startswith("[kernel") else perf_module(d)] += 1
        leaf_mod = mods[0]
        if leaf_mod in KILN_DSOS or leaf_mod in UNWIND_DSOS or any(m in KILN_DSOS for m in mods):
            p.add((KILN_MODULE, None), 1, kernel_leaf)
            return
        if kernel_leaf:
            leaf_mod = KERNEL
        fn = None if sym == "[unknown]" else norm_name(sym)
        p.add((leaf_mod, fn), 1, kernel_leaf)

    head, frames = None, []
    for raw in text.split("\n"):
        if not raw.strip():
            flush(head, frames)
            head, frames = None, []
            continue
        if raw[0] not in " \t":
            flush(head, frames)
            m = head_re.match(raw)
            head = (m.group(1).strip(), int(m.group(2)), int(m.group(3)), m.group(5)) if m else None
            frames = []
            continue
        m = frame_re.match(raw)
        if m:
            frames.append((int(m.group(1), 16), m.group(2), m.group(3)))
    flush(head, frames)
    return p, {fn: c.most_common(1)[0][0] for fn, c in modmap.items()}


def fold_like_kiln(synth, comm, pid, tid, frames):
    """One perf sample as kiln writes it (shared_decisions.md): root first,
    unnamed code as module+0xADDR, kernel frames after "[kernel]" with the
    _[k] suffix."""
    user = [f for f in frames if not (f[0] >= 0xffff800000000000 or f[2].startswith("[kernel"))]
    kern = [f for f in frames if f not in user]
    names = []
    for ip, sym, dso in reversed(user):
        if ip == 0:
            continue
        names.append(norm_name(sym) if sym != "[unknown]" else
                     "%s+0x%x" % (os.path.basename(dso), ip) if dso != "[unknown]" else "[unknown]")
    if kern:
        names.append(KERNEL)
        names += [norm_name(sym) + "_[k]" for _, sym, _ in reversed(kern) if sym != "[unknown]"]
    rec = synth.setdefault(pid, {"prog": comm, "stacks": collections.Counter(), "tids": collections.Counter()})
    rec["stacks"][";".join(names or ["[unknown]"])] += 1
    rec["tids"][(tid, comm)] += 1


def write_synth(synth, outdir):
    """Writes perf's samples as kiln's per-process files."""
    os.makedirs(outdir, exist_ok=True)
    for pid, rec in synth.items():
        stem = os.path.join(outdir, "%s.%d" % (rec["prog"], pid))
        with open(stem + ".cpu.folded", "w") as f:
            for stack, n in sorted(rec["stacks"].items()):
                f.write("%s %d\n" % (stack, n))
        meta = {"prog": rec["prog"], "pid": pid, "samples": sum(rec["stacks"].values()),
                "threads_list": [{"tid": t, "name": c, "samples": n} for (t, c), n in sorted(rec["tids"].items())]}
        with open(stem + ".meta.json", "w") as f:
            json.dump(meta, f)


# ---------------------------------------------------------------- kiln's picture
def read_kiln(outdir, modmap):
    p = Picture()
    metas = []
    # A process that gave up root for another user (nginx workers, nobody)
    # writes in the uid-N directory kiln made for that user.
    names = sorted(os.listdir(outdir)) if os.path.isdir(outdir) else []
    files = []
    for f in names:
        sub = os.path.join(outdir, f)
        if re.fullmatch(r"uid-[0-9]+", f) and os.path.isdir(sub):
            files += [os.path.join(f, g) for g in sorted(os.listdir(sub))]
        else:
            files.append(f)
    for f in files:
        path = os.path.join(outdir, f)
        if f.endswith(".meta.json"):
            try:
                with open(path) as fh:
                    metas.append(json.load(fh))
            except (OSError, ValueError) as e:
                metas.append({"_error": "%s: %s" % (f, e)})
            continue
        if not f.endswith(".cpu.folded"):
            continue
        with open(path, errors="replace") as fh:
            for line in fh:
                line = line.rstrip("\n")
                stack, _, count = line.rpartition(" ")
                if not stack or not count.isdigit():
                    continue
                n = int(count)
                frames = stack.split(";")
                p.total += n
                for fr in frames:
                    if KILN_INTERNAL_RE.match(fr):
                        p.internals[fr] += n
                    if not fr.startswith("["):
                        p.names.add(norm_name(fr[:-4] if fr.endswith("_[k]") else fr))
                p.add(kiln_unit(frames, modmap), n, KERNEL in frames)
    for m in metas:
        if "pid" in m:
            p.pids[m["pid"]] += m.get("samples", 0)
    return p, metas


def kiln_unit(frames, modmap):
    leaf = frames[-1]
    if any((f.startswith("[kiln:") and f not in PROGRAM_MARKERS) or KILN_INTERNAL_RE.match(f) for f in frames):
        return (KILN_MODULE, None)
    if leaf == KERNEL:
        return (KERNEL, None)
    if leaf.endswith("_[k]"):
        return (KERNEL, norm_name(leaf[:-4]))
    if leaf == "[unknown]":
        return ("?", None)
    m = MODFRAME_RE.match(leaf)
    if m:
        return (canon_module(m.group(1)), None)
    fn = norm_name(leaf)
    # A name perf never gave (spelt otherwise): its own unit, not the
    # unnamed code's ("?"), which is compared with perf's unnamed code.
    return (modmap.get(fn, UNMATCHED), fn)


# ---------------------------------------------------------------- comparing
def compare_unit(unit, kp, pp):
    """Share of a unit in kiln and perf. By function when both profilers
    name it (in any frame of any sample: each resolved that symbol);
    otherwise by module: the samples whose leaf lies in that module, named
    or not (perf and kiln name stripped code differently: perf by address,
    kiln by the start of the function its unwind tables give).
    Returns (key, label, note, kiln share, perf share)."""
    mod, fn = unit
    # Kernel functions: kiln names them only where the process may read
    # kernel addresses (not an nginx worker after it became nobody), so
    # by function only when kiln named most of its kernel leaves.
    kernel_named = sum(n for (m, f), n in kp.units.items() if m == KERNEL and f is not None)
    few = mod == KERNEL and 2 * kernel_named < kp.module_samples(KERNEL)
    if fn is not None and fn in kp.names and fn in pp.names and not few:
        return ("fn", fn), fn, "", kp.share(kp.function_samples(fn)), pp.share(pp.function_samples(fn))
    note = ""
    if few and fn is not None:
        note = " (kiln names %d of its %d kernel leaves)" % (kernel_named, kp.module_samples(KERNEL))
    elif fn is not None:
        note = " (%s never names %s)" % ("kiln" if fn not in kp.names else "perf", fn)
    return (("mod", mod), "module " + mod, note, kp.share(kp.module_samples(mod)),
            pp.share(pp.module_samples(mod)))


def top_unit(pic, named=False):
    """The program's unit with the most self samples; unnamed code counts
    per module (named: the top function that has a name)."""
    items = sorted(((u, n) for u, n in pic.units.items()
                    if u[0] != KILN_MODULE and (u[1] is not None or not named)), key=lambda kv: str(kv[0]))
    if not items:
        return None
    return max(items, key=lambda kv: kv[1])[0]


def sigma(share_a, share_b, na, nb):
    """Standard error (points) of the difference of two shares measured
    with na and nb samples, from the binomial bound."""
    if not na or not nb:
        return float("inf")
    p = (share_a + share_b) / 200.0
    p = min(max(p, 0.5 / max(na, nb)), 1 - 0.5 / max(na, nb))
    return 100.0 * math.sqrt(p * (1 - p) * (1.0 / na + 1.0 / nb))


def share_check(name, what, ks, ps, kp, pp, own=False):
    nk, np_ = (kp.total, pp.total) if own else (kp.prog, pp.prog)
    if not nk:
        out("FAIL %s: %s: kiln has no CPU samples of the program (perf %.1f%%)" % (name, what, ps))
        return False
    s = sigma(ks, ps, nk, np_)
    d = abs(ks - ps) if not (math.isnan(ks) or math.isnan(ps)) else float("inf")
    msg = "%s: kiln %.1f%% vs perf %.1f%% (|d| %.1f, tolerance %.0f = %.1f sigma)" % (
        what, ks, ps, d, TOL, TOL / s if s else float("inf"))
    if d <= TOL:
        out("PASS %s: %s" % (name, msg))
        return True
    out("FAIL %s: %s" % (name, msg))
    return False


def strip_summary(stderr):
    """stderr without kiln's summary lines, and the pids that printed them."""
    kept, pids = [], set()
    for ln in stderr.split(b"\n"):
        m = SUMMARY_RE.match(ln)
        if m:
            pids.add(int(m.group(1)))
        else:
            kept.append(ln)
    return b"\n".join(kept), pids


def short(b, n=160):
    s = b.decode("utf-8", "replace")
    return (s[:n] + "...") if len(s) > n else s


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


# ---------------------------------------------------------------- one program
def judge(name, pp, kp, metas, row, prc):
    """The profile checks: kiln's picture (kp, metas) against perf's (pp)."""
    row.update(perf_n=pp.prog, kiln_n=kp.prog)
    if pp.prog < MIN_PERF:
        out("FAIL %s: perf took only %d samples of the program (perf script status %d); the entry is "
            "too short for a 5-point check" % (name, pp.prog, prc))
        return
    if kp.prog >= MIN_SAMPLE_RATIO * pp.prog:
        out("PASS %s: samples of the program: kiln %d, perf %d" % (name, kp.prog, pp.prog))
    else:
        out("FAIL %s: samples of the program: kiln %d, perf %d (below %d%%)" % (name, kp.prog, pp.prog,
                                                                               100 * MIN_SAMPLE_RATIO))
    # The units to compare: perf's top one; perf's top named function
    # when the top one is a module's unnamed code; kiln's top one.
    units, keys = [], []
    ptop = top_unit(pp)
    named = top_unit(pp, named=True)
    for who, u in (("perf's", ptop), ("perf's named", named if ptop[1] is None else None),
                   ("kiln's", top_unit(kp))):
        if u is None:
            continue
        key, label, note, ks, ps = compare_unit(u, kp, pp)
        if key in keys or (key == ("mod", KERNEL) and who != "perf's"):
            continue  # the same comparison, or the kernel share check's
        keys.append(key)
        units.append((who, label, note, ks, ps))
    _, label, _, ks, ps = units[0]
    row.update(top=label, top_kiln=ks, top_perf=ps)
    if len(units) > 1 and units[-1][0] == "kiln's":
        row["ktop"] = "%s%s (kiln %.1f%%, perf %.1f%%)" % units[-1][1:]
    for who, label, note, ks, ps in units:
        share_check(name, "%s top function %s%s" % (who, label, note), ks, ps, kp, pp)
    ksh, psh = kp.share(kp.kernel), pp.share(pp.kernel)
    row.update(kern_kiln=ksh, kern_perf=psh)
    share_check(name, "kernel share", ksh, psh, kp, pp)
    row.update(own_kiln=kp.own_share(), own_perf=pp.own_share())
    # kiln's own cost is shown in the table, not checked: perf also sees
    # kiln's exit-time work (symbolizing, writing), which no in-process
    # sample can, and whose share grows with the machine's load.
    out("# %s: kiln's own cost (share of all samples): kiln %.1f%% vs perf %.1f%%"
        % (name, kp.own_share(), pp.own_share()))
    if kp.internals:
        fr, n = kp.internals.most_common(1)[0]
        out("FAIL %s: no kiln internals: %d samples have frames of kiln or libunwind, e.g. '%s' (%d)"
            % (name, sum(kp.internals.values()), fr, n))
    else:
        out("PASS %s: no kiln internals in the profile" % name)
    # -- every process and thread
    seen_pids = sorted(pid for pid, n in pp.pids.items() if n >= MIN_THREAD)
    kiln_pids = set(kp.pids)
    missing = [pid for pid in seen_pids if pid not in kiln_pids]
    row["procs"] = "%d/%d" % (len(seen_pids) - len(missing), len(seen_pids))
    if missing:
        out("FAIL %s: processes: %d of %d that perf saw with >= %d samples have no kiln profile: %s"
            % (name, len(missing), len(seen_pids), MIN_THREAD,
               ", ".join("%d (%s, %d samples)" % (pid, pp.tid_comm.get(pid, "?"), pp.pids[pid])
                         for pid in missing[:5])))
    else:
        out("PASS %s: processes: all %d that perf saw with >= %d samples have a kiln profile"
            % (name, len(seen_pids), MIN_THREAD))
    seen_tids = sorted(t for t, n in pp.tids.items() if n >= MIN_THREAD)
    if not any("threads_list" in m for m in metas):
        row["threads"] = "%d/?" % len(seen_tids)
        out("SKIP %s: threads: meta.json has no threads_list yet (perf saw %d threads with >= %d samples)"
            % (name, len(seen_tids), MIN_THREAD))
    else:
        ktids = {t.get("tid") for m in metas for t in m.get("threads_list", [])}
        missing = [t for t in seen_tids if t not in ktids]
        row["threads"] = "%d/%d" % (len(seen_tids), len(seen_tids) - len(missing))
        if missing:
            out("FAIL %s: threads: %d of %d that perf saw with >= %d samples are not in threads_list: %s"
                % (name, len(missing), len(seen_tids), MIN_THREAD,
                   ", ".join("%d (%s, %d samples)" % (t, pp.tid_comm.get(t, "?"), pp.tids[t])
                             for t in missing[:5])))
        else:
            out("PASS %s: threads: all %d that perf saw with >= %d samples are in threads_list"
                % (name, len(seen_tids), MIN_THREAD))



def set_up(prog, base):
    """The entry's directory, its inputs, and the environment of its runs."""
    pdir = os.path.join(base, prog.name)
    data = os.path.join(pdir, "data")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    ctx = {"data": data, "work": os.path.join(pdir, "work"), "progs": programs.PROGS,
           "root": ROOT, "tmp": pdir, "port": free_port()}
    if prog.setup:
        prog.setup(data)
    env0 = {k: v for k, v in os.environ.items() if not k.startswith("KILN_") and k != "LD_PRELOAD"}
    env0.update(LC_ALL="C", HOME=data, GIT_CONFIG_NOSYSTEM="1")
    return pdir, ctx, env0


def self_check(prog, base, table, keep):
    """The checks judged on a perfect profiler: one perf run with two
    cpu-clock samplers, kiln's timer kind, at 999 and 1000 Hz (so that
    their phases drift apart as two independent timers' do); the second's
    samples, written as kiln's files, stand for kiln's profile. Every check
    must pass: what differs is the checks' own noise. (cpu-clock against
    task-clock would not do: they differ by design around context switches,
    by up to 6 points on gcc and redis.)"""
    pdir, ctx, env0 = set_up(prog, base)
    name = "real/%s/selfcheck" % prog.name
    pdata = os.path.join(pdir, "perf-self.data")
    prefix = ["perf", "record", "-q", "-F", str(HZ), "-g", "-e", "cpu-clock/name=clka/",
              "-e", "cpu-clock/name=clkb,period=1000000/", "-o", pdata, "--"]
    r = run_program(prog, ctx, prefix, env0, prog.timeout)
    row = {"program": prog.name, "mode": "selfcheck", "wall": float("nan"), "same": not r.hung and r.rc == 0}
    table.append(row)
    if r.hung or r.rc != 0:
        out("FAIL %s: the perf run %s" % (name, r.hung or "exited with status %s" % r.rc))
        return
    cp = subprocess.run(["perf", "script", "-i", pdata, "-F", "event,comm,pid,tid,period,ip,sym,dso"],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300)
    text = cp.stdout.decode("utf-8", "replace")
    pp, modmap = parse_perf(text, event="clka")
    synth = {}
    parse_perf(text, event="clkb", synth=synth)
    kout = os.path.join(pdir, "kiln-self")
    shutil.rmtree(kout, ignore_errors=True)
    write_synth(synth, kout)
    kp, metas = read_kiln(kout, modmap)
    judge(name, pp, kp, metas, row, cp.returncode)
    if not keep:
        os.unlink(pdata)


def check_program(prog, base, lib, table, keep):
    pdir, ctx, env0 = set_up(prog, base)
    name0 = "real/" + prog.name
    plain = run_program(prog, ctx, [], env0, prog.timeout)
    if plain.hung or plain.rc != 0:
        out("FAIL %s: the unprofiled run %s" % (name0, plain.hung or "exited with status %s; stderr: %s"
                                                 % (plain.rc, short(plain.stderr))))
        return
    for mode in MODES:
        name = "%s/%s" % (name0, mode)
        kout = os.path.join(pdir, "kiln-" + mode.replace(",", "-"))
        pdata = os.path.join(pdir, "perf-%s.data" % mode.replace(",", "-"))
        shutil.rmtree(kout, ignore_errors=True)
        ctx["port"] = free_port()
        prefix = ["perf", "record", "-q", "-F", str(HZ), "-g", "-e", "cpu-clock", "-o", pdata, "--",
                  "env", "LD_PRELOAD=" + lib, "KILN_OUT=" + kout, "KILN_MODE=" + mode]
        # A loaded machine slows every run alike: the bound follows the
        # unprofiled run's wall time, never below the entry's own.
        r = run_program(prog, ctx, prefix, env0, max(prog.timeout, SLOWDOWN_LIMIT * plain.wall))
        row = {"program": prog.name, "mode": mode}
        table.append(row)
        row["wall"] = r.wall / plain.wall if plain.wall > 0 else float("nan")
        # -- the program behaves the same
        same = True
        if r.hung:
            out("FAIL %s: finished: %s (killed)" % (name, r.hung))
            same = False
        else:
            out("PASS %s: finished in %.1f s (unprofiled %.1f s)" % (name, r.wall, plain.wall))
        if r.rc == plain.rc:
            out("PASS %s: exit status %d as unprofiled" % (name, r.rc))
        else:
            out("FAIL %s: exit status %s, unprofiled %s" % (name, r.rc, plain.rc))
            same = False
        got = r.stdout + r.client
        want = plain.stdout + plain.client
        if got == want:
            out("PASS %s: stdout identical (%d bytes)" % (name, len(want)))
        else:
            i = first_diff(got, want)
            out("FAIL %s: stdout differs at byte %d: %r vs unprofiled %r" %
                (name, i, short(got[i:i + 80], 80), short(want[i:i + 80], 80)))
            same = False
        err, pids = strip_summary(r.stderr)
        perr, _ = strip_summary(plain.stderr)
        if err == perr and len(pids) <= 1:
            out("PASS %s: stderr identical but kiln's summary (%d process)" % (name, len(pids)))
        elif err != perr:
            i = first_diff(err, perr)
            out("FAIL %s: stderr differs at byte %d: %r vs unprofiled %r" %
                (name, i, short(err[i:i + 120], 120), short(perr[i:i + 120], 120)))
            same = False
        else:
            out("FAIL %s: stderr has kiln summary lines from %d processes (want one per tree)" % (name, len(pids)))
            same = False
        for f in prog.files:
            if f in prog.stderr_files:
                # (the blob is "path\0content": a log is one file)
                got, fpids = strip_summary(r.files.get(f, b"").split(b"\0", 1)[-1])
                want, _ = strip_summary(plain.files.get(f, b"").split(b"\0", 1)[-1])
                if got == want and len(fpids) <= 1:
                    out("PASS %s: file %s (its stderr) identical but kiln's summary (%d process)" % (name, f, len(fpids)))
                else:
                    out("FAIL %s: file %s (its stderr) differs from the unprofiled run's, or has summaries of %d processes"
                        % (name, f, len(fpids)))
                    same = False
                continue
            if r.files.get(f) == plain.files.get(f):
                out("PASS %s: file %s identical" % (name, f))
            else:
                out("FAIL %s: file %s differs from the unprofiled run's" % (name, f))
                same = False
        row["same"] = same
        if r.hung:
            continue
        # -- the picture is perf's
        pp, modmap, prc = read_perf(pdata, pdata + ".txt")
        kp, metas = read_kiln(kout, modmap)
        judge(name, pp, kp, metas, row, prc)
        if not keep:
            os.unlink(pdata)
            os.unlink(pdata + ".txt")


def cpu_seconds():
    """CPU time of this driver and of every process it waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def fmt(v, spec="%.1f"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return spec % v


def print_table(table):
    cols = [("program", 8), ("mode", 9), ("top unit (perf's)", 34), ("top k/p %", 11), ("kernel k/p %", 12),
            ("kiln-own k/p %", 14), ("procs", 6), ("threads p/k", 11), ("samples k/p", 12), ("same", 4),
            ("wall x", 6)]
    out("")
    out("  ".join(h.ljust(w) for h, w in cols))
    for r in table:
        vals = [r["program"], r["mode"], (r.get("top") or "-")[:34],
                "%s/%s" % (fmt(r.get("top_kiln")), fmt(r.get("top_perf"))),
                "%s/%s" % (fmt(r.get("kern_kiln")), fmt(r.get("kern_perf"))),
                "%s/%s" % (fmt(r.get("own_kiln")), fmt(r.get("own_perf"))),
                r.get("procs", "-"), r.get("threads", "-"),
                "%s/%s" % (r.get("kiln_n", "-"), r.get("perf_n", "-")),
                "yes" if r.get("same") else "no", fmt(r.get("wall"), "%.2f")]
        out("  ".join(str(v).ljust(w) for v, (_, w) in zip(vals, cols)))
        if r.get("ktop"):
            out("  ".ljust(21) + "kiln's top: " + r["ktop"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", choices=("ci", "all"), default="all")
    ap.add_argument("--only", default="")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--keep", default="", help="keep the runs' files under this directory")
    ap.add_argument("--budget", type=float, default=0,
                    help="seconds: entries not started by then are skipped (a loaded machine)")
    ap.add_argument("--selfcheck", action="store_true",
                    help="judge perf against itself (two samplers, one run) instead of kiln")
    a = ap.parse_args()
    build = os.environ.get("KILN_BUILD", "build")
    lib = os.path.join(build if os.path.isabs(build) else os.path.join(ROOT, build), "libkiln.so")
    if not os.path.exists(lib):
        out("FAIL real: %s not built" % lib)
        return 1
    need = ["perf"]
    progs = [p for p in programs.PROGRAMS if (a.set == "all" or p.ci)
             and (not a.only or p.name in a.only.split(","))]
    for p in progs:
        need.append(p.argv[0])
        if p.daemon:
            need += [c[0] for c in p.daemon.clients]
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            paranoid = int(f.read())
    except (OSError, ValueError):
        paranoid = 2
    if os.geteuid() != 0 and paranoid > 1:
        # perf would see user time only: every kernel-share check would be void.
        out("SKIP real: perf cannot sample kernel time here (not root, perf_event_paranoid=%d)" % paranoid)
        return 0
    missing = sorted({n for n in need if not shutil.which(n)})
    if missing:
        out("FAIL real: missing programs: %s (make deps-test installs them)" % " ".join(missing))
        return 1
    if a.keep:
        base = os.path.abspath(a.keep)
        os.makedirs(base, exist_ok=True)
    else:
        base = tempfile.mkdtemp(prefix="kiln-real.")
    # Daemons drop privileges (nginx workers run as nobody): they must reach
    # their files, as in a normal install.
    os.chmod(base, 0o755)
    probe = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-o", os.path.join(base, "probe.data"), "--",
                            "true"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    if probe.returncode != 0:
        out("FAIL real: perf record does not work here: %s" % short(probe.stderr, 300))
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
        return 1
    table = []
    start = time.monotonic()
    try:
        for p in progs:
            if a.budget and time.monotonic() - start > a.budget:
                out("SKIP real/%s: not started, the suite's %.0f s budget is spent (machine loaded?)"
                    % (p.name, a.budget))
                continue
            t0, c0 = time.monotonic(), cpu_seconds()
            if a.selfcheck:
                self_check(p, base, table, bool(a.keep))
            else:
                check_program(p, base, lib, table, bool(a.keep))
            out("# %s: %.0f s wall, %.0f s CPU" % (p.name, time.monotonic() - t0, cpu_seconds() - c0))
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)
    if a.table:
        print_table(table)
    print("real programs: %d passed, %d failed, %d skipped" % (COUNTS["PASS"], COUNTS["FAIL"], COUNTS["SKIP"]))
    return 1 if COUNTS["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
