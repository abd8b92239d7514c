/* kiln_threads.c — the registry of sampled threads: a fixed array of slots,
 * each with its ring, its timer and its counters. A slot is claimed with a
 * CAS (FREE -> CLAIMED), set up, then published ACTIVE; a thread that ends
 * or stops being sampled is marked EXITED, and only the collector, after
 * draining the ring, releases it (FREE). Rings stay mapped for reuse.
 * Lookups run in the signal handler; the rest in normal context. */
#include "kiln_internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread kiln_thread_t *kiln_tls_thread __attribute__((tls_model("initial-exec"))) = NULL;
/* The tid the TLS slot was registered for: a stale slot (reused by another
 * thread after a stop) is recognised by its tid. */
static __thread pid_t kiln_tls_tid __attribute__((tls_model("initial-exec"))) = 0;

static kiln_chunks_t kiln_threads_slots; /* KILN_THREADS_MAX, mapped as threads come */
static bool kiln_threads_ready;
static _Atomic int kiln_threads_high_water;
/* Counters of released slots: added by the collector, read by any dump
 * (kiln_dump from a program thread): atomics. */
static struct {
  _Atomic uint64_t samples, dropped, truncated, skipped, threads;
} kiln_threads_retired;
static _Atomic uint64_t kiln_threads_unregistered; /* registry full */

/* The ring, then the handler's record: registers, length, stack copy.
 * Mapped only for the signal timers, whose handler writes it: with perf
 * the kernel's rings take the samples, and a thread costs no 272 KiB. */
enum { KILN_SLOT_MEM = KILN_RING_WORDS * 8 + (KILN_REGS + 1 + KILN_STACK_COPY / 8 + 8) * 8 };
static bool kiln_threads_rings;

void kiln_threads_want_rings(bool on) { kiln_threads_rings = on; }

int kiln_threads_init(void) {
  if (kiln_threads_ready) return 0;
  kiln_chunks_init(&kiln_threads_slots, sizeof(kiln_thread_t), KILN_THREADS_MAX);
  if (kiln_chunks_get(&kiln_threads_slots, 0) == NULL) return -ENOMEM;
  kiln_threads_ready = true;
  return 0;
}

/* The calling thread's stack, asked once a thread: for the main thread
 * pthread_getattr_np parses /proc/self/maps, and a fork child (the same
 * thread, the same stack) would pay it again. */
static __thread uintptr_t kiln_tls_stack_lo __attribute__((tls_model("initial-exec")));
static __thread uintptr_t kiln_tls_stack_hi __attribute__((tls_model("initial-exec")));

static void kiln_threads_stack_bounds(kiln_thread_t *t) {
  if (kiln_tls_stack_hi != 0) {
    t->stack_lo = kiln_tls_stack_lo;
    t->stack_hi = kiln_tls_stack_hi;
    return;
  }
  pthread_attr_t attr;
  void *addr = NULL;
  size_t size = 0;
  t->stack_lo = t->stack_hi = 0;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
    t->stack_lo = kiln_tls_stack_lo = (uintptr_t)addr;
    t->stack_hi = kiln_tls_stack_hi = (uintptr_t)addr + size;
  }
  pthread_attr_destroy(&attr);
}

kiln_thread_t *kiln_threads_register(pid_t tid, bool self) {
  if (!kiln_threads_ready) return NULL;
  for (int i = 0; i < KILN_THREADS_MAX; i++) {
    kiln_thread_t *t = kiln_chunks_get(&kiln_threads_slots, (size_t)i);
    if (t == NULL) break; /* no memory for more slots: counted below */
    int expect = KILN_SLOT_FREE;
    if (atomic_load_explicit(&t->state, memory_order_relaxed) != KILN_SLOT_FREE ||
        !atomic_compare_exchange_strong_explicit(&t->state, &expect, KILN_SLOT_CLAIMED,
                                                 memory_order_acquire, memory_order_relaxed))
      continue;
    if (t->ring.words == NULL && kiln_threads_rings) {
      char *mem = kiln_mem_map(KILN_SLOT_MEM);
      if (mem == NULL) {
        atomic_store_explicit(&t->state, KILN_SLOT_FREE, memory_order_release);
        return NULL;
      }
      t->ring.words = (uint64_t *)mem;
      t->scratch = (uint64_t *)(mem + KILN_RING_WORDS * 8);
    }
    kiln_ring_init(&t->ring, t->ring.words, t->ring.words != NULL ? KILN_RING_WORDS : 1);
    t->tid = tid;
    atomic_store(&t->has_timer, false);
    t->own = self;
    t->stack_lo = t->stack_hi = 0;
    if (self) kiln_threads_stack_bounds(t);
    atomic_store_explicit(&t->samples, 0, memory_order_relaxed);
    atomic_store_explicit(&t->dropped, 0, memory_order_relaxed);
    atomic_store_explicit(&t->truncated, 0, memory_order_relaxed);
    atomic_store_explicit(&t->skipped, 0, memory_order_relaxed);
    int high = atomic_load_explicit(&kiln_threads_high_water, memory_order_relaxed);
    while (high < i + 1 &&
           !atomic_compare_exchange_weak_explicit(&kiln_threads_high_water, &high, i + 1,
                                                  memory_order_release, memory_order_relaxed)) {
    }
    atomic_store_explicit(&t->state, KILN_SLOT_ACTIVE, memory_order_release);
    if (self) {
      kiln_tls_tid = tid;
      kiln_tls_thread = t;
    }
    return t;
  }
  atomic_fetch_add_explicit(&kiln_threads_unregistered, 1, memory_order_relaxed);
  return NULL;
}

