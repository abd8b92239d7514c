/* kiln_hookstack.c — the allocation stack of the calling thread, from inside
 * a malloc hook, as a stack_id. Hook context only (any thread, guard held);
 * never the signal handler.
 *
 * libunwind's unw_backtrace costs ~400 ns for 15 frames and unw_step ~1 us
 * a frame, so the hooks walk the stack themselves with a table of unwind
 * rules, one per return address, each learned once from libunwind's own
 * unw_step (the CFA as rsp+k or rbp+k, where the caller's rbp was saved):
 * nothing is read that libunwind would not read at the same pc, and a pc
 * whose frame libunwind handles in a way a rule cannot say (signal frames,
 * registers saved in registers, a return address not at CFA-8) sends that
 * allocation to unw_backtrace. KILN_ALLOC_VERIFY=1 unwinds every allocation
 * with unw_backtrace as well and counts the stacks that differ.
 * The walked stack becomes a stack_id through a per-thread cache (hash ->
 * id, checked against the interned pcs), so the shared stack table is only
 * probed for stacks the thread has not seen.
 * Per-thread memory (pcs buffers, the cache, libunwind's cursor, a stack of
 * its own for learning) is mmap'd on a thread's first allocation and
 * recycled at thread exit: the hook itself uses a few hundred bytes of the
 * program's stack. Stack bounds never come from pthread_getattr_np (which
 * may be the caller, holding its thread's lock): the main thread's stack
 * ends at __libc_stack_end, other glibc threads' below their descriptor. */
#define UNW_LOCAL_ONLY
#include "kiln_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <libunwind.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

extern void *__libc_stack_end;

/* ---------------------------------------------------------- libunwind */

static struct {
  int (*backtrace)(void **, int);
  int (*getcontext)(unw_context_t *);
  int (*init_local)(unw_cursor_t *, unw_context_t *);
  int (*step)(unw_cursor_t *);
  int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
  int (*get_save_loc)(unw_cursor_t *, int, unw_save_loc_t *);
  int (*is_signal_frame)(unw_cursor_t *);
  bool ok;
} kiln_hs_unw;
static int (*kiln_hs_find_object)(void *, struct dl_find_object *);
static _Atomic bool kiln_hs_guessed_outside; /* a GUESS rule for code outside every file */

/* ------------------------------------------------------------- rules */

/* How to go from a frame (ip, rsp, rbp) to its caller's, learned for ip:
 *   RSP  cfa = rsp + off      RBP  cfa = rbp + off
 *   END  the outermost frame  BAD  ask libunwind (no rule can say it)
 * then return address = [cfa - 8], caller rsp = cfa, caller rbp =
 * [cfa + rbp_off] when saved, else unchanged. */
enum { KILN_HS_RSP = 1, KILN_HS_RBP = 2, KILN_HS_END = 3, KILN_HS_BAD = 4 };
/* An RBP rule libunwind guessed (code without unwind tables, where it
 * follows the frame-pointer chain): only where the walk's reads are known
 * to stay on the thread's own stack, since rbp there may not be a frame
 * pointer at all (libunwind checks each such read with a system call). */
#define KILN_HS_GUESS 16u
enum { KILN_HS_RULES = 1 << 17 }; /* 2 MiB reserved, touched as learned */
#define KILN_HS_BUSY (1ull << 63)

typedef struct kiln_hs_rule {
  _Atomic uint64_t pc;   /* 0 empty; | BUSY while its rule is written */
  _Atomic uint64_t rule; /* kind | saved << 3 | (uint32)off << 16 | (uint16)rbp_off << 48 */
} kiln_hs_rule_t;

static kiln_hs_rule_t *kiln_hs_rules;
static _Atomic uint64_t kiln_hs_rules_gen; /* bumped when every rule is forgotten */
static _Atomic uint64_t kiln_hs_rules_used, kiln_hs_rules_full;

static inline size_t kiln_hs_rule_slot(uint64_t pc) {
  return (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 47) & (KILN_HS_RULES - 1);
}

/* The rule of pc, 0 when unknown. Lock-free: readers never wait. */
static inline uint64_t kiln_hs_rule_get(uint64_t pc) {
  for (size_t i = kiln_hs_rule_slot(pc), n = 0; n < 64; i = (i + 1) & (KILN_HS_RULES - 1), n++) {
    uint64_t p = atomic_load_explicit(&kiln_hs_rules[i].pc, memory_order_acquire);
    if (p == pc) return atomic_load_explicit(&kiln_hs_rules[i].rule, memory_order_relaxed);
    if (p == 0) return 0;
  }
  return 0;
}

static void kiln_hs_rule_put(uint64_t pc, uint64_t rule) {
  for (size_t i = kiln_hs_rule_slot(pc), n = 0; n < 64; i = (i + 1) & (KILN_HS_RULES - 1), n++) {
    uint64_t p = atomic_load_explicit(&kiln_hs_rules[i].pc, memory_order_acquire);
    if ((p & ~KILN_HS_BUSY) == pc) return; /* learned by another thread */
    if (p != 0) continue;
    uint64_t expect = 0;
    if (!atomic_compare_exchange_strong_explicit(&kiln_hs_rules[i].pc, &expect, pc | KILN_HS_BUSY,
                                                 memory_order_acq_rel, memory_order_acquire)) {
      if ((expect & ~KILN_HS_BUSY) == pc) return;
      continue;
    }
    atomic_store_explicit(&kiln_hs_rules[i].rule, rule, memory_order_relaxed);
    atomic_store_explicit(&kiln_hs_rules[i].pc, pc, memory_order_release);
    atomic_fetch_add_explicit(&kiln_hs_rules_used, 1, memory_order_relaxed);
    return;
  }
  atomic_fetch_add_explicit(&kiln_hs_rules_full, 1, memory_order_relaxed);
}

