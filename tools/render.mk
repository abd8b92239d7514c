# render.mk — extra rules for the offline tool (tools/), included by the
# Makefile: the libFuzzer build of the folded parser, the pprof tool the
# conversion test checks against, the golden re-record target and the
# benchmark's input generator.
#   make fuzz                  longer fuzz run (FUZZ_SECONDS, default 300)
#   make render-golden         re-record tests/render/golden/ from build/kiln
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_BIN     := $(BUILD)/tests/render/fuzz_folded
FUZZ_SRC     := tests/render/fuzz_folded.c $(filter-out tools/main.c,$(TOOLS_SRC))
PPROF_BIN    := $(BUILD)/pprof
GEN_FOLDED   := $(BUILD)/tests/bench/gen_folded

RENDER_TEST_DEPS := $(BUILD)/kiln $(FUZZ_BIN) $(PPROF_BIN)

.PHONY: fuzz render-golden
$(FUZZ_BIN): $(FUZZ_SRC) tools/kiln.h | $(BUILD)/.deps-test
	@mkdir -p $(@D)
	$(FUZZ_CC) -g -O1 -std=c11 -D_GNU_SOURCE -Itools \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -o $@ $(FUZZ_SRC) -lz -lm

fuzz: $(FUZZ_BIN)
	@mkdir -p $(BUILD)/fuzz-corpus
	@cp -n tests/render/input/*.folded $(BUILD)/fuzz-corpus/ 2>/dev/null || true
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
	  $(BUILD)/fuzz-corpus

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

# The report page's script and style, as C strings (committed, regenerated
# when either changes).
tools/report_assets.c: tools/report_page.js tools/report_page.css tools/report_gen.sh
	sh tools/report_gen.sh tools/report_page.js tools/report_page.css > $@.tmp && mv $@.tmp $@
