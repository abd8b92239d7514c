/* kiln_ring.c — the per-thread sample queue: one producer (the thread's own
 * SIGPROF handler), one consumer (the collector, or a dump). Words are
 * published with a release store of head and retired with a release store
 * of tail; a record that does not fit is dropped by the caller, never
 * waited for. Push runs in the handler; pop in normal context. */
#include "kiln_internal.h"

void kiln_ring_init(kiln_ring_t *r, uint64_t *words, size_t nwords) {
  r->words = words;
  r->mask = nwords - 1;
  atomic_store_explicit(&r->head, 0, memory_order_relaxed);
  atomic_store_explicit(&r->tail, 0, memory_order_relaxed);
}

KILN_SIGNAL_SAFE bool kiln_ring_push(kiln_ring_t *r, uint64_t header, const uint64_t *pcs,
                                     unsigned npcs) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  uint64_t size = r->mask + 1;
  if (size - (head - tail) < (uint64_t)npcs + 1) return false;
  r->words[head & r->mask] = header;
  for (unsigned i = 0; i < npcs; i++) r->words[(head + 1 + i) & r->mask] = pcs[i];
  atomic_store_explicit(&r->head, head + 1 + npcs, memory_order_release);
  return true;
}

int kiln_ring_pop(kiln_ring_t *r, uint64_t *header, uint64_t *pcs, unsigned max) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  if (tail == head) return -1;
  uint64_t h = r->words[tail & r->mask];
  unsigned n = (unsigned)(h & 0xffff);
  unsigned keep = n < max ? n : max;
  for (unsigned i = 0; i < keep; i++) pcs[i] = r->words[(tail + 1 + i) & r->mask];
  *header = h;
  atomic_store_explicit(&r->tail, tail + 1 + n, memory_order_release);
  return (int)keep;
}