static inline uint64_t kiln_hs_rule_make(unsigned kind, bool saved, int64_t off, int64_t rbp_off) {
  return kind | (uint64_t)saved << 3 | (uint64_t)(uint32_t)(int32_t)off << 16 |
         (uint64_t)(uint16_t)(int16_t)rbp_off << 48;
}

/* ----------------------------------------------------- per-thread state */

enum {
  KILN_HS_PCS = KILN_DEPTH_MAX + KILN_UNWIND_SLACK,
  KILN_HS_IDS = 1024,             /* stack cache entries */
  KILN_HS_LOG = 48,               /* words of a walk that can be cached */
  KILN_HS_WALKS = 64,             /* cached walks (about 50 KiB), in pairs: 2-way sets */
  KILN_HS_LEARN_STACK = 32 * 1024, /* where libunwind's unw_step runs */
  KILN_HS_TRACE = 256,             /* frames of a walk kept for the next one */
  KILN_HS_TRACE_LOG = 2 * KILN_HS_TRACE
};

/* A word a walk read, and a finished walk: where it started (the hook
 * frame's address, the program's return address and rbp in it), every
 * word it read, the stack it found. */
typedef struct kiln_hs_read { uintptr_t addr, value; } kiln_hs_read_t;
typedef struct kiln_hs_walk {
  uintptr_t ip, sp, bp;
  int max;
  bool uses_bp; /* then bp is part of the start */
  uint32_t id;
  unsigned nlog;
  kiln_hs_read_t log[KILN_HS_LOG];
} kiln_hs_walk_t;

/* A rule walk as the next one may reuse it: at each frame, the state the
 * walk was in (ip, rsp, rbp), where its reads from that frame on begin in
 * the log, and whether the rest of the walk used that rbp. */
typedef struct kiln_hs_frame {
  uintptr_t ip, rsp, rbp;
  uint32_t log;
  uint8_t kind, saves, needs_rbp, pad;
} kiln_hs_frame_t;
typedef struct kiln_hs_trace {
  int n;         /* frames; the walk ended by itself (not cut, not libunwind's) */
  uint64_t gen;  /* of the rules it followed (kiln_hs_rules_gen) */
  unsigned nlog; /* its reads (at most KILN_HS_TRACE_LOG, else not kept) */
  kiln_hs_frame_t fr[KILN_HS_TRACE];
  kiln_hs_read_t log[KILN_HS_TRACE_LOG];
} kiln_hs_trace_t;

typedef struct kiln_hs_thread {
  struct kiln_hs_thread *next_free;
  uintptr_t stack_hi; /* frames of this thread's own stack are below */
  uint64_t pcs[KILN_HS_PCS];
  uint64_t check[KILN_HS_PCS]; /* verify mode: libunwind's answer */
  uint64_t gen; /* of the stack table the caches belong to */
  unsigned nlog; /* words the current walk read (may pass KILN_HS_LOG) */
  uint64_t hits; /* walks answered by the cache */
  bool uses_bp;  /* the current walk used the program's rbp at the call */
  uint64_t reused; /* walks that took their outer frames from the last one */
  kiln_hs_read_t *log; /* the current walk's reads: tr[cur].log */
  int cur;             /* tr[cur] is being walked, tr[cur ^ 1] is the last walk */
  kiln_hs_trace_t tr[2];
  kiln_hs_walk_t walks[KILN_HS_WALKS];
  uint8_t walk_mru[KILN_HS_WALKS / 2]; /* the way of each set used last */
  struct { uint64_t hash; uint32_t id, pad; } ids[KILN_HS_IDS];
  unw_context_t uc;
  unw_cursor_t cursor;
  _Alignas(16) char learn_stack[KILN_HS_LEARN_STACK];
} kiln_hs_thread_t;

static __thread kiln_hs_thread_t *kiln_tls_hs __attribute__((tls_model("initial-exec")));
__thread const uintptr_t *kiln_tls_hook_frame __attribute__((tls_model("initial-exec")));
static pthread_key_t kiln_hs_key;
static bool kiln_hs_key_ok;
static atomic_flag kiln_hs_pool_lock = ATOMIC_FLAG_INIT;
static kiln_hs_thread_t *kiln_hs_pool;
static _Atomic uint64_t kiln_hs_verified, kiln_hs_mismatches, kiln_hs_fallbacks, kiln_hs_learned;
static bool kiln_hs_verify;

static void kiln_hs_thread_exit(void *p) {
  kiln_hs_thread_t *t = p;
  if (kiln_tls_hs == t) kiln_tls_hs = NULL;
  while (atomic_flag_test_and_set_explicit(&kiln_hs_pool_lock, memory_order_acquire)) sched_yield();
  t->next_free = kiln_hs_pool;
  kiln_hs_pool = t;
  atomic_flag_clear_explicit(&kiln_hs_pool_lock, memory_order_release);
}

