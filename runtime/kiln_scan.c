/* kiln_scan.c — leak classification at exit, as valgrind memcheck does it:
 * every block still live is definitely lost, indirectly lost, possibly lost
 * or still reachable, by a conservative scan (any aligned word pointing at or
 * into a live block) from the roots through the heap. Other threads are
 * stopped while memory is read (kiln_stopworld.c). Normal context, in the
 * exiting thread, hook guard held; memory from mmap, an explicit mark
 * stack, no recursion, no malloc while the world is stopped. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Block states, valgrind's: a block starts unreached; roots and reachable
 * blocks make what they point to reachable (start pointer) or possibly
 * reached (interior pointer, or any pointer from a possibly reached block);
 * what only unreached blocks reach is indirectly lost; the rest is
 * definitely lost. */
enum { KILN_SCAN_UNREACHED = 0, KILN_SCAN_POSSIBLE, KILN_SCAN_REACHABLE, KILN_SCAN_INDIRECT };

/* One live block in the snapshot, sorted by address. */
typedef struct kiln_scan_block {
  uint64_t addr, size;
  uint32_t stack_id, pad;
} kiln_scan_block_t;

/* A readable mapping of /proc/self/maps. */
enum {
  KILN_SCAN_MAP_WRITABLE = 1, /* rw-p: private and writable, a candidate root */
  KILN_SCAN_MAP_NAMED = 2,    /* [stack], [heap], [vvar]...: never a root as a whole */
  KILN_SCAN_MAP_ANON = 4,     /* private, no file: a page never touched is zeros */
  KILN_SCAN_MAP_PRIVATE = 8,  /* private (a module's RELRO part is r--p) */
};
typedef struct kiln_scan_map {
  uintptr_t lo, hi;
  unsigned flags;
} kiln_scan_map_t;

/* A writable PT_LOAD segment, a root. */
typedef struct kiln_scan_range {
  uintptr_t lo, hi;
} kiln_scan_range_t;

enum {
  KILN_SCAN_RANGES = 4096,         /* writable segments of loaded modules */
  KILN_SCAN_REDZONE = 128,         /* x86-64 leaf functions use 128 bytes below sp */
  KILN_SCAN_TCB_DEFAULT = 2304,    /* sizeof(struct pthread), glibc 2.3x x86-64 */
};
static kiln_scan_totals_t kiln_scan_last;

/* Everything one scan works on. */
typedef struct kiln_scan {
  kiln_scan_block_t *blocks, *sort_tmp;
  uint32_t *sort_counts;
  uint64_t *addrs; /* blocks[i].addr, for the binary search */
  uint8_t *state;
  uint32_t *stack; /* the mark stack */
  size_t n, cap, nstack, stack_cap;
  uint64_t lo, hi; /* lowest start, highest end of all blocks */
  kiln_scan_map_t *maps;
  size_t nmaps, maps_cap;
  bool check_blocks; /* some thread runs on: read a block only if still mapped */
  kiln_scan_range_t *ranges;
  size_t nranges;
  kiln_scan_range_t *spans; /* every module's span in memory: never an anonymous root */
  size_t nspans;
  kiln_scan_range_t *skip;  /* what the mapping pass leaves out, sorted (kiln_scan_mappings) */
  size_t nskip, skip_cap;
  size_t mem_bytes;
  char *mem;
  kiln_buf_t maps_text;
  uintptr_t tls_below;  /* static TLS below the thread pointer */
  uintptr_t tcb_size;   /* struct pthread above it */
  uintptr_t tls_align;  /* the static TLS alignment: the TCB's on a stack */
  uintptr_t tid_offset; /* of the tid in struct pthread (libthread_db), 0 if unknown */
  uintptr_t self_mod_lo, self_mod_hi; /* kiln's own module (preloaded), skipped */
  uintptr_t alloc_mod_lo, alloc_mod_hi; /* the allocator's library (not glibc), skipped */
  uintptr_t alloc_tls_below, alloc_tls_size; /* its static TLS, below each thread pointer */
  uintptr_t self_tls_below, self_tls_size;   /* kiln's own (the last block each thread allocated) */
  bool glibc_malloc;    /* chunk headers tell allocator-internal pointers */
  uintptr_t hidden_lo[64], hidden_hi[64]; /* root words read as 0 (kiln_freeres_hidden_words) */
  size_t nhidden;
  int pagemap; /* /proc/self/pagemap, or -1 */
  uintptr_t pm_base; /* pagemap entries of [pm_base, pm_base + pm_n pages) */
  size_t pm_n;
  uint64_t pm_ent[512];
} kiln_scan_t;

kiln_count_kind_t kiln_scan_kind_bytes(kiln_leak_kind_t k) {
  return (kiln_count_kind_t)(KILN_COUNT_DEFINITE_BYTES + 2 * (int)k);
}
kiln_count_kind_t kiln_scan_kind_count(kiln_leak_kind_t k) {
  return (kiln_count_kind_t)(KILN_COUNT_DEFINITE_COUNT + 2 * (int)k);
}

void kiln_scan_totals(kiln_scan_totals_t *out) { *out = kiln_scan_last; }

static int64_t kiln_scan_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static inline uintptr_t kiln_scan_thread_pointer(void) { return kiln_stopworld_thread_pointer(); }

/* ------------------------------------------------------------- the roots */

typedef struct kiln_scan_phdr_ctx {
  kiln_scan_t *sc;
  uintptr_t self_addr, tp;
  uintptr_t alloc_addr; /* the real malloc: in glibc, or in another allocator's library */
  uintptr_t static_tls; /* the static TLS area's size, 0 if unknown */
} kiln_scan_phdr_ctx_t;

static bool kiln_scan_is_libc(const char *path) {
  const char *base = path != NULL ? strrchr(path, '/') : NULL;
  base = base != NULL ? base + 1 : path;
  return base != NULL && strncmp(base, "libc.so", 7) == 0;
}

