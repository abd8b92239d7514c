# Unit tests: one per runtime module, each linking only the modules it needs.
UNIT_CFLAGS := $(CFLAGS) $(KILN_CFLAGS) -Itests/unit
UT := $(BUILD)/tests/unit

# test_NAME links the objects listed in UNIT_test_NAME.
UNIT_TESTS :=
define kiln_unit_test
UNIT_TESTS += $(UT)/$(1)
$(UT)/$(1): tests/unit/$(1).c $(2) | $(BUILD)/.deps-build
	@mkdir -p $$(@D)
	$$(CC) $$(UNIT_CFLAGS) -o $$@ $$< $(2) $(3)
endef

-include tests/unit/units.mk

.PHONY: unit-tests
unit-tests: $(UNIT_TESTS)
-include $(UNIT_TESTS:=.d)

# The allocator_check example linked with other allocators (Debian's
# libjemalloc2 and libtcmalloc-minimal4, which ship no -dev symlink).
LIBDIR_MA := /usr/lib/x86_64-linux-gnu
PEER_ALLOC_EX := $(BUILD)/examples/allocator_check.jemalloc $(BUILD)/examples/allocator_check.tcmalloc
$(BUILD)/examples/allocator_check.jemalloc: examples/allocator_check.c | $(BUILD)/.deps-test
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -o $@ $< $(LIBDIR_MA)/libjemalloc.so.2
$(BUILD)/examples/allocator_check.tcmalloc: examples/allocator_check.c | $(BUILD)/.deps-test
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -o $@ $< $(LIBDIR_MA)/libtcmalloc_minimal.so.4

# The cmocka example needs libcmocka-dev, a test dependency.
PEER_ALLOC_EX += $(BUILD)/examples/check_cmocka
$(BUILD)/examples/check_cmocka: examples/check_cmocka.c $(BUILD)/libkiln.a include/kiln.h | $(BUILD)/.deps-test
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -Iinclude -o $@ $< $(BUILD)/libkiln.a -lcmocka -lunwind -ldl -lm

# The real-program suite, all of it, and its kiln-vs-perf table
# (`make test` runs its CI subset through tests/real/test_real.sh).
.PHONY: test-real
test-real: all $(BUILD)/.deps-test
	@KILN_BUILD=$(BUILD) tests/real/real.py --set all --table
