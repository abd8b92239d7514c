/* kiln_libc.c — the real libc functions behind the names kiln interposes.
 * Both the runtime (its own sigaction and pthread_create must not reach
 * the interposers) and the preload layer call through these pointers.
 * Resolved with dlsym(RTLD_NEXT), which works whether kiln is preloaded,
 * linked as a shared library or linked statically into the program.
 * Resolution runs in normal context, before any handler is installed. */
#include "kiln_internal.h"

#include <dlfcn.h>

kiln_libc_t kiln_libc;

/* glibc's own names for its allocator. A strong reference on purpose: in
 * a program linked with -static it pulls glibc's malloc in beside kiln's,
 * and the duplicate definition stops the link there, instead of leaving
 * kiln's malloc with nothing to forward to. (kiln needs the dynamic
 * loader: it is linked into dynamically linked programs only.) */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static void *kiln_libc_sym(const char *name) {
  void *p = dlsym(RTLD_NEXT, name);
  if (p == NULL) p = dlsym(RTLD_DEFAULT, name);
  return p;
}

void kiln_libc_resolve(void) {
  static _Atomic int done;
  if (atomic_load_explicit(&done, memory_order_acquire)) return;
  kiln_libc_t l;
  *(void **)&l.sigaction = kiln_libc_sym("sigaction");
  *(void **)&l.sigprocmask = kiln_libc_sym("sigprocmask");
  *(void **)&l.signal = kiln_libc_sym("signal");
  *(void **)&l.pthread_create = kiln_libc_sym("pthread_create");
  *(void **)&l.dlopen = kiln_libc_sym("dlopen");
  *(void **)&l.dlclose = kiln_libc_sym("dlclose");
  *(void **)&l.dl_iterate_phdr = kiln_libc_sym("dl_iterate_phdr");
  *(void **)&l.execve = kiln_libc_sym("execve");
  *(void **)&l.execvpe = kiln_libc_sym("execvpe");
  *(void **)&l.fexecve = kiln_libc_sym("fexecve");
  *(void **)&l.setuid = kiln_libc_sym("setuid");
  *(void **)&l.seteuid = kiln_libc_sym("seteuid");
  *(void **)&l.setreuid = kiln_libc_sym("setreuid");
  *(void **)&l.setresuid = kiln_libc_sym("setresuid");
  *(void **)&l.setgid = kiln_libc_sym("setgid");
  *(void **)&l.setegid = kiln_libc_sym("setegid");
  *(void **)&l.setregid = kiln_libc_sym("setregid");
  *(void **)&l.setresgid = kiln_libc_sym("setresgid");
  *(void **)&l.setgroups = kiln_libc_sym("setgroups");
  *(void **)&l.initgroups = kiln_libc_sym("initgroups");
  /* The lock functions (dlsym gives each one's default version: the
   * condition variables of GLIBC_2.3.2, not the old compat ones). */
  *(void **)&l.mutex_lock = kiln_libc_sym("pthread_mutex_lock");
  *(void **)&l.mutex_trylock = kiln_libc_sym("pthread_mutex_trylock");
  *(void **)&l.mutex_timedlock = kiln_libc_sym("pthread_mutex_timedlock");
  *(void **)&l.mutex_clocklock = kiln_libc_sym("pthread_mutex_clocklock");
  *(void **)&l.rwlock_rdlock = kiln_libc_sym("pthread_rwlock_rdlock");
  *(void **)&l.rwlock_wrlock = kiln_libc_sym("pthread_rwlock_wrlock");
  *(void **)&l.rwlock_tryrdlock = kiln_libc_sym("pthread_rwlock_tryrdlock");
  *(void **)&l.rwlock_trywrlock = kiln_libc_sym("pthread_rwlock_trywrlock");
  *(void **)&l.rwlock_timedrdlock = kiln_libc_sym("pthread_rwlock_timedrdlock");
  *(void **)&l.rwlock_timedwrlock = kiln_libc_sym("pthread_rwlock_timedwrlock");
  *(void **)&l.rwlock_clockrdlock = kiln_libc_sym("pthread_rwlock_clockrdlock");
  *(void **)&l.rwlock_clockwrlock = kiln_libc_sym("pthread_rwlock_clockwrlock");
  *(void **)&l.cond_wait = kiln_libc_sym("pthread_cond_wait");
  *(void **)&l.cond_timedwait = kiln_libc_sym("pthread_cond_timedwait");
  *(void **)&l.cond_clockwait = kiln_libc_sym("pthread_cond_clockwait");
  *(void **)&l.sem_wait = kiln_libc_sym("sem_wait");
  *(void **)&l.sem_trywait = kiln_libc_sym("sem_trywait");
  *(void **)&l.sem_timedwait = kiln_libc_sym("sem_timedwait");
  *(void **)&l.sem_clockwait = kiln_libc_sym("sem_clockwait");
  /* dlsym may itself allocate: those calls are served by the preload's
   * bootstrap arena until this assignment completes. */
  *(void **)&l.malloc = kiln_libc_sym("malloc");
  *(void **)&l.free = kiln_libc_sym("free");
  *(void **)&l.calloc = kiln_libc_sym("calloc");
  *(void **)&l.realloc = kiln_libc_sym("realloc");
  *(void **)&l.reallocarray = kiln_libc_sym("reallocarray");
  *(void **)&l.posix_memalign = kiln_libc_sym("posix_memalign");
  *(void **)&l.aligned_alloc = kiln_libc_sym("aligned_alloc");
  *(void **)&l.memalign = kiln_libc_sym("memalign");
  *(void **)&l.valloc = kiln_libc_sym("valloc");
  *(void **)&l.pvalloc = kiln_libc_sym("pvalloc");
  *(void **)&l.malloc_usable_size = kiln_libc_sym("malloc_usable_size");
  /* dlsym found nothing (a loader that does not know RTLD_NEXT): glibc's
   * own entry points for what it has them. */
  if (l.malloc == NULL) l.malloc = __libc_malloc;
  if (l.free == NULL) l.free = __libc_free;
  if (l.calloc == NULL) l.calloc = __libc_calloc;
  if (l.realloc == NULL) l.realloc = __libc_realloc;
  if (l.memalign == NULL) l.memalign = __libc_memalign;
  if (l.valloc == NULL) l.valloc = __libc_valloc;
  if (l.pvalloc == NULL) l.pvalloc = __libc_pvalloc;
  kiln_libc = l;
  atomic_store_explicit(&done, 1, memory_order_release);
}