static int kiln_scan_phdr(struct dl_phdr_info *info, size_t size, void *vctx) {
  (void)size;
  kiln_scan_phdr_ctx_t *c = vctx;
  kiln_scan_t *sc = c->sc;
  uintptr_t mod_lo = UINTPTR_MAX, mod_hi = 0, tls_below = 0, tls_size = 0;
  size_t first = sc->nranges;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_TLS && info->dlpi_tls_data != NULL && (uintptr_t)info->dlpi_tls_data < c->tp &&
        c->tp - (uintptr_t)info->dlpi_tls_data <= (c->static_tls ? c->static_tls : (64u << 20))) {
      /* A static TLS block: the same distance below every thread's TCB.
       * (A dlopen'd module's block is dynamic: somewhere in the heap, and
       * reached through the DTV, not a fixed distance below.) */
      uintptr_t below = c->tp - (uintptr_t)info->dlpi_tls_data;
      if (below > sc->tls_below) sc->tls_below = below;
      {
        tls_below = below;
        tls_size = ph->p_memsz;
      }
    }
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
    if (lo < mod_lo) mod_lo = lo;
    if (hi > mod_hi) mod_hi = hi;
    if (!(ph->p_flags & PF_W) || sc->nranges == KILN_SCAN_RANGES) continue;
    /* The page's tail is mapped too: the loader's early allocations live
     * after ld.so's bss. */
    hi = (hi + 4095) & ~(uintptr_t)4095;
    sc->ranges[sc->nranges].lo = lo;
    sc->ranges[sc->nranges].hi = hi;
    sc->nranges++;
  }
  if (mod_lo < mod_hi && sc->nspans < KILN_SCAN_RANGES) {
    sc->spans[sc->nspans].lo = mod_lo & ~(uintptr_t)4095;
    sc->spans[sc->nspans].hi = (mod_hi + 4095) & ~(uintptr_t)4095;
    sc->nspans++;
  }
  /* kiln's own data (the preloaded library): never a root. Linked into the
   * program, it shares the program's segments, which must be scanned. */
  if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0' && c->self_addr >= mod_lo &&
      c->self_addr < mod_hi) {
    sc->nranges = first;
    sc->self_mod_lo = mod_lo;
    sc->self_mod_hi = mod_hi;
    sc->self_tls_below = tls_below;
    sc->self_tls_size = tls_size;
  } else if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0' && c->alloc_addr >= mod_lo &&
             c->alloc_addr < mod_hi && !kiln_scan_is_libc(info->dlpi_name)) {
    /* A malloc of its own (jemalloc, tcmalloc): its data and its TLS are
     * its bookkeeping (caches of freed and reused blocks, extent records
     * that point at large blocks), never the program's roots; valgrind,
     * which replaces the allocator, never sees them either. glibc's state
     * is told apart word by word (kiln_scan_chunk_header). */
    sc->nranges = first;
    sc->alloc_mod_lo = mod_lo;
    sc->alloc_mod_hi = mod_hi;
    sc->alloc_tls_below = tls_below;
    sc->alloc_tls_size = tls_size;
  }
  return 0;
}

/* Reads /proc/self/maps (raw reads: no stdio) into the readable mappings. */
static void kiln_scan_read_maps(kiln_scan_t *sc) {
  sc->maps_text.len = 0;
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  /* 16 KiB at a time: most processes' maps fit in one of kiln's spare
   * buffers (a mapping, a move and an unmapping saved in a fork child). */
  enum { KILN_SCAN_MAPS_READ = 16384 };
  for (;;) {
    char *p = kiln_buf_reserve(&sc->maps_text, KILN_SCAN_MAPS_READ);
    if (p == NULL) break;
    ssize_t got = read(fd, p, KILN_SCAN_MAPS_READ);
    if (got <= 0) {
      sc->maps_text.len -= KILN_SCAN_MAPS_READ;
      break;
    }
    sc->maps_text.len -= KILN_SCAN_MAPS_READ - (size_t)got;
  }
  close(fd);
  size_t lines = 0;
  for (size_t i = 0; i < sc->maps_text.len; i++) lines += sc->maps_text.data[i] == '\n';
  sc->maps_cap = lines + 1;
  sc->maps = kiln_mem_map(sc->maps_cap * sizeof *sc->maps);
  if (sc->maps == NULL) return;
  const char *s = sc->maps_text.data, *end = s + sc->maps_text.len;
  while (s < end) {
    uintptr_t lo = 0, hi = 0;
    for (; s < end && *s != '-'; s++) lo = lo * 16 + (uintptr_t)(*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
    for (s++; s < end && *s != ' '; s++) hi = hi * 16 + (uintptr_t)(*s <= '9' ? *s - '0' : (*s | 32) - 'a' + 10);
    bool readable = s + 1 < end && s[1] == 'r';
    bool private_map = s + 4 < end && s[4] == 'p';
    bool writable_private = private_map && s[2] == 'w';
    /* Device mappings are never read (valgrind skips them too). */
    bool device = false;
    const char *eol = memchr(s, '\n', (size_t)(end - s));
    if (eol == NULL) eol = end;
    if (eol - s > 6 && memmem(s, (size_t)(eol - s), " /dev/", 6) != NULL) device = true;
    /* " rw-p OFFSET DEV INODE [PATH]": anonymous when the inode is 0. */
    const char *f = s;
    for (int field = 0; field < 3 && f < eol; field++) { /* perms, offset, dev */
      while (f < eol && *f == ' ') f++;
      while (f < eol && *f != ' ') f++;
    }
    while (f < eol && *f == ' ') f++;
    bool anon = writable_private && f < eol && f[0] == '0' && (f + 1 == eol || f[1] == ' ');
    if (readable && !device && hi > lo) {
      sc->maps[sc->nmaps].lo = lo;
      sc->maps[sc->nmaps].hi = hi;
      sc->maps[sc->nmaps].flags = (writable_private ? KILN_SCAN_MAP_WRITABLE : 0) | (anon ? KILN_SCAN_MAP_ANON : 0) |
                                  (private_map ? KILN_SCAN_MAP_PRIVATE : 0) |
                                  (eol[-1] == ']' && memmem(s, (size_t)(eol - s), " [", 2) != NULL ? KILN_SCAN_MAP_NAMED : 0);
      sc->nmaps++;
    }
    s = eol + 1;
  }
}

/* The readable mapping holding addr, or NULL. */
static const kiln_scan_map_t *kiln_scan_map_of(const kiln_scan_t *sc, uintptr_t addr) {
  size_t lo = 0, hi = sc->nmaps;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (addr < sc->maps[mid].lo) hi = mid;
    else if (addr >= sc->maps[mid].hi) lo = mid + 1;
    else return &sc->maps[mid];
  }
  return NULL;
}

/* ------------------------------------------------------ the block search */

/* The block holding p (a zero-size block counts as one byte, as in
 * valgrind), or -1. */
static inline int64_t kiln_scan_find(const kiln_scan_t *sc, uint64_t p) {
  if (p < sc->lo || p >= sc->hi) return -1;
  size_t lo = 0, hi = sc->n; /* first block starting above p */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (sc->addrs[mid] <= p) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return -1;
  const kiln_scan_block_t *b = &sc->blocks[lo - 1];
  return p < b->addr + (b->size ? b->size : 1) ? (int64_t)(lo - 1) : -1;
}

/* glibc's arenas point at chunk headers: into the last 8 bytes of the
 * block below (its usable end overlaps the next chunk's prev_size). Such a
 * word is the allocator's, not the program's: valgrind never sees it. */
