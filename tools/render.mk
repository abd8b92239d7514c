# render.mk — extra rules for the offline tool (tools/), included by the
# Makefile: the libFuzzer builds of the tool's parsers, the pprof tool the
# conversion test checks against, the golden re-record target and the
# benchmark's input generator.
#   make fuzz                  longer fuzz run (FUZZ_SECONDS, default 300)
#   make render-golden         re-record tests/render/golden/ from build/kiln
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_BIN     := $(BUILD)/tests/render/fuzz_folded
# One libFuzzer binary per parser the tool has: folded text, meta.json, the
# names in an output directory (and the dump-signal grammar).
FUZZ_BINS    := $(FUZZ_BIN) $(BUILD)/tests/render/fuzz_meta $(BUILD)/tests/render/fuzz_sets
FUZZ_TOOLS   := $(filter-out tools/main.c,$(TOOLS_SRC))
PPROF_BIN    := $(BUILD)/pprof
GEN_FOLDED   := $(BUILD)/tests/bench/gen_folded

RENDER_TEST_DEPS := $(BUILD)/kiln $(FUZZ_BINS) $(PPROF_BIN)

.PHONY: fuzz render-golden
$(BUILD)/tests/render/fuzz_%: tests/render/fuzz_%.c $(FUZZ_TOOLS) tools/kiln.h runtime/kiln_contract.h | $(BUILD)/.deps-test
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -O1 -std=c11 -D_GNU_SOURCE -Itools -Iruntime \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -o $@ $< $(FUZZ_TOOLS) $(LIBS_TOOL)

# FUZZ_TARGET=meta or sets fuzzes the other parsers.
FUZZ_TARGET  ?= folded
fuzz: $(FUZZ_BINS)
	@mkdir -p $(BUILD)/fuzz-corpus-$(FUZZ_TARGET)
	@cp -n tests/render/input/*.folded $(BUILD)/fuzz-corpus-$(FUZZ_TARGET)/ 2>/dev/null || true
	$(BUILD)/tests/render/fuzz_$(FUZZ_TARGET) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  -timeout=10 $(BUILD)/fuzz-corpus-$(FUZZ_TARGET)

# pprof from Debian's golang-github-google-pprof-dev, built offline.
$(PPROF_BIN): | $(BUILD)/.deps-test
	@mkdir -p $(@D)
	GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE=$(abspath $(BUILD))/gocache \
	  go build -o $@ github.com/google/pprof

render-golden: $(BUILD)/kiln
	KILN_BUILD=$(BUILD) bash tests/render/golden.sh --record

$(GEN_FOLDED): tests/bench/gen_folded.c | $(BUILD)/.deps-build
	@mkdir -p $(@D)
	$(CC) -O2 -std=c11 $(WARN) -D_GNU_SOURCE -o $@ $<
bench: $(GEN_FOLDED)
