# Unit tests and the runtime modules each links (leaves it needs only).
RT := $(BUILD)/runtime
$(eval $(call kiln_unit_test,test_ring,$(RT)/kiln_ring.o,-lpthread))
$(eval $(call kiln_unit_test,test_stacktab,$(RT)/kiln_stacktab.o $(RT)/kiln_mem.o $(RT)/kiln_fmt.o,-lpthread -lm))
$(eval $(call kiln_unit_test,test_options,$(RT)/kiln_options.o $(RT)/kiln_log.o $(RT)/kiln_fmt.o,-lm))
$(eval $(call kiln_unit_test,test_symbols,$(RT)/kiln_symbols.o $(RT)/kiln_syscalls.o $(RT)/kiln_ehframe.o $(RT)/kiln_modules.o $(RT)/kiln_mem.o $(RT)/kiln_log.o $(RT)/kiln_fmt.o,-ldl -lpthread -lm))
$(eval $(call kiln_unit_test,test_folded,$(RT)/kiln_folded.o $(RT)/kiln_stacktab.o $(RT)/kiln_symbols.o $(RT)/kiln_syscalls.o $(RT)/kiln_ehframe.o $(RT)/kiln_modules.o $(RT)/kiln_mem.o $(RT)/kiln_log.o $(RT)/kiln_fmt.o $(RT)/kiln_out.o,-ldl -lpthread -lm))
# The whole runtime, linked statically, with a malloc that counts calls made
# from inside the SIGPROF handler.
$(eval $(call kiln_unit_test,test_signal_nomalloc,$(BUILD)/libkiln.a,-lunwind -ldl -lpthread -lm))
$(eval $(call kiln_unit_test,test_suppress,$(RT)/kiln_suppress.o $(RT)/kiln_symbols.o $(RT)/kiln_syscalls.o $(RT)/kiln_ehframe.o $(RT)/kiln_modules.o $(RT)/kiln_mem.o $(RT)/kiln_log.o $(RT)/kiln_fmt.o,-ldl -lpthread -lm))
$(eval $(call kiln_unit_test,test_fmt,$(RT)/kiln_fmt.o,-lm))
$(eval $(call kiln_unit_test,test_livemap,$(RT)/kiln_livemap.o $(RT)/kiln_mem.o $(RT)/kiln_fmt.o,-lpthread -lm))
