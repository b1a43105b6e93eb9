/*
 * fuzz_filter.c: libFuzzer target for the run search language
 * (storage/filter.c). Each input is compiled as a filter, as an order-by, and
 * as both at once. Beyond the sanitizers it checks the compiler's promises:
 * on success every ?N refers to an existing bind, every bind is well formed
 * and the SQL holds no quote, backtick or ';' except the fixed GLOB/ESCAPE
 * literals the compiler writes itself; on failure the error code and message
 * are set and the output is left empty.
 *
 * Build and run (from the repository root; new inputs go to the first dir):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include proto/prelude.h \
 *     -Istorage storage/filter.c tests/fuzz/fuzz_filter.c -o /tmp/fuzz_filter
 *   mkdir -p /tmp/corpus && /tmp/fuzz_filter -runs=100000 /tmp/corpus tests/fuzz/corpus/filter
 */
#include <stdlib.h>

#include <stdint.h>
#include <string.h>

#include "filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fixed_literals[] = {
    "'\\'", "'[0-9+.-]*'", "'*[0-9]*'", "'*[^0-9eE.+-]*'", NULL,
};

static void check_sql(const char *sql, int n_binds)
{
    size_t i = 0;
    if (!sql)
        return;
    while (sql[i]) {
        char c = sql[i];
        if (c == '?') {
            long v = 0;
            i++;
            if (sql[i] < '1' || sql[i] > '9')
                abort();
            while (sql[i] >= '0' && sql[i] <= '9' && v <= n_binds)
                v = v * 10 + (sql[i++] - '0');
            if (v > n_binds)
                abort();
        } else if (c == '\'') {
            int ok = 0;
            for (int k = 0; fixed_literals[k] && !ok; k++) {
                size_t n = strlen(fixed_literals[k]);
                if (strncmp(sql + i, fixed_literals[k], n) == 0) {
                    i += n;
                    ok = 1;
                }
            }
            if (!ok)
                abort();
        } else if (c == '"' || c == '`' || c == ';' || c == '\\' || (unsigned char)c >= 0x80 ||
                   (unsigned char)c < 0x20) {
            abort();
        } else {
            i++;
        }
    }
}

static void run(const char *filter, const char *order)
{
    struct filter_sql f;
    struct store_err err;
    int rc;

    memset(&err, 0, sizeof err);
    rc = filter_compile(filter, order, 1700000000000LL, &f, &err);
    if (rc == 0) {
        if (!f.order || f.n_binds < 0 || (f.n_binds > 0 && !f.binds))
            abort();
        for (int i = 0; i < f.n_binds; i++) {
            const struct filter_bind *b = &f.binds[i];
            if (b->type != FILTER_BIND_INT && b->type != FILTER_BIND_DOUBLE &&
                b->type != FILTER_BIND_TEXT)
                abort();
            if ((b->type == FILTER_BIND_TEXT) != (b->s != NULL))
                abort();
        }
        check_sql(f.where, f.n_binds);
        check_sql(f.order, f.n_binds);
        filter_sql_free(&f);
    } else {
        if (err.code != rc || err.msg[0] == '\0' || f.where || f.order || f.binds || f.n_binds)
            abort();
        if (rc != STORE_E_INVALID && rc != STORE_E_INTERNAL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    run(s, NULL);
    run(NULL, s);
    run(s, s);
    free(s);
    return 0;
}