static kiln_hs_thread_t *kiln_hs_thread_new(void) {
  kiln_hs_thread_t *t;
  while (atomic_flag_test_and_set_explicit(&kiln_hs_pool_lock, memory_order_acquire)) sched_yield();
  t = kiln_hs_pool;
  if (t != NULL) kiln_hs_pool = t->next_free;
  atomic_flag_clear_explicit(&kiln_hs_pool_lock, memory_order_release);
  if (t != NULL) {
    memset(t->ids, 0, sizeof t->ids); /* a recycled one: another thread's caches */
    memset(t->walks, 0, sizeof t->walks);
    t->tr[0].n = t->tr[1].n = 0;
  } else if ((t = kiln_mem_map(sizeof *t)) == NULL) {
    return NULL;
  }
  t->cur = 0;
  t->log = t->tr[0].log;
  t->next_free = NULL;
  t->gen = kiln_stacktab_generation();
  /* Where this thread's frames end (see the file comment). */
  bool is_main = syscall(SYS_gettid) == getpid();
  t->stack_hi = is_main ? (uintptr_t)__libc_stack_end : (uintptr_t)pthread_self();
  kiln_tls_hs = t;
  if (kiln_hs_key_ok) pthread_setspecific(kiln_hs_key, t);
  return t;
}

/* --------------------------------------------------------------- init */

int kiln_hookstack_init(kiln_unwind_kind_t kind, bool verify) {
  kiln_hs_verify = verify;
  if (!kiln_hs_key_ok && pthread_key_create(&kiln_hs_key, kiln_hs_thread_exit) == 0) kiln_hs_key_ok = true;
  if (kind != KILN_UNWIND_LIBUNWIND || kiln_hs_unw.ok) return 0;
  void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (h == NULL) h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return -ENOENT;
  *(void **)&kiln_hs_unw.backtrace = dlsym(h, "unw_backtrace");
  *(void **)&kiln_hs_unw.getcontext = dlsym(h, "_Ux86_64_getcontext");
  *(void **)&kiln_hs_unw.init_local = dlsym(h, "_ULx86_64_init_local");
  *(void **)&kiln_hs_unw.step = dlsym(h, "_ULx86_64_step");
  *(void **)&kiln_hs_unw.get_reg = dlsym(h, "_ULx86_64_get_reg");
  *(void **)&kiln_hs_unw.get_save_loc = dlsym(h, "_ULx86_64_get_save_loc");
  *(void **)&kiln_hs_unw.is_signal_frame = dlsym(h, "_ULx86_64_is_signal_frame");
  if (kiln_hs_unw.backtrace == NULL) return -ENOENT;
  *(void **)&kiln_hs_find_object = dlsym(RTLD_DEFAULT, "_dl_find_object");
  kiln_allocmaps_kiln_library(*(void **)&kiln_hs_unw.backtrace);
  if (kiln_hs_rules == NULL) kiln_hs_rules = kiln_mem_map(KILN_HS_RULES * sizeof *kiln_hs_rules);
  kiln_hs_unw.ok = true;
  return 0;
}

/* After dlclose: code at an address may be another library's next time,
 * so every rule is learned again. The pages drop to zeros (empty slots)
 * at once; a walk racing with this sees a rule or nothing, and walks only
 * through code that is still mapped. */
void kiln_hookstack_forget_rules(void) {
  if (kiln_hs_rules == NULL) return;
  atomic_fetch_add_explicit(&kiln_hs_rules_gen, 1, memory_order_release); /* and every kept walk */
  atomic_store_explicit(&kiln_hs_guessed_outside, false, memory_order_relaxed);
  madvise(kiln_hs_rules, KILN_HS_RULES * sizeof *kiln_hs_rules, MADV_DONTNEED);
  atomic_store_explicit(&kiln_hs_rules_used, 0, memory_order_relaxed);
}

void kiln_hookstack_stats(kiln_hookstack_stats_t *out) {
  out->verified = atomic_load_explicit(&kiln_hs_verified, memory_order_relaxed);
  out->mismatches = atomic_load_explicit(&kiln_hs_mismatches, memory_order_relaxed);
  out->fallbacks = atomic_load_explicit(&kiln_hs_fallbacks, memory_order_relaxed);
  out->rules = atomic_load_explicit(&kiln_hs_rules_used, memory_order_relaxed);
  out->learns = atomic_load_explicit(&kiln_hs_learned, memory_order_relaxed);
  out->verify = kiln_hs_verify;
}

/* ------------------------------------------------------------ learning */

/* The bounds of the kiln_hooks section (made by the linker). */
extern const char __start_kiln_hooks[] KILN_INTERNAL;
extern const char __stop_kiln_hooks[] KILN_INTERNAL;
/* Weak: a program that links the runtime without kiln's interposers (its
 * own malloc) has no such section; then no pc is in it. */
extern const char __start_kiln_hooks_entry[] __attribute__((weak)) KILN_INTERNAL;
extern const char __stop_kiln_hooks_entry[] __attribute__((weak)) KILN_INTERNAL;

static inline bool kiln_hs_in_hooks(uintptr_t pc) {
  return (pc > (uintptr_t)__start_kiln_hooks && pc <= (uintptr_t)__stop_kiln_hooks) ||
         (pc > (uintptr_t)__start_kiln_hooks_entry && pc <= (uintptr_t)__stop_kiln_hooks_entry);
}