static inline bool kiln_scan_chunk_header(const kiln_scan_t *sc, const kiln_scan_block_t *b, uint64_t p) {
  if (!sc->glibc_malloc) return false;
  uint64_t head = *(const uint64_t *)(uintptr_t)(b->addr - 8);
  uint64_t chunk = head & ~(uint64_t)7;
  uint64_t usable = (head & 2) ? chunk - 16 : chunk - 8; /* IS_MMAPPED */
  return p == b->addr + usable - 8;
}

static inline void kiln_scan_push(kiln_scan_t *sc, uint32_t i) {
  if (sc->nstack < sc->stack_cap) sc->stack[sc->nstack++] = i;
}

/* Scans the aligned words of [lo, hi). clique < 0: marking from the roots
 * (definite: the words come from a root or a reachable block); else the
 * clique of unreached block `clique`, whose members become indirect. */
static void kiln_scan_word_array(kiln_scan_t *sc, const uint64_t *w, const uint64_t *end, bool definite,
                                 int64_t clique) {
  for (; w < end; w++) {
    uint64_t p = *w;
    if (p < sc->lo || p >= sc->hi) continue;
    int64_t j = kiln_scan_find(sc, p);
    if (j < 0) continue;
    const kiln_scan_block_t *b = &sc->blocks[j];
    bool at_start = p == b->addr;
    if (!at_start && kiln_scan_chunk_header(sc, b, p)) continue;
    uint8_t *st = &sc->state[j];
    if (clique >= 0) {
      if (*st == KILN_SCAN_UNREACHED && j != clique) {
        *st = KILN_SCAN_INDIRECT;
        kiln_scan_push(sc, (uint32_t)j);
      }
    } else if (*st != KILN_SCAN_REACHABLE) {
      if (at_start && definite) {
        *st = KILN_SCAN_REACHABLE;
        kiln_scan_push(sc, (uint32_t)j);
      } else if (*st == KILN_SCAN_UNREACHED) {
        *st = KILN_SCAN_POSSIBLE;
        kiln_scan_push(sc, (uint32_t)j);
      }
    }
  }
}

static void kiln_scan_words(kiln_scan_t *sc, uintptr_t lo, uintptr_t hi, bool definite, int64_t clique) {
  lo = (lo + 7) & ~(uintptr_t)7;
  hi &= ~(uintptr_t)7;
  if (lo < hi) kiln_scan_word_array(sc, (const uint64_t *)lo, (const uint64_t *)hi, definite, clique);
}

/* Zeroes the hidden words of a copy of [lo, lo + n). */
static void kiln_scan_hide(const kiln_scan_t *sc, uint64_t *copy, uintptr_t lo, size_t n) {
  for (size_t i = 0; i < sc->nhidden; i++) {
    uintptr_t a = sc->hidden_lo[i] > lo ? sc->hidden_lo[i] : lo;
    uintptr_t b = sc->hidden_hi[i] < lo + n ? sc->hidden_hi[i] : lo + n;
    for (; a < b; a += 8) copy[(a - lo) / 8] = 0;
  }
}

/* Roots are read through the kernel, into a copy: the maps snapshot may
 * call a page readable that no longer is (adjacent anonymous mappings
 * share one line; one of them may be unmapped since), and a root is never
 * worth a fault. Unreadable pages are skipped. */
static uint64_t kiln_scan_copy[8192]; /* 64 KiB: the scan runs in one thread at a time */

/* The program's memory, read in place: not the sanitizers' business (an
 * instrumented program's redzones are roots like any other words). */
__attribute__((no_sanitize("address", "thread"))) static void kiln_scan_read_in_place(uint64_t *to,
                                                                                    const uint64_t *from,
                                                                                    size_t words) {
  for (size_t i = 0; i < words; i++) to[i] = ((const volatile uint64_t *)from)[i];
}

static void kiln_scan_root_copy(kiln_scan_t *sc, uintptr_t lo, uintptr_t hi) {
  uint64_t *copy = kiln_scan_copy;
  lo = (lo + 7) & ~(uintptr_t)7;
  hi &= ~(uintptr_t)7;
  pid_t pid = getpid();
  while (lo < hi) {
    size_t n = hi - lo < sizeof kiln_scan_copy ? hi - lo : sizeof kiln_scan_copy;
    struct iovec local = {copy, n}, remote = {(void *)lo, n};
    ssize_t got = syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0);
    if (got == (ssize_t)n) {
      kiln_scan_hide(sc, copy, lo, n);
      kiln_scan_word_array(sc, copy, copy + n / 8, true, -1);
      lo += n;
      continue;
    }
    /* A hole somewhere in this chunk: go page by page. */
    uintptr_t page_end = (lo | 4095) + 1;
    size_t m = (page_end < hi ? page_end : hi) - lo;
    local.iov_len = remote.iov_len = m;
    if (syscall(SYS_process_vm_readv, pid, &local, 1, &remote, 1, 0) == (ssize_t)m) {
      kiln_scan_hide(sc, copy, lo, m);
      kiln_scan_word_array(sc, copy, copy + m / 8, true, -1);
    }
    lo += m;
  }
}

/* [lo, hi) of a private mapping, page by page as /proc/self/pagemap tells.
 * Anonymous: only its pages that are in memory or swapped out are read;
 * the others were never written, or were given back (MADV_DONTNEED):
 * zeros. Reading them made the kernel map each one (a page at a time,
 * through process_vm_readv): 1.2 us a page, 76 ms for an untouched 256 MiB
 * reservation, and most of a fork child's scan. File-backed (a module's
 * data): its pages in memory are read in place, the others (still the
 * file's) through the kernel. With every thread stopped nothing unmaps
 * them, and a page in memory cannot fault; process_vm_readv pins each page
 * it reads, and a page a fork child still shares with its parent is copied
 * to be pinned. The pagemap window last read is kept for the next piece
 * (kiln's own regions cut a mapping into many). */
