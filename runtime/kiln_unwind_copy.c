/* kiln_unwind_copy.c — unwinding a sample after the fact, from the user
 * registers and a copy of the top of the user stack taken when the sample
 * fired (by the kernel for perf ring-buffer samples, by the fallback
 * handler otherwise). Runs in the collector thread only: never in a signal
 * handler, never on a program thread.
 *   libunwind  the generic (remote-capable) libunwind-x86_64, dlopened
 *              RTLD_LOCAL, on a private address space whose accessors
 *              serve stack reads from the copy and every other read
 *              (unwind tables, code) through process_vm_readv, so that a
 *              module unmapped since the sample costs a frame, not a crash.
 *   fp         the frame-pointer chain inside the copy.
 * A stack deeper than the copy ends with the truncated flag. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <libunwind.h>
#include <link.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* libunwind-x86_64's entry points, resolved once. */
static struct {
  bool ok;
  unw_addr_space_t (*create_addr_space)(unw_accessors_t *, int);
  int (*set_caching_policy)(unw_addr_space_t, unw_caching_policy_t);
  void (*flush_cache)(unw_addr_space_t, unw_word_t, unw_word_t);
  int (*init_remote)(unw_cursor_t *, unw_addr_space_t, void *);
  int (*step)(unw_cursor_t *);
  int (*get_reg)(unw_cursor_t *, int, unw_word_t *);
  int (*search_table)(unw_addr_space_t, unw_word_t, unw_dyn_info_t *, unw_proc_info_t *, int, void *);
  unw_addr_space_t as;
  pid_t pid; /* this process (read once per unwind: a fork child is another) */
  uint64_t loader_gen; /* kiln_unwind_copy_loader_gen when the cache was last valid */
  /* The loaded modules' spans: a read there is of code or unwind tables,
   * never of a stack (modules may be mapped just above a thread's stack). */
  struct { uint64_t lo, hi; } mods[512];
  int nmods;
  /* Their executable segments: where a return address can be. */
  struct { uint64_t lo, hi; } code[512];
  int ncode;
} kiln_ucopy;

/* Bumped by the dlopen/dlclose wrappers: cached unwind rules may be stale. */
_Atomic uint64_t kiln_unwind_copy_loader_gen;

/* What the accessors see: one sample. */
typedef struct kiln_ucopy_arg {
  const kiln_regs_t *regs;
  const uint8_t *stack;
  uint64_t sp, len;    /* the copy holds [sp, sp + len) */
  bool beyond;         /* a read fell past the copy: the stack goes on */
} kiln_ucopy_arg_t;

static __thread int kiln_tls_in_copy_unwind __attribute__((tls_model("initial-exec")));
static __thread int kiln_tls_refuse_pipes __attribute__((tls_model("initial-exec")));

bool kiln_unwind_copy_active(void) { return kiln_tls_in_copy_unwind != 0; }

/* libunwind opens a pipe when it sets itself up, to test addresses by
 * writing them to it; it uses mincore instead where the kernel has it (it
 * always has), and the pipe would be four descriptors of the program's,
 * low in its table and counted against its limit. The pipe and pipe2
 * wrappers refuse it while kiln sets libunwind up. */
bool kiln_unwind_refusing_pipes(void) { return kiln_tls_refuse_pipes != 0; }
void kiln_unwind_refuse_pipes(bool on) { kiln_tls_refuse_pipes += on ? 1 : -1; }

/* Reads n bytes at addr of this process without faulting. */
static bool kiln_ucopy_peek(uint64_t addr, void *out, size_t n) {
  struct iovec local = {out, n}, remote = {(void *)(uintptr_t)addr, n};
  return syscall(SYS_process_vm_readv, kiln_ucopy.pid, &local, 1, &remote, 1, 0) == (ssize_t)n;
}

/* Module memory (unwind tables, code), read a page at a time and kept:
 * libunwind reads it a word at a time, and a system call per word was most
 * of what kiln cost a short process (a forked child's first samples: 6,600
 * process_vm_readv calls for one child). Direct-mapped; flushed when a
 * module comes or goes; still right in a fork child (same mappings). */
enum { KILN_UCOPY_PAGES = 128, KILN_UCOPY_PAGE = 4096 };
static struct {
  uint64_t tag[KILN_UCOPY_PAGES]; /* page address + 1; 0: empty */
  uint8_t (*data)[KILN_UCOPY_PAGE];
  bool failed;
} kiln_ucopy_pages;