void kiln_threads_retire(kiln_thread_t *t) {
  if (t->own && kiln_tls_thread == t) kiln_tls_thread = NULL;
  atomic_store_explicit(&t->state, KILN_SLOT_EXITED, memory_order_release);
}

void kiln_threads_release(kiln_thread_t *t) {
  atomic_fetch_add_explicit(&kiln_threads_retired.samples, atomic_load_explicit(&t->samples, memory_order_relaxed),
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&kiln_threads_retired.dropped, atomic_load_explicit(&t->dropped, memory_order_relaxed),
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&kiln_threads_retired.truncated,
                            atomic_load_explicit(&t->truncated, memory_order_relaxed), memory_order_relaxed);
  atomic_fetch_add_explicit(&kiln_threads_retired.skipped, atomic_load_explicit(&t->skipped, memory_order_relaxed),
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&kiln_threads_retired.threads, 1, memory_order_relaxed);
  atomic_store_explicit(&t->state, KILN_SLOT_FREE, memory_order_release);
}

KILN_SIGNAL_SAFE int kiln_threads_high(void) {
  return atomic_load_explicit(&kiln_threads_high_water, memory_order_acquire);
}

/* Below kiln_threads_high(), every slot's chunk is mapped. */
KILN_SIGNAL_SAFE kiln_thread_t *kiln_threads_slot(int i) { return kiln_chunks_at(&kiln_threads_slots, (size_t)i); }

KILN_SIGNAL_SAFE kiln_thread_t *kiln_threads_self(void) {
  kiln_thread_t *t = kiln_tls_thread;
  if (KILN_LIKELY(t != NULL) &&
      atomic_load_explicit(&t->state, memory_order_acquire) == KILN_SLOT_ACTIVE &&
      t->tid == kiln_tls_tid)
    return t;
  /* A thread registered from outside (it existed before start): by tid. */
  pid_t tid = (pid_t)syscall(SYS_gettid);
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    t = kiln_threads_slot(i);
    if (atomic_load_explicit(&t->state, memory_order_acquire) == KILN_SLOT_ACTIVE && t->tid == tid)
      return t;
  }
  return NULL;
}

void kiln_threads_totals(kiln_thread_totals_t *out) {
  memset(out, 0, sizeof *out);
  out->samples = atomic_load_explicit(&kiln_threads_retired.samples, memory_order_relaxed);
  out->dropped = atomic_load_explicit(&kiln_threads_retired.dropped, memory_order_relaxed);
  out->truncated = atomic_load_explicit(&kiln_threads_retired.truncated, memory_order_relaxed);
  out->skipped = atomic_load_explicit(&kiln_threads_retired.skipped, memory_order_relaxed);
  out->threads = atomic_load_explicit(&kiln_threads_retired.threads, memory_order_relaxed);
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    int st = atomic_load_explicit(&t->state, memory_order_acquire);
    if (st != KILN_SLOT_ACTIVE && st != KILN_SLOT_EXITED) continue;
    out->samples += atomic_load_explicit(&t->samples, memory_order_relaxed);
    out->dropped += atomic_load_explicit(&t->dropped, memory_order_relaxed);
    out->truncated += atomic_load_explicit(&t->truncated, memory_order_relaxed);
    out->skipped += atomic_load_explicit(&t->skipped, memory_order_relaxed);
    out->threads++;
  }
  out->unregistered = atomic_load_explicit(&kiln_threads_unregistered, memory_order_relaxed);
}

void kiln_threads_after_fork_child(void) {
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    atomic_store_explicit(&t->state, KILN_SLOT_FREE, memory_order_relaxed);
  }
  atomic_store_explicit(&kiln_threads_retired.samples, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_threads_retired.dropped, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_threads_retired.truncated, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_threads_retired.skipped, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_threads_retired.threads, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_threads_unregistered, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_threads_high_water, 0, memory_order_relaxed);
  kiln_tls_thread = NULL;
  kiln_tls_tid = 0;
}