static void kiln_scan_root_paged(kiln_scan_t *sc, uintptr_t lo, uintptr_t hi, bool anon) {
  while (lo < hi) {
    uintptr_t page = lo & ~(uintptr_t)4095;
    if (!(sc->pm_n > 0 && page >= sc->pm_base && page < sc->pm_base + sc->pm_n * 4096)) {
      size_t want = (size_t)(((hi - 1) >> 12) - (page >> 12) + 1);
      if (want < 64) want = 64; /* the next pieces are likely just above */
      if (want > 512) want = 512;
      ssize_t got = pread(sc->pagemap, sc->pm_ent, want * 8, (off_t)(page >> 12) * 8);
      if (got < 8) {
        sc->pm_n = 0;
        kiln_scan_root_copy(sc, lo, hi);
        return;
      }
      sc->pm_base = page;
      sc->pm_n = (size_t)got / 8;
    }
    const uint64_t *ent = sc->pm_ent;
    size_t first = (size_t)((page - sc->pm_base) >> 12), n = sc->pm_n;
    uintptr_t window_end = sc->pm_base + n * 4096;
    for (size_t i = first; i < n && sc->pm_base + i * 4096 < hi;) {
      /* A run of pages alike: in memory (or swapped, anonymous), or not. */
      bool in = anon ? (ent[i] >> 62) != 0 : (ent[i] >> 63) != 0;
      size_t j = i + 1;
      while (j < n && sc->pm_base + j * 4096 < hi && (anon ? (ent[j] >> 62) != 0 : (ent[j] >> 63) != 0) == in) j++;
      uintptr_t a = sc->pm_base + i * 4096, b = sc->pm_base + j * 4096;
      a = a > lo ? a : lo;
      b = b < hi ? b : hi;
      if (!in) {
        if (!anon) kiln_scan_root_copy(sc, a, b);
      } else if (sc->check_blocks) {
        kiln_scan_root_copy(sc, a, b);
      } else {
        a = (a + 7) & ~(uintptr_t)7;
        b &= ~(uintptr_t)7;
        while (a < b) {
          size_t len = b - a < sizeof kiln_scan_copy ? b - a : sizeof kiln_scan_copy;
          kiln_scan_read_in_place(kiln_scan_copy, (const uint64_t *)a, len / 8);
          kiln_scan_hide(sc, kiln_scan_copy, a, len);
          kiln_scan_word_array(sc, kiln_scan_copy, kiln_scan_copy + len / 8, true, -1);
          a += len;
        }
      }
      i = j;
    }
    lo = window_end < hi ? window_end : hi;
  }
}

/* A root: the parts of [lo, hi) that are readable mappings. */
static void kiln_scan_root(kiln_scan_t *sc, uintptr_t lo, uintptr_t hi) {
  while (lo < hi) {
    const kiln_scan_map_t *m = kiln_scan_map_of(sc, lo);
    if (m == NULL) {
      /* Skip to the next mapping. */
      size_t a = 0, b = sc->nmaps;
      while (a < b) {
        size_t mid = (a + b) / 2;
        if (sc->maps[mid].lo <= lo) a = mid + 1;
        else b = mid;
      }
      if (a == sc->nmaps || sc->maps[a].lo >= hi) return;
      lo = sc->maps[a].lo;
      continue;
    }
    uintptr_t end = m->hi < hi ? m->hi : hi;
    /* Never kiln's own module. */
    if (!(lo < sc->self_mod_hi && end > sc->self_mod_lo)) {
      /* A module's RELRO part too: written at relocation, then made
       * read-only, its pages are private copies (in a fork child, shared
       * with the parent: process_vm_readv would copy each to pin it). */
      if (sc->pagemap >= 0 && (m->flags & (KILN_SCAN_MAP_ANON | KILN_SCAN_MAP_WRITABLE | KILN_SCAN_MAP_PRIVATE)))
        kiln_scan_root_paged(sc, lo, end, (m->flags & KILN_SCAN_MAP_ANON) != 0);
      else kiln_scan_root_copy(sc, lo, end);
    }
    lo = end;
  }
}

static void kiln_scan_drain(kiln_scan_t *sc, int64_t clique) {
  while (sc->nstack > 0) {
    uint32_t i = sc->stack[--sc->nstack];
    const kiln_scan_block_t *b = &sc->blocks[i];
    if (sc->check_blocks) {
      /* A thread runs on and may free (and unmap) it meanwhile: read it
       * through the kernel, as roots are. */
      const kiln_scan_map_t *m = kiln_scan_map_of(sc, b->addr);
      if (m == NULL || b->addr + b->size > m->hi) continue;
      if (sc->state[i] != KILN_SCAN_POSSIBLE && clique < 0) {
        kiln_scan_root_copy(sc, b->addr, b->addr + b->size);
        continue;
      }
    }
    kiln_scan_words(sc, b->addr, b->addr + b->size, sc->state[i] != KILN_SCAN_POSSIBLE, clique);
  }
}

/* A thread's stack from sp up, its static TLS and TCB. For threads glibc
 * made, the TCB sits at the top of the stack block: the stack ends there
 * (a mapping above may be anything, kiln's own tables included). */
static void kiln_scan_thread_roots(kiln_scan_t *sc, uintptr_t sp, uintptr_t tp);

/* The thread's dynamic TLS vector (glibc: the TCB's second word points one
 * 16-byte entry into a calloc'd array whose entry -1 holds its length).
 * kiln_freeres_at_exit counts the vector freed, as glibc's freeres does;
 * what it points to (dlopen'd modules' TLS blocks) is the thread's: a root. */
static void kiln_scan_dtv(kiln_scan_t *sc, uintptr_t tp) {
  if (tp == 0 || kiln_scan_map_of(sc, tp + 8) == NULL) return;
  uintptr_t dtv = *(const uintptr_t *)(tp + 8);
  if (dtv < 16 || (dtv & 7) != 0) return;
  const kiln_scan_map_t *m = kiln_scan_map_of(sc, dtv - 16);
  if (m == NULL || dtv >= m->hi) return;
  uint64_t len = *(const uint64_t *)(dtv - 16);
  if (len > (1u << 20)) return;
  uintptr_t hi = dtv + (len + 1) * 16;
  kiln_scan_root(sc, dtv, hi < m->hi ? hi : m->hi);
}

/* A root holding static TLS: all of it but the allocator's own block and
 * kiln's (its hooks keep the address of each thread's last block there). */
static void kiln_scan_tls_root(kiln_scan_t *sc, uintptr_t tp, uintptr_t lo, uintptr_t hi) {
  uintptr_t cut_lo[2], cut_hi[2];
  int ncut = 0;
  if (sc->alloc_tls_size != 0 && tp >= sc->alloc_tls_below) {
    cut_lo[ncut] = tp - sc->alloc_tls_below;
    cut_hi[ncut++] = tp - sc->alloc_tls_below + sc->alloc_tls_size;
  }
  if (sc->self_tls_size != 0 && tp >= sc->self_tls_below) {
    cut_lo[ncut] = tp - sc->self_tls_below;
    cut_hi[ncut++] = tp - sc->self_tls_below + sc->self_tls_size;
  }
  if (ncut == 2 && cut_lo[1] < cut_lo[0]) {
    uintptr_t l = cut_lo[0], h = cut_hi[0];
    cut_lo[0] = cut_lo[1], cut_hi[0] = cut_hi[1];
    cut_lo[1] = l, cut_hi[1] = h;
  }
  for (int i = 0; i < ncut && lo < hi; i++) {
    if (cut_lo[i] > lo) kiln_scan_root(sc, lo, cut_lo[i] < hi ? cut_lo[i] : hi);
    if (cut_hi[i] > lo) lo = cut_hi[i];
  }
  if (lo < hi) kiln_scan_root(sc, lo, hi);
}

