# The real programs of the suite: one declarative entry each. real.py runs
# every entry unprofiled, then under perf + kiln in each mode, and compares.
#
# An entry is a Program(...):
#   name     check-name prefix; ci: part of the subset `make test` runs
#   argv     the command; {data} (inputs made once by setup), {work} (the
#            run's own directory, the same path in every run so that outputs
#            naming it compare equal), {port} (a free loopback port),
#            {progs} (tests/real/progs) and {root} (the source tree) are
#            filled in; more_args(ctx) may append more
#   stdin    a file fed to the command's stdin
#   setup    setup(data): makes the inputs, once per suite run
#   prepare  prepare(work, port, data): per run, before the command (configs)
#   files    outputs compared byte for byte (paths or globs under {work})
#   daemon   for servers: the command runs in the background until
#            Daemon.ready; Daemon.clients then run unprofiled against it
#            (their filtered stdout is part of the compared output), and
#            Daemon.stop ends it; it must then exit by itself
#   timeout  seconds for the unprofiled run; a profiled run gets the larger
#            of this and 40x the unprofiled run's wall time
# Every size below is chosen for >= 3,000 perf samples (3 CPU-seconds) of
# the program unprofiled (real.py --selfcheck shows the counts), so that a
# 5-point tolerance is >= 3.9 standard errors (README.md).
import glob
import os
import random
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Callable, List, Optional

PROGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progs")


@dataclass
class Daemon:
    ready: str                       # "port": a TCP connect to {port} succeeds
    clients: List[List[str]]         # run in order once ready
    client_keep: str = ""            # regex: client stdout lines kept for comparison ("" keeps all)
    stop: Optional[Callable] = None  # stop(work, port): asks the daemon to exit


@dataclass
class Program:
    name: str
    argv: List[str]
    ci: bool = True
    setup: Optional[Callable] = None
    prepare: Optional[Callable] = None
    files: List[str] = field(default_factory=list)
    # Of those, the files the program sends its stderr to (nginx's error
    # log): compared like stderr, kiln's summary of the top process aside.
    stderr_files: List[str] = field(default_factory=list)
    daemon: Optional[Daemon] = None
    stdin: Optional[str] = None      # a file fed to stdin ({data}/{progs} filled in)
    more_args: Optional[Callable] = None  # more_args(ctx): arguments appended to argv
    timeout: int = 180


def _text(path, size, seed):
    """Deterministic word soup: compresses like text, not like zeros."""
    r = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(r.choice(letters) for _ in range(r.randint(2, 9))) for _ in range(5000)]
    n, chunk = 0, []
    with open(path, "w") as f:
        while n < size:
            line = " ".join(r.choices(words, k=12)) + "\n"
            chunk.append(line)
            n += len(line)
            if len(chunk) >= 4096:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))


def _xz_setup(data):
    _text(os.path.join(data, "input.txt"), 8 << 20, 7)


def _git_setup(data):
    """A repository of 1,500 commits over 60 files, made with one
    git fast-import (fixed names and dates, so every run sees the same)."""
    r = random.Random(11)
    repo = os.path.join(data, "repo")
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=data)
    subprocess.run(["git", "init", "-q", "-b", "main", repo], check=True, env=env)
    files = {f"src/file{i:02d}.c": [f"/* file {i} line {k} */ int v{i}_{k} = {k};" for k in range(120)]
             for i in range(60)}
    out = []
    for c in range(1500):
        out.append("commit refs/heads/main\n")
        when = 1700000000 + c * 3600
        out.append(f"author A U Thor <author@example.com> {when} +0000\n")
        out.append(f"committer C O Mitter <committer@example.com> {when} +0000\n")
        msg = f"change {c}: touch a few files\n"
        out.append(f"data {len(msg)}\n{msg}")
        for name in r.sample(sorted(files), 3):
            lines = files[name]
            for _ in range(6):
                k = r.randrange(len(lines))
                lines[k] = f"/* edit {c} */ int e{c}_{k} = {r.randrange(1 << 20)};"
            if r.random() < 0.3:
                lines.insert(r.randrange(len(lines)), f"int added{c} = {c};")
            body = "\n".join(lines) + "\n"
            out.append(f"M 100644 inline {name}\ndata {len(body)}\n{body}")
        out.append("\n")
    subprocess.run(["git", "-C", repo, "fast-import", "--quiet"], input="".join(out).encode(),
                   check=True, env=env)


def _git_prepare(work, port, data):
    shutil.copytree(os.path.join(data, "repo"), os.path.join(work, "repo"), symlinks=True)


