# kiln — plain Makefile. Everything is built under build/.
#   make            build/libkiln.so, build/libkiln.a, build/kiln
#   make test       unit + integration + renderer tests; ends with "N passed, N failed"
#   make demo       profile the examples, write their profiles and flamegraphs
#   make bench      overhead ratios against unprofiled runs and peers
#   make install PREFIX=/usr/local
# Missing Debian packages are installed when run as root (see 'deps').

PREFIX     ?= /usr/local
CC         ?= cc
CXX        ?= c++
OPT        ?= -O2
CFLAGS     ?= $(OPT) -g
CXXFLAGS   ?= $(OPT) -g
BUILD      ?= build
# Sampling rate used by the demo.
DEMO_HZ    ?= 999

WARN       := -Wall -Wextra -Wpedantic
KILN_CFLAGS := -std=c11 $(WARN) -fPIC -fvisibility=hidden -fno-omit-frame-pointer -D_GNU_SOURCE \
               -Iinclude -Iruntime -MMD -MP
LIBS_RT    := -lunwind -lpthread -ldl
# The tool: zlib (pprof), libdw (source lines, inlined frames), libstdc++'s
# demangler for DWARF's linkage names.
LIBS_TOOL  := -lz -lm -ldw -lelf -lstdc++

# Debian packages: what building needs, and what the tests add.
DEPS_BUILD := gcc g++ make pkg-config libunwind-dev zlib1g-dev liblzma-dev libdw-dev
# The real-program suite (tests/real): the programs, their load generators,
# and perf to check kiln's profiles against.
DEPS_REAL  := linux-perf perl sqlite3 xz-utils git bash nginx redis-server redis-tools \
              apache2-utils
DEPS_TEST  := libxml2-utils valgrind google-perftools libgoogle-perftools-dev \
              libjemalloc2 libtcmalloc-minimal4 libcmocka-dev clang \
              chromium golang-go golang-github-google-pprof-dev heaptrack \
              python3 nginx curl strace $(DEPS_REAL)

