# Examples: each built twice, without frame pointers (NAME) and with (NAME.fp),
# so both unwinders are tested on both kinds of binary.
EXB := $(BUILD)/examples
# How examples link libkiln.a (sanitizer builds take all of it: Makefile).
KILN_A_LINK ?= $(BUILD)/libkiln.a
EX_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -pthread
EX_CXXFLAGS := -O2 -g -std=c++17 -Wall -Wextra -pthread
EX_C  := $(filter-out examples/plugin_%.c examples/late_start.c examples/check_%.c examples/region.c \
           examples/symbolize_race.c examples/wall_late.c,$(sort $(wildcard examples/*.c)))
EX_CC := $(filter-out examples/check_%.cc,$(sort $(wildcard examples/*.cc)))
EX_PLUGINS := $(patsubst examples/%.c,$(EXB)/%.so,$(sort $(wildcard examples/plugin_*.c)))
EX_BINS := $(patsubst examples/%.c,$(EXB)/%,$(EX_C)) $(patsubst examples/%.cc,$(EXB)/%,$(EX_CC))
EX_ALL := $(EX_BINS) $(EX_BINS:=.fp) $(EX_PLUGINS)

.PHONY: examples
examples: $(EX_ALL)

$(EXB)/%: examples/%.c examples/examples.mk | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -fomit-frame-pointer -o $@ $< -ldl -lm
$(EXB)/%.fp: examples/%.c examples/examples.mk | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -o $@ $< -ldl -lm
$(EXB)/%: examples/%.cc examples/examples.mk | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	$(CXX) $(EX_CXXFLAGS) -fomit-frame-pointer -o $@ $<
$(EXB)/%.fp: examples/%.cc examples/examples.mk | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	$(CXX) $(EX_CXXFLAGS) -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -o $@ $<
$(EXB)/plugin_%.so: examples/plugin_%.c examples/examples.mk | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -fPIC -shared -o $@ $<

# Examples that link the runtime instead of preloading it.
EX_LINKED := $(EXB)/late_start $(EXB)/late_start.fp $(EXB)/check_api $(EXB)/check_raii $(EXB)/region \
             $(EXB)/symbolize_race $(EXB)/wall_late
EX_ALL += $(EX_LINKED)
examples: $(EX_LINKED)
$(EXB)/late_start: examples/late_start.c $(BUILD)/libkiln.a examples/examples.mk
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -Iinclude -o $@ $< $(BUILD)/libkiln.a -lunwind -ldl -lm
$(EXB)/late_start.fp: examples/late_start.c $(BUILD)/libkiln.a examples/examples.mk
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -fno-omit-frame-pointer -Iinclude -o $@ $< $(BUILD)/libkiln.a -lunwind -ldl -lm
$(EXB)/wall_late: examples/wall_late.c $(BUILD)/libkiln.a include/kiln.h examples/examples.mk
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -Iinclude -o $@ $< $(BUILD)/libkiln.a -lunwind -ldl -lm
$(EXB)/check_api: examples/check_api.c $(BUILD)/libkiln.a include/kiln.h examples/examples.mk
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -Iinclude -o $@ $< $(KILN_A_LINK) -lunwind -ldl -lm
$(EXB)/check_raii: examples/check_raii.cc $(BUILD)/libkiln.a include/kiln.h examples/examples.mk
	@mkdir -p $(@D)
	$(CXX) $(EX_CXXFLAGS) -Iinclude -o $@ $< $(BUILD)/libkiln.a -lunwind -ldl -lm
$(EXB)/region: examples/region.c $(BUILD)/libkiln.a include/kiln.h examples/examples.mk
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -Iinclude -o $@ $< $(BUILD)/libkiln.a -lunwind -ldl -lm
$(EXB)/symbolize_race: examples/symbolize_race.c $(BUILD)/libkiln.a include/kiln.h examples/examples.mk
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) -Iinclude -o $@ $< $(KILN_A_LINK) -lunwind -ldl -lm