static void kiln_ucopy_pages_flush(void) { memset(kiln_ucopy_pages.tag, 0, sizeof kiln_ucopy_pages.tag); }

static bool kiln_ucopy_module_word(uint64_t addr, unw_word_t *val) {
  uint64_t page = addr & ~(uint64_t)(KILN_UCOPY_PAGE - 1), off = addr - page;
  if (off > KILN_UCOPY_PAGE - sizeof *val) return kiln_ucopy_peek(addr, val, sizeof *val); /* straddles */
  if (kiln_ucopy_pages.data == NULL && !kiln_ucopy_pages.failed) {
    kiln_ucopy_pages.data = kiln_mem_map((size_t)KILN_UCOPY_PAGES * KILN_UCOPY_PAGE);
    kiln_ucopy_pages.failed = kiln_ucopy_pages.data == NULL;
  }
  if (kiln_ucopy_pages.data == NULL) return kiln_ucopy_peek(addr, val, sizeof *val);
  size_t slot = (size_t)((page >> 12) ^ (page >> 20)) % KILN_UCOPY_PAGES;
  if (kiln_ucopy_pages.tag[slot] != page + 1) {
    /* A page of a module's span that is not mapped (a gap between its
     * segments, or past the end of its last): only the word is read. */
    if (!kiln_ucopy_peek(page, kiln_ucopy_pages.data[slot], KILN_UCOPY_PAGE)) {
      kiln_ucopy_pages.tag[slot] = 0;
      return kiln_ucopy_peek(addr, val, sizeof *val);
    }
    kiln_ucopy_pages.tag[slot] = page + 1;
  }
  memcpy(val, kiln_ucopy_pages.data[slot] + off, sizeof *val);
  return true;
}

static int kiln_ucopy_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *argv) {
  (void)as;
  kiln_ucopy_arg_t *a = argv;
  if (write) return -UNW_EINVAL;
  /* (No sum that can wrap: addr may be anything a corrupt frame holds.) */
  if (addr >= a->sp && a->len >= sizeof *val && addr - a->sp <= a->len - sizeof *val) {
    memcpy(val, a->stack + (addr - a->sp), sizeof *val);
    return 0;
  }
  for (int i = 0; i < kiln_ucopy.nmods; i++)
    if (addr >= kiln_ucopy.mods[i].lo && addr < kiln_ucopy.mods[i].hi)
      return kiln_ucopy_module_word(addr, val) ? 0 : -UNW_EINVAL;
  /* Just above the copy: the live stack has moved on since the sample;
   * never read it, say the stack was cut. */
  if (addr >= a->sp && addr - a->sp < (64u << 20)) {
    a->beyond = true;
    return -UNW_EINVAL;
  }
  return kiln_ucopy_peek(addr, val, sizeof *val) ? 0 : -UNW_EINVAL;
}

static int kiln_ucopy_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *argv) {
  (void)as;
  kiln_ucopy_arg_t *a = argv;
  if (write || reg < 0 || reg >= KILN_REGS) return -UNW_EBADREG;
  *val = a->regs->r[reg];
  return 0;
}

static int kiln_ucopy_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write, void *arg) {
  (void)as, (void)reg, (void)val, (void)write, (void)arg;
  return -UNW_EBADREG;
}

static int kiln_ucopy_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg) {
  (void)as, (void)c, (void)arg;
  return -UNW_EINVAL;
}

static int kiln_ucopy_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len, unw_word_t *off,
                                void *arg) {
  (void)as, (void)addr, (void)buf, (void)len, (void)off, (void)arg;
  return -UNW_ENOINFO;
}

static void kiln_ucopy_put_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg) {
  (void)as, (void)pi, (void)arg;
}

static int kiln_ucopy_dyn_list(unw_addr_space_t as, unw_word_t *addr, void *arg) {
  (void)as, (void)addr, (void)arg;
  return -UNW_ENOINFO;
}

/* The module holding ip and its .eh_frame_hdr search table. */
typedef struct kiln_ucopy_find {
  uint64_t ip;
  unw_dyn_info_t di;
  bool found;
} kiln_ucopy_find_t;