static void kiln_scan_thread_roots(kiln_scan_t *sc, uintptr_t sp, uintptr_t tp) {
  kiln_scan_dtv(sc, tp);
  const kiln_scan_map_t *m = kiln_scan_map_of(sc, sp);
  uintptr_t top = 0;
  if (m != NULL) {
    top = m->hi;
    if (tp > sp && tp < m->hi) {
      uintptr_t tcb_end = tp + sc->tcb_size;
      if (tcb_end < top) top = tcb_end;
    }
    uintptr_t lo = sp - KILN_SCAN_REDZONE;
    if (lo < m->lo) lo = m->lo;
    kiln_scan_tls_root(sc, tp, lo, top);
  }
  if (tp == 0 || (m != NULL && tp > sp && tp < top)) return; /* TLS done with the stack */
  const kiln_scan_map_t *t = kiln_scan_map_of(sc, tp);
  if (t == NULL) return;
  uintptr_t lo = tp - sc->tls_below, hi = tp + sc->tcb_size;
  if (lo < t->lo || lo > tp) lo = t->lo;
  if (hi > t->hi) hi = t->hi;
  kiln_scan_tls_root(sc, tp, lo, hi);
}


/* -------------------------------------------------- the program's mappings */

/* Any readable word of the process, through the kernel (a thread that runs
 * on may unmap it): false when unreadable. */
static bool kiln_scan_peek(uintptr_t addr, void *out, size_t n) {
  struct iovec local = {out, n}, remote = {(void *)addr, n};
  return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}

static void kiln_scan_skip_add(kiln_scan_t *sc, uintptr_t lo, uintptr_t hi) {
  if (lo >= hi) return;
  if (sc->nskip == sc->skip_cap) {
    size_t cap = sc->skip_cap ? 2 * sc->skip_cap : 4096;
    kiln_scan_range_t *grown = kiln_mem_map(cap * sizeof *grown);
    if (grown == NULL) return;
    if (sc->skip != NULL) {
      memcpy(grown, sc->skip, sc->nskip * sizeof *grown);
      kiln_mem_unmap(sc->skip, sc->skip_cap * sizeof *grown);
    }
    sc->skip = grown;
    sc->skip_cap = cap;
  }
  sc->skip[sc->nskip].lo = lo;
  sc->skip[sc->nskip].hi = hi;
  sc->nskip++;
}

static void kiln_scan_skip_one(uintptr_t lo, uintptr_t hi, void *ctx) { kiln_scan_skip_add(ctx, lo, hi); }