/* Whether pc is in a loaded file's mapping: glibc's _dl_find_object
 * (2.35), lock-free, meant for unwinders; without it, never. */
static bool kiln_hs_in_module(uintptr_t pc) {
  struct dl_find_object o;
  return kiln_hs_find_object != NULL && kiln_hs_find_object((void *)pc, &o) == 0;
}
bool kiln_hookstack_guessed_outside(void) {
  return atomic_load_explicit(&kiln_hs_guessed_outside, memory_order_relaxed);
}

/* Walks t->uc with unw_step and writes a rule for every frame. Runs on the
 * thread's learning stack: libunwind needs kilobytes, the program's stack
 * may be an 8 KiB coroutine's. */
/* In a section of its own: a CPU sample taken while it runs, on kiln's
 * stack, cannot be unwound into the program's, and is kiln's time whole
 * (kiln_collector.c). */
__attribute__((section("kiln_learn"), noinline)) static void kiln_hs_learn_on_stack(void *arg) {
  kiln_hs_thread_t *t = arg;
  unw_cursor_t *c = &t->cursor;
  if (kiln_hs_unw.init_local(c, &t->uc) < 0) return;
  for (int depth = 0; depth < KILN_HS_PCS + 16; depth++) {
    unw_word_t ip, sp, bp, ip2, cfa, bp2;
    if (kiln_hs_unw.get_reg(c, UNW_REG_IP, &ip) < 0 || kiln_hs_unw.get_reg(c, UNW_X86_64_RSP, &sp) < 0 ||
        kiln_hs_unw.get_reg(c, UNW_X86_64_RBP, &bp) < 0)
      return;
    if (ip == 0) return;
    bool sig = kiln_hs_unw.is_signal_frame(c) > 0;
    /* Where rbp was found so far: a location that does not change across
     * the step was a deeper frame's save, not this frame's. */
    unw_save_loc_t before;
    if (kiln_hs_unw.get_save_loc(c, UNW_X86_64_RBP, &before) < 0) before.type = UNW_SLT_NONE;
    int r = kiln_hs_unw.step(c);
    if (r <= 0) {
      if (!kiln_hs_in_hooks(ip)) kiln_hs_rule_put(ip, kiln_hs_rule_make(sig ? KILN_HS_BAD : KILN_HS_END, false, 0, 0));
      return;
    }
    uint64_t rule = kiln_hs_rule_make(KILN_HS_BAD, false, 0, 0);
    unw_save_loc_t loc;
    if (!sig && kiln_hs_unw.get_reg(c, UNW_REG_IP, &ip2) == 0 && kiln_hs_unw.get_reg(c, UNW_X86_64_RSP, &cfa) == 0 &&
        kiln_hs_unw.get_reg(c, UNW_X86_64_RBP, &bp2) == 0 && kiln_hs_unw.get_save_loc(c, UNW_X86_64_RBP, &loc) == 0 &&
        cfa > sp && cfa - sp < (1u << 30) && *(const uint64_t *)(uintptr_t)(cfa - 8) == ip2) {
      bool saved = loc.type == UNW_SLT_MEMORY && !(before.type == UNW_SLT_MEMORY && before.u.addr == loc.u.addr);
      if (!saved && loc.type == UNW_SLT_MEMORY) loc.type = UNW_SLT_NONE; /* unchanged by this frame */
      int64_t rbp_off = saved ? (int64_t)(loc.u.addr - cfa) : 0;
      bool rbp_ok = saved ? rbp_off >= -32768 && rbp_off < 32768 && *(const uint64_t *)(uintptr_t)loc.u.addr == bp2
                          : loc.type == UNW_SLT_NONE && bp2 == bp;
      /* A frame whose rbp is its frame pointer (rbp pushed right below the
       * return address, pointing at itself) keeps its CFA at rbp+16 even
       * when alloca or a VLA moves rsp; any other CFA is rsp-relative. */
      if (rbp_ok && bp + 16 == cfa && saved && rbp_off == -16)
        rule = kiln_hs_rule_make(KILN_HS_RBP, true, 16, -16);
      else if (rbp_ok)
        rule = kiln_hs_rule_make(KILN_HS_RSP, saved, (int64_t)(cfa - sp), rbp_off);
    }
    /* Code without unwind tables (V8's builtins and JIT code in node,
     * hand-written assembly; a rule for code outside any loaded file, a
     * JIT's, is dropped with all the others when a library is loaded,
     * which may be mapped where that code was):
     * libunwind 1.6 takes the caller's ip and rbp from the frame-pointer
     * chain at rbp, but reports the caller's rsp as this frame's rsp + 16,
     * not rbp + 16, so the check above failed on every such frame with
     * locals, and every allocation below one went to unw_backtrace (node:
     * 5,700 in a trivial script, each checking its reads with mincore or
     * a pipe). The rule is the chain's, with the caller's rsp at rbp + 16:
     * the same ip and rbp as libunwind's, frame after frame (verify mode
     * on node: 451,004 stacks, none differ). */
    if ((rule & 7) == KILN_HS_BAD && !sig && kiln_hs_unw.get_reg(c, UNW_REG_IP, &ip2) == 0 &&
        kiln_hs_unw.get_reg(c, UNW_X86_64_RBP, &bp2) == 0 && kiln_hs_unw.get_save_loc(c, UNW_X86_64_RBP, &loc) == 0 &&
        loc.type == UNW_SLT_MEMORY && loc.u.addr == bp && !(before.type == UNW_SLT_MEMORY && before.u.addr == bp) &&
        bp > sp && bp - sp < (1u << 30) && (bp & 7) == 0 && ((const uint64_t *)(uintptr_t)bp)[0] == bp2 &&
        ((const uint64_t *)(uintptr_t)bp)[1] == ip2) {
      rule = kiln_hs_rule_make(KILN_HS_RBP, true, 16, -16) | KILN_HS_GUESS;
      if (!kiln_hs_in_module(ip)) atomic_store_explicit(&kiln_hs_guessed_outside, true, memory_order_relaxed);
    }
    if (!kiln_hs_in_hooks(ip)) kiln_hs_rule_put(ip, rule);
  }
}