static int kiln_ucopy_phdr(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size;
  kiln_ucopy_find_t *f = ctx;
  uint64_t lo = UINT64_MAX, hi = 0;
  const ElfW(Phdr) *eh = NULL;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *p = &info->dlpi_phdr[i];
    if (p->p_type == PT_LOAD) {
      uint64_t start = info->dlpi_addr + p->p_vaddr;
      if (start < lo) lo = start;
      if (start + p->p_memsz > hi) hi = start + p->p_memsz;
    } else if (p->p_type == PT_GNU_EH_FRAME) {
      eh = p;
    }
  }
  if (f->ip < lo || f->ip >= hi) return 0;
  if (eh == NULL) return 1; /* the module, but no table: stop looking */
  /* version 1; eh_frame_ptr encoding; fde_count udata4; table datarel sdata4. */
  const unsigned char *hdr = (const unsigned char *)(info->dlpi_addr + eh->p_vaddr);
  if (hdr[0] != 1 || hdr[2] != 0x03 || hdr[3] != 0x3b) return 1;
  size_t ptr_size = (hdr[1] & 0x0f) == 0x03 || (hdr[1] & 0x0f) == 0x0b ? 4 : 8;
  uint32_t count;
  memcpy(&count, hdr + 4 + ptr_size, 4);
  f->di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
  f->di.start_ip = lo;
  f->di.end_ip = hi;
  f->di.gp = 0;
  f->di.u.rti.name_ptr = 0;
  f->di.u.rti.segbase = (unw_word_t)(uintptr_t)hdr;
  f->di.u.rti.table_data = (unw_word_t)(uintptr_t)(hdr + 4 + ptr_size + 4);
  f->di.u.rti.table_len = (unw_word_t)count * 8 / sizeof(unw_word_t);
  f->found = true;
  return 1;
}

static int kiln_ucopy_find_proc(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need, void *arg) {
  kiln_ucopy_find_t f;
  memset(&f, 0, sizeof f);
  f.ip = ip;
  /* libc's, not kiln's wrapper: this is the collector, not the program. */
  kiln_libc.dl_iterate_phdr(kiln_ucopy_phdr, &f);
  if (!f.found) return -UNW_ENOINFO;
  return kiln_ucopy.search_table(as, ip, &f.di, pi, need, arg);
}

static int kiln_ucopy_span(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size, (void)ctx;
  if (kiln_ucopy.nmods == (int)(sizeof kiln_ucopy.mods / sizeof kiln_ucopy.mods[0])) return 1;
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *p = &info->dlpi_phdr[i];
    if (p->p_type != PT_LOAD) continue;
    uint64_t start = info->dlpi_addr + p->p_vaddr;
    if (start < lo) lo = start;
    if (start + p->p_memsz > hi) hi = start + p->p_memsz;
    if ((p->p_flags & PF_X) && kiln_ucopy.ncode < (int)(sizeof kiln_ucopy.code / sizeof kiln_ucopy.code[0])) {
      kiln_ucopy.code[kiln_ucopy.ncode].lo = start;
      kiln_ucopy.code[kiln_ucopy.ncode++].hi = start + p->p_memsz;
    }
  }
  if (lo < hi) {
    kiln_ucopy.mods[kiln_ucopy.nmods].lo = lo;
    kiln_ucopy.mods[kiln_ucopy.nmods++].hi = hi;
  }
  return 0;
}

bool kiln_unwind_copy_in_module(uint64_t pc) {
  for (int i = 0; i < kiln_ucopy.ncode; i++)
    if (pc > kiln_ucopy.code[i].lo && pc <= kiln_ucopy.code[i].hi) return true;
  return false;
}

/* A module came or went: cached unwind rules and spans are stale. */
static void kiln_ucopy_refresh(void) {
  uint64_t gen = atomic_load_explicit(&kiln_unwind_copy_loader_gen, memory_order_acquire);
  if (gen == kiln_ucopy.loader_gen && kiln_ucopy.nmods > 0) return;
  if (kiln_ucopy.as != NULL) kiln_ucopy.flush_cache(kiln_ucopy.as, 0, 0);
  kiln_ucopy_pages_flush();
  kiln_ucopy.nmods = 0;
  kiln_ucopy.ncode = 0;
  kiln_libc.dl_iterate_phdr(kiln_ucopy_span, NULL);
  kiln_ucopy.loader_gen = gen;
}

static unw_accessors_t kiln_ucopy_accessors = {
    kiln_ucopy_find_proc, kiln_ucopy_put_info,   kiln_ucopy_dyn_list, kiln_ucopy_access_mem,
    kiln_ucopy_access_reg, kiln_ucopy_access_fpreg, kiln_ucopy_resume, kiln_ucopy_proc_name};

