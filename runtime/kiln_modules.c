/* kiln_modules.c — the loaded ELF modules, as dl_iterate_phdr lists them,
 * kept after dlclose so that samples taken in a plugin that is gone are
 * still named. Refreshed at start, after each dlopen, before each dlclose
 * and at dump time; all in normal context, under one mutex. */
#include "kiln_internal.h"

#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

enum { KILN_MODULES_MAX = 8192 };

static pthread_mutex_t kiln_modules_lock = PTHREAD_MUTEX_INITIALIZER;
static kiln_chunks_t kiln_modules_list; /* KILN_MODULES_MAX, mapped as modules come */
static bool kiln_modules_ready;
#define kiln_modules_get(i) ((kiln_module_t *)kiln_chunks_at(&kiln_modules_list, (i)))
static _Atomic size_t kiln_modules_n;
static kiln_arena_t kiln_modules_names;
static uint64_t kiln_modules_gen;
static bool *kiln_modules_seen;

int kiln_modules_init(void) {
  pthread_mutex_lock(&kiln_modules_lock);
  int rc = 0;
  if (!kiln_modules_ready) {
    kiln_chunks_init(&kiln_modules_list, sizeof(kiln_module_t), KILN_MODULES_MAX);
    if (kiln_modules_seen == NULL) kiln_modules_seen = kiln_mem_map(KILN_MODULES_MAX);
    if (kiln_chunks_get(&kiln_modules_list, 0) == NULL || kiln_modules_seen == NULL ||
        (kiln_modules_names.first == 0 && kiln_arena_init(&kiln_modules_names, 16u << 10, 16u << 20) < 0))
      rc = -1;
    else
      kiln_modules_ready = true;
  }
  pthread_mutex_unlock(&kiln_modules_lock);
  if (rc == 0) kiln_modules_refresh();
  return rc;
}

static const char *kiln_modules_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = kiln_arena_alloc(&kiln_modules_names, n);
  if (p == NULL) return "";
  memcpy(p, s, n);
  return p;
}

/* The GNU build-id from the module's PT_NOTE segments, read in memory (the
 * loader maps them), as hex: what pprof's mappings and the tool's DWARF
 * lookup match files by. */
static void kiln_modules_build_id(const struct dl_phdr_info *info, char *out, size_t cap) {
  out[0] = '\0';
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE || ph->p_memsz < sizeof(ElfW(Nhdr))) continue;
    const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
    while (end - p >= (ptrdiff_t)sizeof(ElfW(Nhdr))) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
      size_t nsz = (nh->n_namesz + 3) & ~3u, dsz = (nh->n_descsz + 3) & ~3u;
      const char *name = p + sizeof *nh, *desc = name + nsz;
      if (nsz > (size_t)(end - name) || dsz > (size_t)(end - desc)) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
          nh->n_descsz * 2 < cap) {
        static const char hex[] = "0123456789abcdef";
        for (unsigned k = 0; k < nh->n_descsz; k++) {
          out[2 * k] = hex[(unsigned char)desc[k] >> 4];
          out[2 * k + 1] = hex[(unsigned char)desc[k] & 15];
        }
        out[2 * nh->n_descsz] = '\0';
        return;
      }
      p = desc + dsz;
    }
  }
}

static int kiln_modules_visit(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size;
  bool *first = ctx;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  uint64_t file_off = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (a < lo) {
      lo = a;
      file_off = ph->p_offset;
    }
    if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
  }
  bool is_main = *first;
  *first = false;
  if (hi == 0) return 0;
  const char *path = info->dlpi_name ? info->dlpi_name : "";
  size_t n = atomic_load_explicit(&kiln_modules_n, memory_order_relaxed);
  for (size_t i = 0; i < n; i++) {
    kiln_module_t *m = kiln_modules_get(i);
    if (!m->closed && m->base == info->dlpi_addr && m->lo == lo && m->hi == hi) {
      kiln_modules_seen[i] = true;
      return 0;
    }
  }
  kiln_module_t *m = n < KILN_MODULES_MAX ? kiln_chunks_get(&kiln_modules_list, n) : NULL;
  if (m == NULL) return 0;
  memset(m, 0, sizeof *m);
  uintptr_t vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
  char exe[4096];
  if (vdso != 0 && vdso >= lo && vdso < hi) {
    m->mem_ehdr = (const void *)vdso;
    m->path = "";
    m->name = "[vdso]";
  } else {
    if (is_main && path[0] == '\0') {
      ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
      exe[k > 0 ? k : 0] = '\0';
      path = exe;
    }
    m->path = kiln_modules_strdup(path);
    const char *slash = strrchr(m->path, '/');
    m->name = slash ? slash + 1 : m->path;
    if (m->name[0] == '\0') m->name = "[unknown]";
  }
  m->base = info->dlpi_addr;
  m->file_off = file_off;
  kiln_modules_build_id(info, m->build_id, sizeof m->build_id);
  m->lo = lo;
  m->hi = hi;
  m->gen = kiln_modules_gen;
  kiln_modules_seen[n] = true;
  atomic_store_explicit(&kiln_modules_n, n + 1, memory_order_release);
  return 0;
}

void kiln_modules_refresh(void) {
  if (!kiln_modules_ready) return;
  pthread_mutex_lock(&kiln_modules_lock);
  size_t n = atomic_load_explicit(&kiln_modules_n, memory_order_relaxed);
  memset(kiln_modules_seen, 0, KILN_MODULES_MAX);
  kiln_modules_gen++;
  bool first = true;
  dl_iterate_phdr(kiln_modules_visit, &first);
  for (size_t i = 0; i < n; i++)
    if (!kiln_modules_seen[i]) kiln_modules_get(i)->closed = true;
  pthread_mutex_unlock(&kiln_modules_lock);
}

const kiln_module_t *kiln_modules_find(uintptr_t pc) {
  size_t n = atomic_load_explicit(&kiln_modules_n, memory_order_acquire);
  const kiln_module_t *closed = NULL;
  /* Newest first: an address reused after dlclose names the newer module
   * among the open ones, else the most recently closed. */
  for (size_t i = n; i-- > 0;) {
    const kiln_module_t *m = kiln_modules_get(i);
    if (pc < m->lo || pc >= m->hi) continue;
    if (!m->closed) return m;
    if (closed == NULL) closed = m;
  }
  return closed;
}

void kiln_modules_after_fork_child(void) {
  /* Another thread may have held the lock at fork: it is gone. */
  pthread_mutex_init(&kiln_modules_lock, NULL);
}

size_t kiln_modules_count(void) {
  return atomic_load_explicit(&kiln_modules_n, memory_order_acquire);
}

const kiln_module_t *kiln_modules_at(size_t i) {
  return i < kiln_modules_count() ? kiln_modules_get(i) : NULL;
}

size_t kiln_modules_index(const kiln_module_t *m) {
  return m != NULL ? kiln_chunks_index(&kiln_modules_list, m) : (size_t)-1;
}