/* Calls fn(arg) with rsp at top (16-byte aligned), then comes back. */
static void kiln_hs_call_on(void (*fn)(void *), void *arg, void *top) {
  __asm__ volatile("mov %%rsp, %%rbx\n\t"
                   "mov %[top], %%rsp\n\t"
                   "call *%[fn]\n\t"
                   "mov %%rbx, %%rsp\n\t"
                   : "+D"(arg)
                   : [fn] "r"(fn), [top] "r"(top)
                   : "rbx", "rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0",
                     "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                     "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

KILN_HOOK_TEXT static void kiln_hs_learn(kiln_hs_thread_t *t) {
  kiln_unwind_unsafe_enter(); /* the handler must not unwind across the switch */
  sigset_t old;
  kiln_unwind_sigs_hold(&old);
  if (kiln_hs_unw.getcontext(&t->uc) == 0) {
    kiln_hs_call_on(kiln_hs_learn_on_stack, t, t->learn_stack + sizeof t->learn_stack);
    atomic_fetch_add_explicit(&kiln_hs_learned, 1, memory_order_relaxed);
  }
  kiln_unwind_sigs_release(&old);
  kiln_unwind_unsafe_leave();
}

/* ---------------------------------------------------------- unwinding */

/* libunwind's answer: unw_backtrace, cut at the first program frame. */
KILN_HOOK_TEXT static int kiln_hs_backtrace(uint64_t *pcs, int max, unsigned *flags) {
  int cap = max + KILN_UNWIND_SLACK;
  kiln_unwind_unsafe_enter();
  sigset_t old;
  kiln_unwind_sigs_hold(&old);
  int got = kiln_hs_unw.backtrace((void **)pcs, cap);
  kiln_unwind_sigs_release(&old);
  kiln_unwind_unsafe_leave();
  /* Cut libunwind's own frame, then the leading run of hook frames (a
   * kiln frame further up, e.g. the pthread_create wrapper, stays). */
  int first = 0;
  while (first < got && first < 4 && !kiln_hs_in_hooks((uintptr_t)pcs[first])) first++;
  if (first == got || first == 4) first = 0; /* no hook frame seen: keep all */
  while (first < got && kiln_hs_in_hooks((uintptr_t)pcs[first])) first++;
  int n = got - first;
  if (got == cap || n > max) *flags |= KILN_STACK_TRUNCATED;
  if (n > max) n = max;
  memmove(pcs, pcs + first, (size_t)(n > 0 ? n : 0) * 8);
  return n;
}

/* The frame of the outermost hook function (malloc, free, ...): its record
 * holds the program's return address. NULL if the chain looks wrong. */
KILN_HOOK_TEXT static const uintptr_t *kiln_hs_hook_frame(void) {
  const uintptr_t *f = __builtin_frame_address(0);
  for (int i = 0; i < 16; i++) {
    if (!kiln_hs_in_hooks(f[1])) return f;
    const uintptr_t *next = (const uintptr_t *)f[0];
    if (next <= f || (uintptr_t)next - (uintptr_t)f > (1u << 20)) return NULL;
    f = next;
  }
  return NULL;
}

/* Every word a walk read (address, value), in order: the walk is a pure
 * function of where it starts (ip, rsp, rbp) and of these words, so the
 * same start and the same words mean the same stack. */
static inline bool kiln_hs_log(kiln_hs_thread_t *t, uintptr_t at, uintptr_t v) {
  if (t->nlog < KILN_HS_TRACE_LOG) {
    t->log[t->nlog].addr = at;
    t->log[t->nlog].value = v;
  }
  t->nlog++;
  return true;
}

/* Whether every word of the log still holds what the walk read there.
 * In order, stopping at the first difference: a later address is only
 * known to be one the walk would read while the words before it are the
 * same. Two words a round (the check runs on every cached allocation). */
static inline bool kiln_hs_same_reads(const kiln_hs_read_t *r, unsigned n) {
  const kiln_hs_read_t *end = r + n;
  for (; end - r >= 2; r += 2) {
    if (*(const uintptr_t *)r[0].addr != r[0].value) return false;
    if (*(const uintptr_t *)r[1].addr != r[1].value) return false;
  }
  return r == end || *(const uintptr_t *)r->addr == r->value;
}

/* For frames [0, n) of a kept walk, whether the rest of the walk from each
 * used the rbp it had there: a frame whose CFA is rbp-based, or one that
 * leaves rbp to a caller that needs it (above: whether frame n needs it). */
static void kiln_hs_needs_rbp(kiln_hs_trace_t *tr, int n, bool above) {
  bool needs = above;
  for (int k = n - 1; k >= 0; k--) {
    kiln_hs_frame_t *fr = &tr->fr[k];
    needs = fr->kind == KILN_HS_RBP || (fr->kind != KILN_HS_END && !fr->saves && needs);
    fr->needs_rbp = needs;
  }
}

/* The last walk's frames from prev->fr[j] on, for the walk now at frame n
 * in the same state: its pcs, frames and reads appended. */
static int kiln_hs_take_rest(kiln_hs_thread_t *t, const kiln_hs_trace_t *prev, int j, uint64_t *pcs, int n, int max,
                             unsigned *flags) {
  kiln_hs_trace_t *cur = &t->tr[t->cur];
  int m = prev->n - j;
  if (n + m > max) {
    m = max - n;
    *flags |= KILN_STACK_TRUNCATED;
  }
  unsigned from = prev->fr[j].log;
  for (int k = 0; k < m; k++) {
    pcs[n + k] = prev->fr[j + k].ip;
    if (n + k < KILN_HS_TRACE) {
      cur->fr[n + k] = prev->fr[j + k];
      cur->fr[n + k].log = prev->fr[j + k].log - from + t->nlog;
    }
  }
  for (unsigned k = from; k < prev->nlog; k++) kiln_hs_log(t, prev->log[k].addr, prev->log[k].value);
  t->reused++;
  return n + m;
}

/* The rule walk from the program's first frame. -1: libunwind must
 * answer (a rule it cannot give, a walk that leaves the stack).
 * Successive allocations of a thread share most of their outer frames: at
 * each frame, if the last walk passed the same frame in the same state
 * (ip, rsp, and rbp if the rest of it used rbp) and every word it read
 * from there on still holds what it read, the rest of the walk is the
 * same (a walk is a function of its state and of the words it reads), and
 * is taken from it. Nothing of the program is changed. */
KILN_HOOK_TEXT static int kiln_hs_walk(kiln_hs_thread_t *t, const uintptr_t *f, uint64_t *pcs, int max,
                                       unsigned *flags) {
  uintptr_t ip = f[1], rsp = (uintptr_t)(f + 2), rbp = f[0];
  /* Reads stay in [rsp, hi) on the thread's own stack; elsewhere (a
   * coroutine's, the signal stack) they follow the chain libunwind would. */
  uintptr_t hi = t->stack_hi;
  if (!(rsp < hi && hi - rsp < (1ull << 32))) hi = UINTPTR_MAX;
  kiln_hs_trace_t *cur = &t->tr[t->cur];
  const kiln_hs_trace_t *prev = &t->tr[t->cur ^ 1];
  uint64_t gen = atomic_load_explicit(&kiln_hs_rules_gen, memory_order_acquire);
  cur->gen = gen;
  int n = 0, j = prev->gen == gen ? 0 : INT32_MAX;
  bool learned = false, bp_loaded = false;
  uintptr_t bp_at = 0; /* where rbp was last loaded from */
  for (;;) {
    if (j < prev->n) {
      while (j < prev->n && prev->fr[j].rsp < rsp) j++;
      const kiln_hs_frame_t *p = &prev->fr[j];
      if (j < prev->n && p->rsp == rsp && p->ip == ip && (!p->needs_rbp || p->rbp == rbp) &&
          kiln_hs_same_reads(prev->log + p->log, prev->nlog - p->log)) {
        if (p->needs_rbp) { /* as the walk would have logged it */
          if (!bp_loaded) t->uses_bp = true;
          else if (bp_at != 0) kiln_hs_log(t, bp_at, rbp);
        }
        int own = n; /* frames this walk made itself */
        n = kiln_hs_take_rest(t, prev, j, pcs, n, max, flags);
        bool keep = !(*flags & KILN_STACK_TRUNCATED) && n <= KILN_HS_TRACE && t->nlog <= KILN_HS_TRACE_LOG;
        if (keep) kiln_hs_needs_rbp(cur, own, p->needs_rbp);
        cur->n = keep ? n : 0;
        cur->nlog = t->nlog;
        return n;
      }
    }
    uint64_t rule = kiln_hs_rule_get(ip);
    if (rule == 0) {
      if (learned) return -1;
      kiln_hs_learn(t);
      learned = true;
      continue;
    }
    unsigned kind = rule & 7;
    if (kind == KILN_HS_BAD) return -1;
    if (n == max) {
      *flags |= KILN_STACK_TRUNCATED;
      return n;
    }
    if (n < KILN_HS_TRACE) {
      kiln_hs_frame_t *fr = &cur->fr[n];
      fr->ip = ip;
      fr->rsp = rsp;
      fr->rbp = rbp;
      fr->log = t->nlog;
      fr->kind = (uint8_t)kind;
      fr->saves = (rule & 8) != 0;
    }
    pcs[n++] = ip;
    if (kind == KILN_HS_END) break;
    int32_t off = (int32_t)(uint32_t)(rule >> 16);
    /* rbp only matters to the result where a frame's CFA is computed from
     * it: only then is the word it came from part of the walk's input. */
    if (kind == KILN_HS_RBP) {
      if ((rule & KILN_HS_GUESS) && hi == UINTPTR_MAX) return -1;
      if (!bp_loaded)
        t->uses_bp = true; /* the program's rbp at the call */
      else if (bp_at != 0)
        kiln_hs_log(t, bp_at, rbp);
      bp_at = 0;
    }
    uintptr_t cfa = (kind == KILN_HS_RSP ? rsp : rbp) + (uintptr_t)(intptr_t)off;
    if (cfa <= rsp || cfa - rsp >= (1u << 30) || cfa > hi - 8 || (cfa & 7)) return -1;
    uintptr_t ret = ((const uintptr_t *)cfa)[-1];
    kiln_hs_log(t, cfa - 8, ret);
    if (rule & 8) {
      uintptr_t at = cfa + (uintptr_t)(intptr_t)(int16_t)(rule >> 48);
      if (at < rsp || at > hi - 8 || (at & 7)) return -1;
      rbp = *(const uintptr_t *)at;
      bp_loaded = true;
      bp_at = at;
    }
    rsp = cfa;
    ip = ret;
    if (ip == 0) break;
    learned = false;
  }
  /* Ended by itself: kept for the next walk, with what each frame's rest
   * needed of rbp. */
  if (n <= KILN_HS_TRACE && t->nlog <= KILN_HS_TRACE_LOG) {
    kiln_hs_needs_rbp(cur, n, false);
    cur->n = n;
    cur->nlog = t->nlog;
  }
  return n;
}

/* Frame pointers: the runtime is built with them, so the chain runs
 * through the hooks into the program. */
KILN_HOOK_TEXT static int kiln_hs_fp(kiln_hs_thread_t *t, const uintptr_t *f, uint64_t *pcs, int max,
                                     unsigned *flags) {
  uintptr_t fp = (uintptr_t)f, lo = fp, hi = t->stack_hi;
  bool bounded = fp < hi && hi - fp < (1ull << 32);
  if (!bounded) t->nlog = KILN_HS_LOG + 1; /* read through the kernel: not cached */
  t->uses_bp = true;
  int n = 0;
  uintptr_t frame[2];
  for (;;) {
    if (fp & 7) break;
    if (bounded) {
      if (fp < lo || fp > hi - 16) break;
      frame[0] = ((const uintptr_t *)fp)[0];
      frame[1] = ((const uintptr_t *)fp)[1];
      if (fp != (uintptr_t)f) {
        kiln_hs_log(t, fp, frame[0]);
        kiln_hs_log(t, fp + 8, frame[1]);
      }
    } else {
      /* Not the thread's own stack: let the kernel check each read. */
      struct iovec local = {frame, 16}, remote = {(void *)fp, 16};
      if (syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) != 16) break;
    }
    if (frame[1] < 4096) break;
    if (n == max) {
      *flags |= KILN_STACK_TRUNCATED;
      break;
    }
    pcs[n++] = frame[1];
    if (frame[0] <= fp) break; /* the chain must go up the stack */
    fp = frame[0];
  }
  return n;
}

/* Four lanes, each a multiply that waits only for its own lane's last one,
 * then one avalanche: a single chain (multiply, shift, xor a frame) made
 * every frame wait for the one before, half of kiln_hookstack_id's own
 * samples in an allocation-heavy bash script (stacks of 20-30 frames).
 * Only the thread's id cache uses it; a hit is checked frame by frame. */
static inline uint64_t kiln_hs_hash(const uint64_t *pcs, int n, unsigned flags) {
  const uint64_t k = 0xff51afd7ed558ccdull;
  uint64_t a = 0x9e3779b97f4a7c15ull ^ ((uint64_t)n << 8) ^ flags, b = 0xc2b2ae3d27d4eb4full,
           c = 0x165667b19e3779f9ull, d = 0x27d4eb2f165667c5ull;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    a = (a ^ pcs[i]) * k;
    b = (b ^ pcs[i + 1]) * k;
    c = (c ^ pcs[i + 2]) * k;
    d = (d ^ pcs[i + 3]) * k;
  }
  for (; i < n; i++) a = (a ^ pcs[i]) * k;
  uint64_t h = a ^ (b >> 17 | b << 47) ^ (c >> 31 | c << 33) ^ (d >> 43 | d << 21);
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 29;
  return h | 1; /* 0 marks an empty cache entry */
}