static int kiln_scan_range_cmp(const void *a, const void *b) {
  const kiln_scan_range_t *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorted, overlaps merged: the ends rise with the starts. */
static void kiln_scan_skip_sort(kiln_scan_t *sc) {
  if (sc->nskip == 0) return;
  kiln_sort(sc->skip, sc->nskip, sizeof *sc->skip, kiln_scan_range_cmp);
  size_t n = 1;
  for (size_t i = 1; i < sc->nskip; i++) {
    if (sc->skip[i].lo <= sc->skip[n - 1].hi) {
      if (sc->skip[i].hi > sc->skip[n - 1].hi) sc->skip[n - 1].hi = sc->skip[i].hi;
    } else {
      sc->skip[n++] = sc->skip[i];
    }
  }
  sc->nskip = n;
}

/* Whether the (sorted, merged) skip list covers all of [lo, hi). */
static bool kiln_scan_skipped_whole(const kiln_scan_t *sc, uintptr_t lo, uintptr_t hi) {
  size_t a = 0, b = sc->nskip; /* first skipped range ending above lo */
  while (a < b) {
    size_t mid = (a + b) / 2;
    if (sc->skip[mid].hi <= lo) a = mid + 1;
    else b = mid;
  }
  return a < sc->nskip && sc->skip[a].lo <= lo && sc->skip[a].hi >= hi;
}

/* A root piece of an anonymous mapping, less the tracked blocks in it
 * (glibc's mmapped chunks, which the kernel may merge with the mapping
 * beside them): a block is scanned as a block, never as a root. */
static void kiln_scan_piece(kiln_scan_t *sc, uintptr_t lo, uintptr_t hi) {
  size_t a = 0, b = sc->n; /* first block ending above lo */
  while (a < b) {
    size_t mid = (a + b) / 2;
    if (sc->blocks[mid].addr + (sc->blocks[mid].size ? sc->blocks[mid].size : 1) <= lo) a = mid + 1;
    else b = mid;
  }
  for (; a < sc->n && lo < hi && sc->blocks[a].addr < hi; a++) {
    const kiln_scan_block_t *blk = &sc->blocks[a];
    if (blk->addr > lo) kiln_scan_root(sc, lo, blk->addr);
    uintptr_t end = blk->addr + (blk->size ? blk->size : 1);
    if (end > lo) lo = end;
  }
  if (lo < hi) kiln_scan_root(sc, lo, hi);
}

/* [lo, hi) less the skip list. */
static void kiln_scan_line(kiln_scan_t *sc, uintptr_t lo, uintptr_t hi) {
  size_t a = 0, b = sc->nskip; /* first skipped range ending above lo */
  while (a < b) {
    size_t mid = (a + b) / 2;
    if (sc->skip[mid].hi <= lo) a = mid + 1;
    else b = mid;
  }
  for (; a < sc->nskip && lo < hi && sc->skip[a].lo < hi; a++) {
    if (sc->skip[a].lo > lo) kiln_scan_piece(sc, lo, sc->skip[a].lo);
    if (sc->skip[a].hi > lo) lo = sc->skip[a].hi;
  }
  if (lo < hi) kiln_scan_piece(sc, lo, hi);
}

/* glibc's thread arenas: each heap is 64 MiB-aligned and opens with its
 * heap_info {arena, prev heap, size, mprotect_size, ...}; its read-write
 * part is mprotect_size long. The arena's bins and free chunks are the
 * allocator's, never roots (valgrind never sees them). */
enum { KILN_SCAN_HEAP_MAX = 64 << 20 };
static bool kiln_scan_glibc_heap(const kiln_scan_t *sc, uintptr_t at, uintptr_t line_hi, uintptr_t *end) {
  uintptr_t h[4];
  if (at + sizeof h > line_hi || !kiln_scan_peek(at, h, sizeof h)) return false;
  if (h[0] == 0 || (h[0] & 7) != 0 || (h[1] & (KILN_SCAN_HEAP_MAX - 1)) != 0 || h[2] < 4096 || h[2] > h[3] ||
      h[3] > KILN_SCAN_HEAP_MAX || (h[3] & 4095) != 0 || at + h[3] > line_hi || kiln_scan_map_of(sc, h[0]) == NULL)
    return false;
  *end = at + h[3];
  return true;
}

/* A thread stack glibc made: its TCB at the top (a 64-byte aligned struct
 * pthread whose first and third words point to itself). Returns the tid
 * kept in it (0: the thread is gone, the stack cached for reuse), or -1
 * when the mapping is no such stack. */
static pid_t kiln_scan_stack_owner(const kiln_scan_t *sc, const kiln_scan_map_t *m) {
  if (sc->tcb_size == 0 || sc->tid_offset == 0 || m->hi - m->lo < sc->tcb_size + 4096) return -1;
  uintptr_t tp = (m->hi - sc->tcb_size) & ~(uintptr_t)(sc->tls_align - 1);
  uintptr_t head[3];
  int32_t tid;
  if (!kiln_scan_peek(tp, head, sizeof head) || head[0] != tp || head[2] != tp ||
      !kiln_scan_peek(tp + sc->tid_offset, &tid, sizeof tid))
    return -1;
  return tid >= 0 ? tid : 0;
}

/* The program's own writable private mappings, as valgrind scans every
 * mapping of its client: an interpreter's object arenas (CPython's
 * obmalloc), a program's own pools. Left out: the loaded modules (their
 * segments are roots already), kiln's own memory, what the allocator
 * mapped (recorded by the mmap interposer; glibc's arenas by their
 * heap_info), the tracked blocks themselves, the allocator's TLS, and the
 * stacks of threads already scanned from their stack pointer or gone. A
 * thread that could not be paused has its whole stack scanned here. */
static void kiln_scan_mappings(kiln_scan_t *sc, pid_t self, const uintptr_t *tps, int ntps) {
  for (size_t i = 0; i < sc->nspans; i++) kiln_scan_skip_add(sc, sc->spans[i].lo, sc->spans[i].hi);
  enum { KILN_SCAN_KILN_REGIONS = 1 << 15 };
  size_t bytes = 2 * KILN_SCAN_KILN_REGIONS * sizeof(uintptr_t);
  uintptr_t *rl = kiln_mem_map(bytes);
  if (rl != NULL) {
    size_t n = kiln_mem_regions_list(rl, rl + KILN_SCAN_KILN_REGIONS, KILN_SCAN_KILN_REGIONS);
    for (size_t i = 0; i < n; i++) kiln_scan_skip_add(sc, rl[i], rl[KILN_SCAN_KILN_REGIONS + i]);
    kiln_scan_skip_add(sc, (uintptr_t)rl, (uintptr_t)rl + bytes);
  }
  kiln_allocmaps_foreach(kiln_scan_skip_one, sc);
  for (int i = 0; i < ntps; i++) {
    if (sc->alloc_tls_size != 0 && tps[i] > sc->alloc_tls_below)
      kiln_scan_skip_add(sc, tps[i] - sc->alloc_tls_below, tps[i] - sc->alloc_tls_below + sc->alloc_tls_size);
    if (sc->self_tls_size != 0 && tps[i] > sc->self_tls_below)
      kiln_scan_skip_add(sc, tps[i] - sc->self_tls_below, tps[i] - sc->self_tls_below + sc->self_tls_size);
  }
  kiln_scan_skip_sort(sc);

  for (size_t i = 0; i < sc->nmaps; i++) {
    const kiln_scan_map_t *m = &sc->maps[i];
    if ((m->flags & (KILN_SCAN_MAP_WRITABLE | KILN_SCAN_MAP_NAMED)) != KILN_SCAN_MAP_WRITABLE) continue;
    if (kiln_scan_skipped_whole(sc, m->lo, m->hi)) continue; /* kiln's: no need to read its top */
    pid_t owner = kiln_scan_stack_owner(sc, m);
    if (owner == 0 || owner == self) continue;
    if (owner > 0) {
      int st = kiln_stopworld_state(owner);
      if (st == 1) continue; /* scanned from its stack pointer */
      if (st == 0) kiln_scan_last.threads_whole_stack++;
    }
    uintptr_t lo = m->lo;
    if (sc->glibc_malloc) {
      for (uintptr_t at = (m->lo + KILN_SCAN_HEAP_MAX - 1) & ~(uintptr_t)(KILN_SCAN_HEAP_MAX - 1); at < m->hi;
           at += KILN_SCAN_HEAP_MAX) {
        uintptr_t end;
        if (!kiln_scan_glibc_heap(sc, at, m->hi, &end)) continue;
        kiln_scan_line(sc, lo, at);
        lo = end;
      }
    }
    kiln_scan_line(sc, lo, m->hi);
  }
  if (rl != NULL) kiln_mem_unmap(rl, bytes);
}

/* ------------------------------------------------------------ snapshot */

static void kiln_scan_collect(uint64_t addr, uint64_t size, uint32_t stack_id, void *ctx) {
  kiln_scan_t *sc = ctx;
  if (sc->n == sc->cap) return;
  kiln_scan_block_t *b = &sc->blocks[sc->n++];
  b->addr = addr;
  b->size = size;
  b->stack_id = stack_id;
  b->pad = 0;
}

/* LSD radix sort by address, 16 bits a pass: 1M blocks in milliseconds. */
static void kiln_scan_sort(kiln_scan_block_t *a, kiln_scan_block_t *tmp, size_t n, uint32_t *counts) {
  if (n <= 64) { /* a few blocks (a fork child's): the passes would clear 256 KiB each */
    for (size_t i = 1; i < n; i++) {
      kiln_scan_block_t b = a[i];
      size_t j = i;
      for (; j > 0 && a[j - 1].addr > b.addr; j--) a[j] = a[j - 1];
      a[j] = b;
    }
    return;
  }
  uint64_t max = 0;
  for (size_t i = 0; i < n; i++)
    if (a[i].addr > max) max = a[i].addr;
  kiln_scan_block_t *src = a, *dst = tmp;
  for (int shift = 0; shift < 64 && (max >> shift) != 0; shift += 16) {
    memset(counts, 0, 65536 * sizeof *counts);
    for (size_t i = 0; i < n; i++) counts[(src[i].addr >> shift) & 0xffff]++;
    uint32_t sum = 0;
    for (size_t k = 0; k < 65536; k++) {
      uint32_t c = counts[k];
      counts[k] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++) dst[counts[(src[i].addr >> shift) & 0xffff]++] = src[i];
    kiln_scan_block_t *t = src;
    src = dst;
    dst = t;
  }
  if (src != a) memcpy(a, src, n * sizeof *a);
}

static bool kiln_scan_alloc(kiln_scan_t *sc, size_t cap) {
  sc->cap = cap;
  sc->stack_cap = 2 * cap + 64; /* each block changes state at most twice */
  size_t sizes[] = {cap * sizeof(kiln_scan_block_t), cap * sizeof(kiln_scan_block_t), cap * sizeof(uint64_t),
                    cap, sc->stack_cap * sizeof(uint32_t), 65536 * sizeof(uint32_t),
                    KILN_SCAN_RANGES * sizeof(kiln_scan_range_t), KILN_SCAN_RANGES * sizeof(kiln_scan_range_t)};
  size_t total = 0;
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) total += (sizes[i] + 63) & ~(size_t)63;
  sc->mem = kiln_mem_map(total);
  if (sc->mem == NULL) return false;
  sc->mem_bytes = total;
  char *p = sc->mem;
  void **slots[] = {(void **)&sc->blocks, (void **)&sc->sort_tmp, (void **)&sc->addrs, (void **)&sc->state,
                    (void **)&sc->stack, (void **)&sc->sort_counts, (void **)&sc->ranges, (void **)&sc->spans};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if (slots[i] != NULL) *slots[i] = p;
    p += (sizes[i] + 63) & ~(size_t)63;
  }
  return true;
}