RUNTIME_SRC := $(sort $(wildcard runtime/*.c))
PRELOAD_SRC := $(sort $(wildcard preload/*.c))
TOOLS_SRC   := $(sort $(wildcard tools/*.c))
RUNTIME_OBJ := $(RUNTIME_SRC:%.c=$(BUILD)/%.o)
PRELOAD_OBJ := $(PRELOAD_SRC:%.c=$(BUILD)/%.o)
TOOLS_OBJ   := $(TOOLS_SRC:%.c=$(BUILD)/%.o)
# libkiln.a is linked into programs that start profiling themselves: it has
# the interposers but not the preload's start-at-load constructor.
PRELOAD_START_OBJ := $(BUILD)/preload/kiln_preload.o
LINK_OBJ    := $(RUNTIME_OBJ) $(filter-out $(PRELOAD_START_OBJ),$(PRELOAD_OBJ))

.PHONY: all deps deps-test test demo bench install clean asan tsan check-contracts
all: deps $(BUILD)/libkiln.so $(BUILD)/libkiln.a $(BUILD)/kiln

# ---------------------------------------------------------------- deps
# Installs what is missing with apt-get when root; otherwise says what to run.
define kiln_install_pkgs
@if command -v dpkg >/dev/null 2>&1; then \
  missing=""; \
  for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
  if [ -n "$$missing" ]; then \
    if [ "$$(id -u)" = 0 ]; then \
      echo "kiln: installing Debian packages:$$missing"; \
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
    else \
      echo "kiln: missing Debian packages:$$missing (run: sudo apt-get install$$missing)" >&2; \
      exit 1; \
    fi; \
  fi; \
else \
  echo "kiln: not a Debian system; make sure these are installed: $(1)" >&2; \
fi
endef

$(BUILD)/.deps-build:
	$(call kiln_install_pkgs,$(DEPS_BUILD))
	@mkdir -p $(BUILD) && touch $@
$(BUILD)/.deps-test: $(BUILD)/.deps-build
	$(call kiln_install_pkgs,$(DEPS_TEST))
	@touch $@
deps: $(BUILD)/.deps-build
deps-test: $(BUILD)/.deps-test

# ---------------------------------------------------------------- libraries
$(BUILD)/runtime/%.o: runtime/%.c | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KILN_CFLAGS) -c $< -o $@
$(BUILD)/preload/%.o: preload/%.c | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(KILN_CFLAGS) -c $< -o $@

# The system call names of wall mode's "[wait: NAME]" frames, from the
# C library's headers (kiln_syscalls.c).
$(BUILD)/gen/kiln_syscalls.inc: Makefile | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	printf '#include <sys/syscall.h>\n' | $(CC) -E -dM - | \
	  awk '$$2 ~ /^__NR_/ && $$3 ~ /^[0-9]+$$/ { n = $$2; sub(/^__NR_/, "", n); print $$3, n }' | \
	  sort -n | awk '{ printf "    [%s] = \"%s\",\n", $$1, $$2 }' > $@.tmp && mv $@.tmp $@
$(BUILD)/runtime/kiln_syscalls.o: $(BUILD)/gen/kiln_syscalls.inc
$(BUILD)/runtime/kiln_syscalls.o: KILN_CFLAGS += -I$(BUILD)/gen # (CFLAGS is set on the sanitizer builds' command line)

# The interposers keep their frames (no tail calls), so that a CPU sample
# inside the hooks names the call the program made (kiln_collector.c).
$(BUILD)/preload/kiln_malloc.o: CFLAGS += -fno-optimize-sibling-calls

$(BUILD)/libkiln.so: $(RUNTIME_OBJ) $(PRELOAD_OBJ) preload/kiln.map
	$(CC) -shared -o $@ $(RUNTIME_OBJ) $(PRELOAD_OBJ) \
	  -Wl,--version-script=preload/kiln.map -Wl,-z,now -Wl,-z,nodelete $(LIBS_RT)
$(BUILD)/libkiln.a: $(LINK_OBJ)
	@rm -f $@
	ar rcs $@ $^

# ---------------------------------------------------------------- the tool
$(BUILD)/tools/%.o: tools/%.c | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -std=c11 $(WARN) -D_GNU_SOURCE -Itools -Iruntime -MMD -MP -c $< -o $@
$(BUILD)/kiln: $(TOOLS_OBJ)
	$(CC) $(CFLAGS) -o $@ $(TOOLS_OBJ) $(LIBS_TOOL)

# ---------------------------------------------------------------- examples
include examples/examples.mk

# ---------------------------------------------------------------- tests
include tests/tests.mk
-include tools/render.mk

test: all examples unit-tests $(BUILD)/.deps-test $(PEER_ALLOC_EX) $(RENDER_TEST_DEPS) san-build
	@KILN_BUILD=$(BUILD) tests/run.sh

# The signal-context files' undefined symbols and the exported names
# (also part of make test).
check-contracts: all
	@KILN_BUILD=$(BUILD) bash tests/integration/test_contracts.sh

demo: all examples
	@KILN_BUILD=$(BUILD) DEMO_HZ=$(DEMO_HZ) tests/demo.sh

bench: all examples $(BUILD)/.deps-test
	@KILN_BUILD=$(BUILD) tests/bench/run.sh

# ---------------------------------------------------------------- install
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	  $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/kiln $(DESTDIR)$(PREFIX)/bin/kiln
	install -m 755 $(BUILD)/libkiln.so $(DESTDIR)$(PREFIX)/lib/libkiln.so
	install -m 644 $(BUILD)/libkiln.a $(DESTDIR)$(PREFIX)/lib/libkiln.a
	install -m 644 include/kiln.h $(DESTDIR)$(PREFIX)/include/kiln.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' kiln.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/kiln.pc
	sed -e 's|@PREFIX@|$(PREFIX)|g' kiln-static.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/kiln-static.pc

# Sanitizer builds, each in its own build directory (build/asan: ASan +
# UBSan; build/tsan: TSan): the unit tests, the tool (asan), and the
# examples that link libkiln.a and call the API from threads
# (symbolize_race, check_api). make test runs them
# (tests/integration/test_sanitizers.sh); make asan / make tsan run them
# alone. The interposers and what they call before the sanitizer's runtime
# is initialised (it allocates and maps from its own constructor, and
# before a new thread's state exists) stay uninstrumented (SAN_PLAIN);
# KILN_SANITIZER_FORWARD routes kiln's mmap/munmap through the sanitizer's
# and keeps a thread's hooks off until kiln starts it.
SAN_PLAIN  := preload/kiln_malloc preload/kiln_interpose preload/kiln_preload runtime/kiln_libc \
              runtime/kiln_allocmaps
SAN_UNITS  := test_ring test_stacktab test_options test_symbols test_folded test_fmt test_suppress
TSAN_UNITS := test_ring test_stacktab test_symbols test_folded
SAN_LINKED := symbolize_race check_api
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
TSAN_FLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
ifneq ($(SAN_PLAIN_CFLAGS),)
KILN_CFLAGS += -DKILN_SANITIZER_FORWARD
$(addprefix $(BUILD)/,$(SAN_PLAIN:=.o)): override CFLAGS := $(SAN_PLAIN_CFLAGS)
KILN_A_LINK = -Wl,--whole-archive $(BUILD)/libkiln.a -Wl,--no-whole-archive
endif
SAN_SUB = $(MAKE) --no-print-directory SAN_PLAIN_CFLAGS="-O1 -g -fno-optimize-sibling-calls"
.PHONY: san-build asan-build tsan-build
asan-build: $(BUILD)/.deps-build
	+@$(SAN_SUB) BUILD=build/asan CFLAGS="$(ASAN_FLAGS)" EX_CFLAGS="$(EX_CFLAGS) $(ASAN_FLAGS)" \
	  $(SAN_UNITS:%=build/asan/tests/unit/%) $(SAN_LINKED:%=build/asan/examples/%) build/asan/kiln
tsan-build: $(BUILD)/.deps-build
	+@$(SAN_SUB) BUILD=build/tsan CFLAGS="$(TSAN_FLAGS)" EX_CFLAGS="$(EX_CFLAGS) $(TSAN_FLAGS)" \
	  $(TSAN_UNITS:%=build/tsan/tests/unit/%) $(SAN_LINKED:%=build/tsan/examples/%)
san-build: asan-build tsan-build
asan: all asan-build
	@KILN_BUILD=$(BUILD) KILN_SAN=asan bash tests/integration/test_sanitizers.sh
tsan: all tsan-build
	@KILN_BUILD=$(BUILD) KILN_SAN=tsan bash tests/integration/test_sanitizers.sh

clean:
	rm -rf $(BUILD)

-include $(RUNTIME_OBJ:.o=.d) $(PRELOAD_OBJ:.o=.d) $(TOOLS_OBJ:.o=.d)
