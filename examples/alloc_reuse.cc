// alloc_reuse — allocation stacks that change in every way a stack-walk
// cache must notice: longjmp out of deep frames, C++ exceptions thrown
// through allocating frames, swapcontext coroutines, a signal handler that
// allocates, tail calls, alloca/VLA frames of changing size, recursion whose
// depth changes, and threads doing all of it at once. Feeds kiln's verify
// mode (KILN_ALLOC_VERIFY=1), which checks every fast stack against
// libunwind. Frees everything. Usage: alloc_reuse [ROUNDS] [THREADS]
#include <alloca.h>
#include <csetjmp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>
#include <stdexcept>
#include <string>
#include <ucontext.h>
#include <vector>

#define NOINLINE __attribute__((noinline, noipa))
static void *volatile sink;

NOINLINE static void churn_here(size_t n) {
  void *p = malloc(n);
  sink = p;
  free(p);
}

// Tail calls: the compiler turns these into jumps, so the frame that
// called them is the one malloc sees.
NOINLINE static void *tail_alloc(size_t n) { return malloc(n); }
NOINLINE static void *tail_chain(size_t n) { return tail_alloc(n + 8); }

NOINLINE static int recurse(int depth, int salt) {
  if (depth == 0) {
    void *p = tail_chain((size_t)salt % 200 + 1);
    free(p);
    return salt;
  }
  int r = recurse(depth - 1, salt + depth);
  churn_here((size_t)depth * 8);
  return r + 1;
}

NOINLINE static void vla_frame(int n) {
  char buf[n * 16 + 8]; // a frame whose size changes every call
  memset(buf, n, sizeof buf);
  char *a = (char *)alloca((size_t)(n % 5) * 64 + 16);
  a[0] = buf[0];
  churn_here((size_t)a[0] + 32);
  if (n % 3 == 0) recurse(n % 7, n);
}

static thread_local jmp_buf *jump_target;
NOINLINE static void jump_deep(int depth) {
  churn_here(48);
  if (depth > 0)
    jump_deep(depth - 1);
  else if (jump_target != nullptr)
    longjmp(*jump_target, 1);
  sink = nullptr;
}

NOINLINE static void throw_deep(int depth) {
  std::string s(40 + depth, 'x'); // allocates, destroyed while unwinding
  sink = &s[0];
  if (depth == 0) throw std::runtime_error("deep enough, with a message long enough to allocate");
  throw_deep(depth - 1);
  sink = nullptr;
}

// setjmp in a frame of its own, so no local of the loop is live across it.
NOINLINE static void jump_from(int depth) {
  jmp_buf here;
  jump_target = &here;
  if (setjmp(here) == 0) jump_deep(depth);
}

static void on_usr1(int) { churn_here(64); } // raised synchronously: malloc is not interrupted

NOINLINE static void signal_deep(int depth) {
  if (depth == 0) {
    raise(SIGUSR1);
    return;
  }
  signal_deep(depth - 1);
  churn_here(16);
}

enum { COROS = 3, CORO_STACK = 64 * 1024 };
struct coro_set {
  ucontext_t main_ctx, ctx[COROS];
  int rounds;
};
static thread_local coro_set *coros;

static void coro_body(int id) {
  for (int r = 0; r < coros->rounds; r++) {
    recurse((r + id) % 9, r);
    vla_frame(r % 11 + id);
    swapcontext(&coros->ctx[id], &coros->main_ctx);
  }
}

static void *worker(void *arg) {
  int rounds = *(int *)arg;
  coro_set set;
  coros = &set;
  set.rounds = rounds;
  std::vector<char *> stacks;
  for (int i = 0; i < COROS; i++) {
    stacks.push_back((char *)malloc(CORO_STACK));
    getcontext(&set.ctx[i]);
    set.ctx[i].uc_stack.ss_sp = stacks.back();
    set.ctx[i].uc_stack.ss_size = CORO_STACK;
    set.ctx[i].uc_link = &set.main_ctx;
    makecontext(&set.ctx[i], (void (*)())coro_body, 1, i);
  }
  for (int r = 0; r < rounds; r++) {
    recurse(r % 23, r);
    vla_frame(r % 13);
    jump_from(r % 17);
    try {
      throw_deep(r % 9);
    } catch (const std::exception &e) {
      sink = (void *)e.what();
    }
    if (r % 4 == 0) signal_deep(r % 6);
    for (int i = 0; i < COROS; i++) swapcontext(&set.main_ctx, &set.ctx[i]);
  }
  for (char *s : stacks) free(s);
  return nullptr;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 2000;
  int threads = argc > 2 ? atoi(argv[2]) : 4;
  if (threads < 1 || threads > 32) return 2;
  signal(SIGUSR1, on_usr1);
  pthread_t t[32];
  for (int i = 0; i < threads; i++) pthread_create(&t[i], nullptr, worker, &rounds);
  for (int i = 0; i < threads; i++) pthread_join(t[i], nullptr);
  printf("alloc_reuse: %d rounds in %d threads\n", rounds, threads);
  return 0;
}