/* verify mode: libunwind's stack against the one about to be used. */
KILN_HOOK_TEXT static void kiln_hs_check(kiln_hs_thread_t *t, const uint64_t *pcs, int n, unsigned flags,
                                        int max) {
  unsigned vflags = 0;
  int m = kiln_hs_backtrace(t->check, max, &vflags);
  atomic_fetch_add_explicit(&kiln_hs_verified, 1, memory_order_relaxed);
  if (m != n || memcmp(t->check, pcs, (size_t)n * 8) != 0 ||
      (n < max && (vflags & KILN_STACK_TRUNCATED) != (flags & KILN_STACK_TRUNCATED)))
    atomic_fetch_add_explicit(&kiln_hs_mismatches, 1, memory_order_relaxed);
}

/* The stack's id from its pcs: the thread's cache, else the table. */
static uint32_t kiln_hs_intern(kiln_hs_thread_t *t, int n, unsigned flags) {
  uint64_t h = kiln_hs_hash(t->pcs, n, flags);
  size_t slot = (size_t)(h >> 20) & (KILN_HS_IDS - 1);
  if (t->ids[slot].hash == h) {
    kiln_stack_t *s = kiln_stacktab_get(t->ids[slot].id);
    if (s->depth == (uint32_t)n && s->flags == flags && memcmp(s->pcs, t->pcs, (size_t)n * 8) == 0)
      return t->ids[slot].id;
  }
  uint32_t id = kiln_stacktab_intern(t->pcs, (unsigned)n, flags);
  if (!(kiln_stacktab_get(id)->flags & KILN_STACK_FULL)) {
    t->ids[slot].hash = h;
    t->ids[slot].id = id;
  }
  return id;
}

