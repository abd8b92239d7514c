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