static int kiln_ucopy_libunwind(const kiln_regs_t *regs, const uint8_t *stack, size_t len, uint64_t *pcs,
                                int max, unsigned *flags);

static int kiln_ucopy_load(void) {
  void *h = kiln_libc.dlopen != NULL ? kiln_libc.dlopen("libunwind-x86_64.so.8", RTLD_NOW | RTLD_LOCAL)
                                     : dlopen("libunwind-x86_64.so.8", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return -ENOENT;
  *(void **)&kiln_ucopy.create_addr_space = dlsym(h, "_Ux86_64_create_addr_space");
  *(void **)&kiln_ucopy.set_caching_policy = dlsym(h, "_Ux86_64_set_caching_policy");
  *(void **)&kiln_ucopy.flush_cache = dlsym(h, "_Ux86_64_flush_cache");
  *(void **)&kiln_ucopy.init_remote = dlsym(h, "_Ux86_64_init_remote");
  *(void **)&kiln_ucopy.step = dlsym(h, "_Ux86_64_step");
  *(void **)&kiln_ucopy.get_reg = dlsym(h, "_Ux86_64_get_reg");
  *(void **)&kiln_ucopy.search_table = dlsym(h, "_Ux86_64_dwarf_search_unwind_table");
  if (!kiln_ucopy.create_addr_space || !kiln_ucopy.set_caching_policy || !kiln_ucopy.flush_cache ||
      !kiln_ucopy.init_remote || !kiln_ucopy.step || !kiln_ucopy.get_reg || !kiln_ucopy.search_table)
    return -ENOENT;
  kiln_allocmaps_kiln_library(*(void **)&kiln_ucopy.step);
  kiln_unwind_refuse_pipes(true);
  kiln_ucopy.as = kiln_ucopy.create_addr_space(&kiln_ucopy_accessors, 0);
  if (kiln_ucopy.as != NULL) {
    /* Only the collector unwinds in this address space: the per-thread
     * cache needs no lock. */
    kiln_ucopy.set_caching_policy(kiln_ucopy.as, UNW_CACHE_PER_THREAD);
    kiln_ucopy.ok = true;
    /* libunwind sets itself up on the first cursor: do it now, here. */
    kiln_regs_t regs;
    memset(&regs, 0, sizeof regs);
    kiln_ucopy.pid = getpid();
    uint64_t word = 0, pc;
    unsigned flags = 0;
    regs.r[KILN_REG_RIP] = (uint64_t)(uintptr_t)&kiln_unwind_copy_init;
    regs.r[KILN_REG_RSP] = (uint64_t)(uintptr_t)&word;
    kiln_ucopy_libunwind(&regs, (const uint8_t *)&word, sizeof word, &pc, 1, &flags);
  }
  kiln_unwind_refuse_pipes(false);
  return kiln_ucopy.ok ? 0 : -ENOMEM;
}

/* The load happens once, whichever thread asks first (the starting thread
 * for wall mode and the signal timers, the collector or a dump's drain for
 * perf samples); the others wait for it. */
static pthread_mutex_t kiln_ucopy_load_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool kiln_ucopy_tried; /* the load is over: kiln_ucopy.ok says how */
static __thread bool kiln_tls_ucopy_loading __attribute__((tls_model("initial-exec")));

int kiln_unwind_copy_init(void) {
  if (!atomic_load_explicit(&kiln_ucopy_tried, memory_order_acquire)) {
    if (kiln_tls_ucopy_loading) return -EBUSY; /* asked again from inside this thread's own load */
    pthread_mutex_lock(&kiln_ucopy_load_lock);
    if (!atomic_load_explicit(&kiln_ucopy_tried, memory_order_relaxed)) {
      kiln_tls_ucopy_loading = true;
      kiln_ucopy_load();
      kiln_tls_ucopy_loading = false;
      atomic_store_explicit(&kiln_ucopy_tried, true, memory_order_release);
    }
    pthread_mutex_unlock(&kiln_ucopy_load_lock);
  }
  return kiln_ucopy.ok ? 0 : -ENOENT;
}

static int kiln_ucopy_libunwind(const kiln_regs_t *regs, const uint8_t *stack, size_t len, uint64_t *pcs,
                                int max, unsigned *flags) {
  kiln_ucopy_refresh();
  kiln_ucopy_arg_t a = {regs, stack, regs->r[KILN_REG_RSP], len, false};
  unw_cursor_t c;
  int n = 1;
  pcs[0] = regs->r[KILN_REG_RIP] + 1;
  kiln_tls_in_copy_unwind = 1;
  if (kiln_ucopy.init_remote(&c, kiln_ucopy.as, &a) == 0) {
    while (kiln_ucopy.step(&c) > 0) {
      unw_word_t ip = 0;
      if (kiln_ucopy.get_reg(&c, UNW_REG_IP, &ip) < 0 || ip < 4096) break;
      if (n == max) {
        *flags |= KILN_STACK_TRUNCATED;
        break;
      }
      pcs[n++] = ip;
    }
  }
  kiln_tls_in_copy_unwind = 0;
  if (a.beyond) *flags |= KILN_STACK_TRUNCATED | KILN_STACK_COPY_ENDED;
  return n;
}

/* Compilers leave frame pointers out of leaf functions that need no stack
 * (gcc 12 even with -fno-omit-frame-pointer): rbp is then the caller's
 * frame and the leaf's return address sits at [rsp]. Accept that word only
 * if the instruction before it is a direct call (E8 rel32) to a function
 * starting at most 64 KiB below the interrupted pc. */
static uint64_t kiln_ucopy_fp_leaf(uint64_t ip, const uint8_t *stack, size_t len) {
  uint64_t ret;
  unsigned char call[5];
  if (len < 8) return 0;
  memcpy(&ret, stack, 8);
  if (ret < 4096 || !kiln_ucopy_peek(ret - 5, call, 5) || call[0] != 0xe8) return 0;
  int32_t rel;
  memcpy(&rel, call + 1, 4);
  uint64_t target = ret + (uint64_t)(int64_t)rel;
  return target <= ip && ip - target < 65536 ? ret : 0;
}

static int kiln_ucopy_fp(const kiln_regs_t *regs, const uint8_t *stack, size_t len, uint64_t *pcs, int max,
                         unsigned *flags) {
  uint64_t sp = regs->r[KILN_REG_RSP], fp = regs->r[KILN_REG_RBP];
  int n = 1;
  pcs[0] = regs->r[KILN_REG_RIP] + 1;
  uint64_t leaf_ret = kiln_ucopy_fp_leaf(regs->r[KILN_REG_RIP], stack, len);
  if (leaf_ret != 0 && max > 1) pcs[n++] = leaf_ret;
  while (!(fp & 7) && fp >= sp) {
    if (len < 16 || fp - sp > len - 16) {
      if (fp - sp < (64u << 20)) /* the chain goes on past the copy */
        *flags |= KILN_STACK_TRUNCATED | KILN_STACK_COPY_ENDED;
      break;
    }
    uint64_t frame[2];
    memcpy(frame, stack + (fp - sp), 16);
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

bool kiln_unwind_copy_loaded(void) { return kiln_ucopy.ok; }

int kiln_unwind_copy(kiln_unwind_kind_t kind, const kiln_regs_t *regs, const uint8_t *stack, size_t len,
                     uint64_t *pcs, int max, unsigned *flags) {
  if (max < 1) return 0;
  /* Loaded at the first copy that needs it (normal context: the collector,
   * a dump's drain; never a signal handler): a short process whose samples
   * are all kiln's own start never maps it (0.3 ms a process). What the
   * loader and libunwind allocate is kiln's, from kiln's pool. */
  if (kind == KILN_UNWIND_LIBUNWIND && !atomic_load_explicit(&kiln_ucopy_tried, memory_order_acquire)) {
    kiln_heap_guard_enter();
    kiln_tls_own_pool++;
    kiln_unwind_copy_init();
    kiln_tls_own_pool--;
    kiln_heap_guard_leave();
  }
  kiln_ucopy.pid = getpid();
  if (kind == KILN_UNWIND_LIBUNWIND && kiln_ucopy.ok) return kiln_ucopy_libunwind(regs, stack, len, pcs, max, flags);
  return kiln_ucopy_fp(regs, stack, len, pcs, max, flags);
}

void kiln_unwind_copy_after_fork_child(void) {
  /* The per-thread cache was the parent collector's thread's: this child's
   * collector is a new thread with an empty one. The load's lock is new
   * (a load another thread had under way is not this child's). */
  pthread_mutex_init(&kiln_ucopy_load_lock, NULL);
}