static void kiln_scan_free(kiln_scan_t *sc) {
  if (sc->mem != NULL) kiln_mem_unmap(sc->mem, sc->mem_bytes);
  if (sc->maps != NULL) kiln_mem_unmap(sc->maps, sc->maps_cap * sizeof *sc->maps);
  if (sc->skip != NULL) kiln_mem_unmap(sc->skip, sc->skip_cap * sizeof *sc->skip);
  kiln_buf_free(&sc->maps_text);
  if (sc->pagemap >= 0) close(sc->pagemap);
  sc->pagemap = -1;
}

/* ---------------------------------------------------------------- the run */

/* sizeof(struct pthread) from glibc's libthread_db export, else a default. */
static uintptr_t kiln_scan_tcb_size(void) {
  const uint32_t *size = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
  return size != NULL && *size > 0 && *size < 65536 ? *size : KILN_SCAN_TCB_DEFAULT;
}

static bool kiln_scan_glibc_malloc(void) {
  Dl_info info;
  if (kiln_libc.malloc == NULL || dladdr(*(void **)&kiln_libc.malloc, &info) == 0 || info.dli_fname == NULL)
    return false;
  const char *base = strrchr(info.dli_fname, '/');
  base = base ? base + 1 : info.dli_fname;
  return strncmp(base, "libc.so", 7) == 0;
}

bool kiln_scan_links;

void kiln_scan_prepare(const kiln_config_t *cfg) {
  kiln_scan_links = (cfg->mode & KILN_MODE_ALLOC_BIT) && cfg->alloc_sample == 0 &&
                    cfg->leak_check != KILN_LEAK_CHECK_OFF;
  kiln_allocmaps_prepare();
}

static void kiln_scan_attribute(kiln_scan_t *sc) {
  static const kiln_leak_kind_t of_state[] = {KILN_LEAK_DEFINITE, KILN_LEAK_POSSIBLE, KILN_LEAK_REACHABLE,
                                              KILN_LEAK_INDIRECT};
  unsigned mask = 0;
  for (int k = 0; k < KILN_LEAK_KINDS; k++)
    mask |= 1u << kiln_scan_kind_bytes((kiln_leak_kind_t)k) | 1u << kiln_scan_kind_count((kiln_leak_kind_t)k);
  kiln_stacktab_clear_counts(mask);
  for (size_t i = 0; i < sc->n; i++) {
    kiln_leak_kind_t k = of_state[sc->state[i]];
    kiln_stack_t *s = kiln_stacktab_get(sc->blocks[i].stack_id);
    kiln_scan_last.bytes[k] += sc->blocks[i].size;
    kiln_scan_last.count[k]++;
    if (s == NULL) continue;
    kiln_stacktab_add(s, kiln_scan_kind_bytes(k), sc->blocks[i].size);
    kiln_stacktab_add(s, kiln_scan_kind_count(k), 1);
  }
}

typedef struct kiln_scan_sup_ctx {
  kiln_suppress_t sup;
  kiln_buf_t name;
  kiln_symbols_t *sy;
} kiln_scan_sup_ctx_t;

/* A suppressed stack's blocks leave the four categories. */
static void kiln_scan_suppress_stack(kiln_stack_t *s, void *vctx) {
  kiln_scan_sup_ctx_t *c = vctx;
  uint64_t count = 0;
  for (int k = 0; k < KILN_LEAK_KINDS; k++)
    count += atomic_load_explicit(&s->counts[kiln_scan_kind_count((kiln_leak_kind_t)k)], memory_order_relaxed);
  if (count == 0 || !kiln_suppress_stack(&c->sup, s, c->sy, &c->name)) return;
  for (int k = 0; k < KILN_LEAK_KINDS; k++) {
    uint64_t b = atomic_exchange(&s->counts[kiln_scan_kind_bytes((kiln_leak_kind_t)k)], 0);
    uint64_t n = atomic_exchange(&s->counts[kiln_scan_kind_count((kiln_leak_kind_t)k)], 0);
    kiln_scan_last.bytes[k] -= b;
    kiln_scan_last.count[k] -= n;
    kiln_scan_last.suppressed_bytes += b;
    kiln_scan_last.suppressed_count += n;
  }
}

static void kiln_scan_suppress(const char *path) {
  kiln_scan_sup_ctx_t c;
  memset(&c, 0, sizeof c);
  if (kiln_suppress_load(path, &c.sup) < 0) return;
  kiln_modules_refresh();
  c.sy = kiln_symbols_open();
  kiln_stacktab_foreach(kiln_scan_suppress_stack, &c);
  kiln_symbols_close(c.sy);
  kiln_buf_free(&c.name);
  kiln_suppress_free(&c.sup);
}

