/* fuzz_meta.c — libFuzzer entry for the meta.json parser (tools/meta.c):
 * any bytes must give either a parse error or entries whose lookups agree
 * with what was parsed (exact integers, decoded strings). Built with ASan
 * and UBSan; the bounded run is part of 'make test'. */
#include "kiln.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kiln_meta_t m;
    if (kiln_meta_parse(&m, (const char *)data, size, "fuzz", true) != 0) {
        if (m.count != 0 || m.entries != NULL)
            abort(); /* a failed parse leaves nothing behind */
        return 0;
    }
    for (size_t i = 0; i < m.count; i++) {
        const kiln_meta_entry_t *e = &m.entries[i], *got = kiln_meta_get(&m, e->key);
        uint64_t u;
        double secs;
        if (!got || strcmp(got->key, e->key) != 0)
            abort();
        if (e->type == KILN_META_NUMBER && e->is_u64) {
            /* The exact value is the decimal text itself. */
            char digits[32];
            snprintf(digits, sizeof digits, "%llu", (unsigned long long)e->u64);
            if (got == e && (strcmp(digits, e->value) != 0 || kiln_meta_u64(&m, e->key, &u) != 0 ||
                             u != e->u64))
                abort();
        }
        kiln_meta_seconds(&m, e->key, &secs);
        kiln_meta_str(&m, e->key);
    }
    kiln_meta_free(&m);
    return 0;
}