def _nginx_prepare(work, port, data):
    html = os.path.join(work, "html")
    os.makedirs(html)
    os.makedirs(os.path.join(work, "logs"))
    with open(os.path.join(html, "index.html"), "w") as f:
        f.write("<p>kiln</p>\n" * 1000)
    temps = "".join(f"  {k}_temp_path {work}/tmp_{k};\n"
                    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(f"""worker_processes 2;
daemon off;
master_process on;
pid {work}/nginx.pid;
error_log {work}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
{temps}  server {{ listen 127.0.0.1:{port}; root {work}/html; }}
}}
""")


def _nginx_stop(work, port):
    # SIGQUIT: graceful shutdown; the master waits for its workers.
    with open(os.path.join(work, "nginx.pid")) as f:
        os.kill(int(f.read().strip()), signal.SIGQUIT)


def _redis_stop(work, port):
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "shutdown", "nosave"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


PROGRAMS = [
    Program("python3", ["/usr/bin/python3", "{progs}/work.py"]),
    # Not in make test's subset: an interpreter like python3 (same checks).
    Program("perl", ["perl", "{progs}/work.pl"], ci=False),
    Program("sqlite3", ["sqlite3", "{work}/t.db"], stdin="{progs}/work.sql", files=["t.db"]),
    Program("xz", ["xz", "-T2", "-6", "--block-size=1MiB", "-c", "{data}/input.txt"], setup=_xz_setup),
    # The driver gcc, then cc1 and as for each of kiln's runtime sources: a
    # process tree. make test-real only, with bash and nginx: in process
    # trees of short processes kiln cannot see what runs before its
    # constructor and after its destructor (exec, the loader, the exit's
    # teardown: kernel time perf counts), and nginx's workers lose their
    # profiles until the output-directory work for privilege drops lands.
    Program("gcc", ["gcc", "-O2", "-g", "-D_GNU_SOURCE", "-I{root}/include", "-I{root}/runtime", "-c"],
            # (kiln_syscalls.c includes a table the build generates: left out)
            more_args=lambda ctx: sorted(f for f in glob.glob(os.path.join(ctx["root"], "runtime", "*.c"))
                                         if not f.endswith("kiln_syscalls.c")),
            files=["*.o"], ci=False),
    # git repack runs git pack-objects (delta search: CPU) as a child; one
    # delta thread, so that the pack written is the same in every run.
    # make test-real only (make test's subset stays within its time).
    Program("git", ["git", "-C", "{work}/repo", "-c", "pack.threads=1", "repack", "-q", "-a", "-d", "-f",
                    "--window=100", "--depth=50"],
            setup=_git_setup, prepare=_git_prepare, files=["repo/.git/objects/pack/*"], ci=False),
    Program("bash", ["bash", "{progs}/work.sh"], ci=False),
    # A C++ program whose hot code is a JIT's (V8: no unwind tables, frame
    # pointers kept) and whose allocations come from below JIT frames.
    Program("node", ["node", "{progs}/work.js"], ci=False),
    Program("nginx", ["nginx", "-p", "{work}", "-c", "{work}/nginx.conf"], prepare=_nginx_prepare,
            files=["logs/error.log"], stderr_files=["logs/error.log"], ci=False,
            daemon=Daemon(ready="port",
                          clients=[["ab", "-q", "-n", "60000", "-c", "4", "http://127.0.0.1:{port}/index.html"]],
                          client_keep=r"^(Complete requests|Failed requests|Non-2xx responses|Document Length):",
                          stop=_nginx_stop)),
    # make test-real only for now: its background threads block signals and
    # the leak scan's word on them goes to stderr until the ptrace helper lands.
    Program("redis", ci=False, argv=["redis-server", "--port", "{port}", "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", "{work}", "--logfile", "{work}/redis.log",
                      "--loglevel", "warning"],
            daemon=Daemon(ready="port",
                          clients=[["redis-benchmark", "-h", "127.0.0.1", "-p", "{port}", "-n", "50000", "-c", "8",
                                    "-t", "set,get,incr,lpush,lpop", "-q"],
                                   ["redis-cli", "-h", "127.0.0.1", "-p", "{port}", "get", "counter:__rand_int__"],
                                   ["redis-cli", "-h", "127.0.0.1", "-p", "{port}", "llen", "mylist"],
                                   ["redis-cli", "-h", "127.0.0.1", "-p", "{port}", "dbsize"]],
                          client_keep=r"^[0-9]+$",
                          stop=_redis_stop)),
]