int kiln_scan_run(const kiln_config_t *cfg) {
  if (!(cfg->mode & KILN_MODE_ALLOC_BIT) || cfg->alloc_sample != 0 || cfg->leak_check == KILN_LEAK_CHECK_OFF ||
      !kiln_heap_started())
    return 1;
  int64_t t0 = kiln_scan_now_ns();
  memset(&kiln_scan_last, 0, sizeof kiln_scan_last);
  kiln_scan_t sc;
  memset(&sc, 0, sizeof sc);
  sc.pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  /* A map refused during the scan (the address space is full) leaves out
   * a root list or an exclusion, and the categories would be wrong: then
   * there are none (below). */
  uint64_t refused0 = kiln_mem_refused();
  uint64_t entries, map_bytes;
  kiln_livemap_stats(&kiln_livemap_main, &entries, &map_bytes);
  /* Room for what other threads add before they are parked. */
  if (!kiln_scan_alloc(&sc, entries + entries / 8 + 4096)) {
    kiln_log("cannot map memory for the leak scan (%llu blocks); no leak categories",
             (unsigned long long)entries);
    return -ENOMEM;
  }
  /* Everything that takes locks or may allocate, before the world stops:
   * the loader's module list, the thread-pointer layout, the signal. */
  size_t static_size = 0, static_align = 0;
  void (*static_info)(size_t *, size_t *);
  *(void **)&static_info = dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
  if (static_info != NULL) static_info(&static_size, &static_align);
  if (static_size >= (64u << 20)) static_size = 0;
  kiln_scan_phdr_ctx_t pc = {&sc, (uintptr_t)&kiln_scan_last, kiln_scan_thread_pointer(),
                             (uintptr_t) * (void **)&kiln_libc.malloc, static_size};
  kiln_libc.dl_iterate_phdr(kiln_scan_phdr, &pc);
  if (static_size > sc.tls_below) sc.tls_below = static_size;
  sc.tcb_size = kiln_scan_tcb_size();
  sc.tls_align = static_align >= 16 && static_align <= 4096 && (static_align & (static_align - 1)) == 0
                     ? static_align
                     : 64;
  /* libthread_db's descriptor of struct pthread's tid: {bits, count, offset}. */
  const uint32_t *tid_desc = dlsym(RTLD_DEFAULT, "_thread_db_pthread_tid");
  if (tid_desc != NULL && tid_desc[0] == 32 && tid_desc[2] + 4 <= sc.tcb_size) sc.tid_offset = tid_desc[2];
  sc.glibc_malloc = kiln_scan_glibc_malloc();
  int rc = kiln_stopworld_prepare();
  if (rc < 0) {
    if (rc == -EBUSY) kiln_log("no realtime signal is free to pause the threads; no leak scan");
    kiln_scan_free(&sc);
    return rc;
  }

  /* No thread may be parked inside a live-map update: hold every shard
   * while they stop (a hook waiting for one is parked where it spins). */
  kiln_livemap_fork_prepare(&kiln_livemap_main);
  kiln_stopworld_stop();
  kiln_livemap_fork_release(&kiln_livemap_main);
  kiln_livemap_foreach(&kiln_livemap_main, kiln_scan_collect, &sc);
  kiln_scan_read_maps(&sc);
  sc.nhidden = kiln_freeres_hidden_words(sc.hidden_lo, sc.hidden_hi, 64);
  kiln_stopworld_counts_t counts;
  kiln_stopworld_counts(&counts);
  kiln_scan_last.threads_traced = counts.traced;
  kiln_scan_last.threads_unstopped = counts.unstopped;
  int nthreads = kiln_stopworld_count();
  sc.check_blocks = kiln_scan_last.threads_unstopped > 0;

  kiln_scan_sort(sc.blocks, sc.sort_tmp, sc.n, sc.sort_counts);
  if (sc.n > 0) {
    sc.lo = sc.blocks[0].addr;
    for (size_t i = 0; i < sc.n; i++) {
      sc.addrs[i] = sc.blocks[i].addr;
      uint64_t end = sc.blocks[i].addr + (sc.blocks[i].size ? sc.blocks[i].size : 1);
      if (end > sc.hi) sc.hi = end;
    }
  }
  /* Roots: modules' writable data, then every thread. */
  for (size_t i = 0; i < sc.nranges; i++) kiln_scan_root(&sc, sc.ranges[i].lo, sc.ranges[i].hi);
  /* This thread: its stack above this frame (the program's registers at
   * exit are saved in the frames of exit and its callers). */
  kiln_scan_thread_roots(&sc, (uintptr_t)__builtin_frame_address(0), kiln_scan_thread_pointer());
  for (int i = 0; i < nthreads; i++) {
    kiln_stopworld_thread_t t;
    if (!kiln_stopworld_thread(i, &t)) continue;
    kiln_scan_last.threads++;
    kiln_scan_words(&sc, (uintptr_t)t.regs, (uintptr_t)(t.regs + t.nregs), true, -1);
    kiln_scan_thread_roots(&sc, t.sp, t.tp);
  }
  /* The program's own mappings; the allocator's TLS below every thread
   * pointer known is left out. */
  size_t tps_bytes = ((size_t)nthreads + 1) * sizeof(uintptr_t);
  uintptr_t *tps = kiln_mem_map(tps_bytes);
  int ntps = 0;
  if (tps != NULL) {
    tps[ntps++] = kiln_scan_thread_pointer();
    for (int i = 0; i < nthreads; i++) {
      kiln_stopworld_thread_t t;
      if (kiln_stopworld_thread(i, &t) && t.tp != 0) tps[ntps++] = t.tp;
    }
  }
  kiln_scan_mappings(&sc, (pid_t)syscall(SYS_gettid), tps, ntps);
  if (tps != NULL) kiln_mem_unmap(tps, tps_bytes);
  kiln_scan_drain(&sc, -1);
  /* Cliques: each block still unreached, in address order, leads; the
   * unreached blocks it reaches are indirectly lost (an earlier leader
   * included: then it is no longer one). */
  for (size_t i = 0; i < sc.n; i++) {
    if (sc.state[i] != KILN_SCAN_UNREACHED) continue;
    kiln_scan_push(&sc, (uint32_t)i);
    kiln_scan_drain(&sc, (int64_t)i);
  }
  kiln_stopworld_release();

  if (kiln_mem_refused() != refused0) {
    kiln_log("leak scan: out of address space (ulimit -v?); no leak categories");
    kiln_scan_free(&sc);
    memset(&kiln_scan_last, 0, sizeof kiln_scan_last);
    return -ENOMEM;
  }
  kiln_scan_attribute(&sc);
  kiln_scan_last.blocks = sc.n;
  kiln_scan_last.ran = true;
  kiln_scan_last.files = cfg->leak_check == KILN_LEAK_CHECK_FULL;
  if (sc.n == sc.cap) kiln_log("leak scan: more live blocks than room; some not classified");
  kiln_scan_free(&sc);
  if (cfg->suppress[0] != '\0') kiln_scan_suppress(cfg->suppress);
  kiln_scan_last.seconds = (double)(kiln_scan_now_ns() - t0) / 1e9;
  if (kiln_scan_last.threads_unstopped > 0)
    kiln_log("leak scan: %llu thread(s) could not be paused; their whole stacks were scanned, without their registers",
             (unsigned long long)kiln_scan_last.threads_unstopped);
  return 0;
}