KILN_HOOK_TEXT uint32_t kiln_hookstack_id(kiln_unwind_kind_t kind, int max) {
  kiln_hs_thread_t *t = kiln_tls_hs;
  if (KILN_UNLIKELY(t == NULL) && (t = kiln_hs_thread_new()) == NULL) {
    static const uint64_t none = 0;
    return kiln_stacktab_intern(&none, 0, KILN_STACK_SKIPPED);
  }
  uint64_t gen = kiln_stacktab_generation();
  if (KILN_UNLIKELY(t->gen != gen)) { /* the table was reset: ids are stale */
    memset(t->ids, 0, sizeof t->ids);
    memset(t->walks, 0, sizeof t->walks);
    t->gen = gen;
  }
  bool rules = kind == KILN_UNWIND_LIBUNWIND && kiln_hs_unw.ok;
  /* The hook's own frame when it left it (and its caller is not another
   * hook: then the outermost one is searched for, as without it). */
  const uintptr_t *f = kiln_tls_hook_frame;
  kiln_tls_hook_frame = NULL;
  if (f == NULL || kiln_hs_in_hooks(f[1])) f = kiln_hs_hook_frame();
  kiln_hs_walk_t *w = NULL;
  size_t set = 0;
  if (f != NULL) {
    /* A walk from the same start that would read the same words: its
     * stack, without walking. Reads in order, so that each address read
     * is one the walk itself would read. */
    uint64_t key = (f[1] ^ ((uintptr_t)f * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    set = (size_t)(key >> 40) & (KILN_HS_WALKS / 2 - 1);
    /* Two ways a set: a thread's few hot call sites (their start frames
     * hashed) collide in a direct-mapped table often enough to matter
     * (churn: one thread of two missed a third of its walks). */
    for (int way = 0; way < 2; way++) {
      kiln_hs_walk_t *c = &t->walks[2 * set + (size_t)way];
      if (c->ip == f[1] && c->sp == (uintptr_t)f && (!c->uses_bp || c->bp == f[0]) && c->max == max) {
        if (kiln_hs_same_reads(c->log, c->nlog)) {
          t->hits++;
          t->walk_mru[set] = (uint8_t)way;
          if (kiln_hs_verify) {
            kiln_stack_t *s = kiln_stacktab_get(c->id);
            kiln_hs_check(t, s->pcs, (int)s->depth, s->flags & KILN_STACK_TRUNCATED, max);
          }
          return c->id;
        }
        w = c; /* the same start, other reads: replaced */
      }
    }
    if (w == NULL) { /* an empty way, else the one used less lately */
      size_t way = t->walks[2 * set].ip == 0 ? 0 : t->walks[2 * set + 1].ip == 0 ? 1 : 1u - t->walk_mru[set];
      w = &t->walks[2 * set + way];
    }
  }
  unsigned flags = 0;
  int n;
  t->nlog = 0;
  t->uses_bp = false;
  t->tr[t->cur].n = 0; /* kept only if this walk ends by itself */
  if (rules) {
    n = f != NULL && kiln_hs_rules != NULL ? kiln_hs_walk(t, f, t->pcs, max, &flags) : -1;
    if (n < 0) {
      flags = 0;
      n = kiln_hs_backtrace(t->pcs, max, &flags);
      atomic_fetch_add_explicit(&kiln_hs_fallbacks, 1, memory_order_relaxed);
      t->nlog = KILN_HS_LOG + 1; /* libunwind's reads are not known */
    } else if (kiln_hs_verify) {
      kiln_hs_check(t, t->pcs, n, flags, max);
    }
  } else {
    n = f != NULL ? kiln_hs_fp(t, f, t->pcs, max, &flags) : 0;
  }
  uint32_t id = kiln_hs_intern(t, n, flags);
  if (w != NULL && t->nlog <= KILN_HS_LOG && !(kiln_stacktab_get(id)->flags & KILN_STACK_FULL)) {
    w->ip = f[1];
    w->sp = (uintptr_t)f;
    w->bp = f[0];
    w->max = max;
    w->uses_bp = t->uses_bp;
    w->id = id;
    w->nlog = t->nlog;
    memcpy(w->log, t->log, t->nlog * sizeof *t->log);
    t->walk_mru[set] = (uint8_t)(w - &t->walks[2 * set]);
  }
  if (t->tr[t->cur].n > 0) { /* this walk is the next one's last */
    t->cur ^= 1;
    t->log = t->tr[t->cur].log;
  }
  return id;
}
