/* test_pprof.c -- the pprof codec on real fixtures and on crafted input.
 *
 * Fixtures come from ../shared/fixtures/pprof (FIRN_FIXTURES overrides the
 * directory).  Crafted profiles are built as protobuf-c messages, broken in
 * one way each, packed, and must be refused with a message naming the rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zlib.h>

#include "pprof/pprof.h"
#include "profile.pb-c.h"
#include "fixtures.h"

/* Legacy binary CPU fixtures (MANIFEST.md: not a pprof proto) and their
 * samples/count and cpu/nanoseconds totals as `go tool pprof -raw` sums them. */
static const struct {
    const char *name;
    int64_t samples, cpu;
} legacy_fixtures[] = {
    {"pprof-fuzz_corpus_go.crc32.cpu.pb", 211, 2110000000},
    {"pprof-internal_driver_testdata_cppbench.cpu", 712, 7120000000},
    {"pprof-profile_testdata_java.cpu", 7, 70000000},
};

static int legacy_index(const char *name)
{
    for (size_t i = 0; i < sizeof legacy_fixtures / sizeof legacy_fixtures[0]; i++)
        if (strcmp(name, legacy_fixtures[i].name) == 0)
            return (int)i;
    return -1;
}

/* ---- invariants and content equality ------------------------------------ */

static void assert_invariants(const pprof_profile *p)
{
    assert_true(p->n_strings > 0);
    assert_string_equal(p->strings[0], "");
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        for (size_t j = 0; j < s->n_locations; j++)
            assert_true(s->locations[j] < p->n_locations);
        for (size_t j = 0; j < s->n_labels; j++) {
            assert_true(s->labels[j].key >= 0 && (size_t)s->labels[j].key < p->n_strings);
            assert_true(s->labels[j].str >= 0 && (size_t)s->labels[j].str < p->n_strings);
        }
    }
    for (size_t i = 0; i < p->n_locations; i++) {
        const pprof_location *l = &p->locations[i];
        assert_true(l->id != 0);
        assert_true(l->mapping == PPROF_NONE || l->mapping < p->n_mappings);
        for (size_t j = 0; j < l->n_lines; j++)
            assert_true(l->lines[j].function == PPROF_NONE || l->lines[j].function < p->n_functions);
    }
    for (size_t i = 0; i < p->n_functions; i++) {
        assert_true(p->functions[i].id != 0);
        assert_true(p->functions[i].name >= 0 && (size_t)p->functions[i].name < p->n_strings);
    }
    for (size_t i = 0; i < p->n_mappings; i++)
        assert_true(p->mappings[i].id != 0);
}

static void assert_same_content(const pprof_profile *a, const pprof_profile *b)
{
    assert_int_equal(a->n_strings, b->n_strings);
    for (size_t i = 0; i < a->n_strings; i++)
        assert_string_equal(a->strings[i], b->strings[i]);
    assert_int_equal(a->n_sample_types, b->n_sample_types);
    for (size_t i = 0; i < a->n_sample_types; i++) {
        assert_int_equal(a->sample_types[i].type, b->sample_types[i].type);
        assert_int_equal(a->sample_types[i].unit, b->sample_types[i].unit);
    }
    assert_int_equal(a->n_samples, b->n_samples);
    for (size_t i = 0; i < a->n_samples; i++) {
        const pprof_sample *x = &a->samples[i], *y = &b->samples[i];
        assert_int_equal(x->n_locations, y->n_locations);
        for (size_t j = 0; j < x->n_locations; j++)
            assert_int_equal(a->locations[x->locations[j]].id, b->locations[y->locations[j]].id);
        assert_memory_equal(x->values, y->values, a->n_sample_types * sizeof(int64_t));
        assert_int_equal(x->n_labels, y->n_labels);
        if (x->n_labels)
            assert_memory_equal(x->labels, y->labels, x->n_labels * sizeof(pprof_label));
    }
    assert_int_equal(a->n_mappings, b->n_mappings);
    for (size_t i = 0; i < a->n_mappings; i++) {
        const pprof_mapping *x = &a->mappings[i], *y = &b->mappings[i];
        assert_int_equal(x->id, y->id);
        assert_int_equal(x->memory_start, y->memory_start);
        assert_int_equal(x->memory_limit, y->memory_limit);
        assert_int_equal(x->file_offset, y->file_offset);
        assert_int_equal(x->filename, y->filename);
        assert_int_equal(x->build_id, y->build_id);
        assert_int_equal(x->has_functions, y->has_functions);
        assert_int_equal(x->has_filenames, y->has_filenames);
        assert_int_equal(x->has_line_numbers, y->has_line_numbers);
        assert_int_equal(x->has_inline_frames, y->has_inline_frames);
    }
    assert_int_equal(a->n_functions, b->n_functions);
    if (a->n_functions)
        assert_memory_equal(a->functions, b->functions, a->n_functions * sizeof(pprof_function));
    assert_int_equal(a->n_locations, b->n_locations);
    for (size_t i = 0; i < a->n_locations; i++) {
        const pprof_location *x = &a->locations[i], *y = &b->locations[i];
        assert_int_equal(x->id, y->id);
        assert_int_equal(x->mapping, y->mapping);
        assert_int_equal(x->address, y->address);
        assert_int_equal(x->is_folded, y->is_folded);
        assert_int_equal(x->n_lines, y->n_lines);
        for (size_t j = 0; j < x->n_lines; j++) {
            assert_int_equal(x->lines[j].function, y->lines[j].function);
            assert_int_equal(x->lines[j].line, y->lines[j].line);
            assert_int_equal(x->lines[j].column, y->lines[j].column);
        }
    }
    assert_int_equal(a->drop_frames, b->drop_frames);
    assert_int_equal(a->keep_frames, b->keep_frames);
    assert_int_equal(a->time_nanos, b->time_nanos);
    assert_int_equal(a->duration_nanos, b->duration_nanos);
    assert_int_equal(a->period_type.type, b->period_type.type);
    assert_int_equal(a->period_type.unit, b->period_type.unit);
    assert_int_equal(a->period, b->period);
    assert_int_equal(a->n_comments, b->n_comments);
    if (a->n_comments)
        assert_memory_equal(a->comments, b->comments, a->n_comments * sizeof(int64_t));
    assert_int_equal(a->default_sample_type, b->default_sample_type);
    assert_int_equal(a->doc_url, b->doc_url);
}

static pprof_profile *reencode(const pprof_profile *p, int level)
{
    unsigned char *buf;
    size_t len;
    firn_err err = {0};
    if (pprof_encode(p, level, &buf, &len, &err) < 0)
        fail_msg("encode: %s", err.msg);
    assert_int_equal(pprof_is_gzip(buf, len), level != 0);
    pprof_profile *q = pprof_decode(buf, len, NULL, &err);
    free(buf);
    if (!q)
        fail_msg("decode after encode: %s", err.msg);
    return q;
}

/* ---- fixtures -------------------------------------------------------------- */

static void test_every_fixture(void **state)
{
    (void)state;
    DIR *d = opendir(fixtures_dir());
    if (!d)
        fail_msg("cannot open fixtures directory %s", fixtures_dir());
    int valid = 0, legacy = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "MANIFEST.md") == 0)
            continue;
        size_t len;
        unsigned char *buf = read_fixture(e->d_name, &len);
        firn_err err = {0};
        pprof_profile *p = pprof_decode(buf, len, NULL, &err);
        free(buf);
        if (!p)
            fail_msg("%s: %s", e->d_name, err.msg);
        assert_invariants(p);
        int li = legacy_index(e->d_name);
        if (li >= 0) {
            int64_t totals[2];
            assert_int_equal(p->n_sample_types, 2);
            pprof_totals(p, totals);
            assert_int_equal(totals[0], legacy_fixtures[li].samples);
            assert_int_equal(totals[1], legacy_fixtures[li].cpu);
            legacy++;
        }
        /* Round trips, gzipped and raw, keep every field. */
        pprof_profile *q = reencode(p, -1);
        assert_same_content(p, q);
        pprof_free(q);
        q = reencode(p, 0);
        assert_same_content(p, q);
        pprof_free(q);
        pprof_free(p);
        valid++;
    }
    closedir(d);
    assert_int_equal(legacy, 3);
    assert_true(valid >= 60);
}

static void test_dotnet_function_ids_numbered(void **state)
{
    (void)state;
    pprof_profile *p = decode_fixture("pyro-pkg_og_convert_pprof_testdata_dotnet-pprof-3.pb.gz");
    assert_true(p->repairs & PPROF_REPAIR_FUNCTION_IDS);
    assert_false(p->repairs & PPROF_REPAIR_LOCATION_IDS);
    for (size_t i = 0; i < p->n_functions; i++)
        assert_int_equal(p->functions[i].id, i + 1);
    /* Location 1 referred to function 1: the first function in the table. */
    assert_string_equal(pprof_str(p, p->functions[p->locations[0].lines[0].function].name),
                        "WebApplication1.Controllers!CpuController.fib");
    pprof_free(p);
}

static void test_fixture_known_values(void **state)
{
    (void)state;
    /* Values from the fixture's MANIFEST.md row and go tool pprof -raw. */
    pprof_profile *p = decode_fixture("pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz");
    assert_int_equal(p->n_sample_types, 2);
    assert_string_equal(pprof_str(p, p->sample_types[1].type), "cpu");
    assert_string_equal(pprof_str(p, p->sample_types[1].unit), "nanoseconds");
    assert_int_equal(p->period, 10000000);
    assert_int_equal(p->time_nanos, 1619321948265140000LL);
    assert_int_equal(p->duration_nanos, 1100177167);
    assert_int_equal(p->n_samples, 7);
    assert_int_equal(p->n_locations, 29);
    int64_t totals[2];
    pprof_totals(p, totals);
    assert_int_equal(totals[0], 47);
    assert_int_equal(totals[1], 470000000);
    assert_int_equal(pprof_default_sample_index(p), 1);
    assert_int_equal(pprof_sample_type_index(p, "samples"), 0);
    assert_int_equal(pprof_sample_type_index(p, "nope"), -1);
    pprof_free(p);

    /* default_sample_type set: it wins over "the last one". */
    p = decode_fixture("pyro-pkg_pprof_testdata_heap");
    assert_int_equal(pprof_default_sample_index(p), pprof_sample_type_index(p, "alloc_space"));
    pprof_free(p);
}

/* ---- crafted profiles -------------------------------------------------------- */

typedef Firn__Pprof__Profile Msg;

static void *aalloc(firn_arena *a, size_t n)
{
    void *p = firn_arena_calloc(a, 1, n);
    assert_non_null(p);
    return p;
}

/* A small valid profile: two functions, two locations in one mapping, two
 * samples, one labeled. */
static Msg *base_msg(firn_arena *a)
{
    static char *strings[] = {"", "samples", "count", "cpu", "nanoseconds", "main", "main.go",
                              "foo", "/bin/app", "build-1", "k", "v"};
    Msg *m = aalloc(a, sizeof *m);
    firn__pprof__profile__init(m);
    m->n_string_table = sizeof strings / sizeof strings[0];
    m->string_table = aalloc(a, sizeof strings);
    memcpy(m->string_table, strings, sizeof strings);

    m->n_sample_type = 2;
    m->sample_type = aalloc(a, 2 * sizeof *m->sample_type);
    for (int i = 0; i < 2; i++) {
        m->sample_type[i] = aalloc(a, sizeof(Firn__Pprof__ValueType));
        firn__pprof__value_type__init(m->sample_type[i]);
        m->sample_type[i]->type = 1 + 2 * i;
        m->sample_type[i]->unit = 2 + 2 * i;
    }
    m->period_type = aalloc(a, sizeof(Firn__Pprof__ValueType));
    firn__pprof__value_type__init(m->period_type);
    m->period_type->type = 3;
    m->period_type->unit = 4;
    m->period = 10;
    m->time_nanos = 1000000000000000000LL;

    m->n_mapping = 1;
    m->mapping = aalloc(a, sizeof *m->mapping);
    m->mapping[0] = aalloc(a, sizeof(Firn__Pprof__Mapping));
    firn__pprof__mapping__init(m->mapping[0]);
    m->mapping[0]->id = 1;
    m->mapping[0]->memory_start = 0x1000;
    m->mapping[0]->memory_limit = 0x9000;
    m->mapping[0]->filename = 8;
    m->mapping[0]->build_id = 9;

    m->n_function = 2;
    m->function = aalloc(a, 2 * sizeof *m->function);
    for (int i = 0; i < 2; i++) {
        m->function[i] = aalloc(a, sizeof(Firn__Pprof__Function));
        firn__pprof__function__init(m->function[i]);
        m->function[i]->id = (uint64_t)i + 1;
        m->function[i]->name = i == 0 ? 5 : 7;
        m->function[i]->filename = 6;
    }

    m->n_location = 2;
    m->location = aalloc(a, 2 * sizeof *m->location);
    for (int i = 0; i < 2; i++) {
        Firn__Pprof__Location *l = aalloc(a, sizeof *l);
        firn__pprof__location__init(l);
        l->id = (uint64_t)i + 1;
        l->mapping_id = 1;
        l->address = 0x1100 + 0x100 * (uint64_t)i;
        l->n_line = 1;
        l->line = aalloc(a, sizeof *l->line);
        l->line[0] = aalloc(a, sizeof(Firn__Pprof__Line));
        firn__pprof__line__init(l->line[0]);
        l->line[0]->function_id = i == 0 ? 2 : 1; /* foo called from main */
        l->line[0]->line = 10 + 10 * i;
        m->location[i] = l;
    }

    m->n_sample = 2;
    m->sample = aalloc(a, 2 * sizeof *m->sample);
    for (int i = 0; i < 2; i++) {
        Firn__Pprof__Sample *s = aalloc(a, sizeof *s);
        firn__pprof__sample__init(s);
        s->n_location_id = i == 0 ? 2 : 1;
        s->location_id = aalloc(a, 2 * sizeof(uint64_t));
        s->location_id[0] = i == 0 ? 1 : 2;
        s->location_id[1] = 2;
        s->n_value = 2;
        s->value = aalloc(a, 2 * sizeof(int64_t));
        s->value[0] = i + 1;
        s->value[1] = 10 * (i + 1);
        if (i == 1) {
            s->n_label = 1;
            s->label = aalloc(a, sizeof *s->label);
            s->label[0] = aalloc(a, sizeof(Firn__Pprof__Label));
            firn__pprof__label__init(s->label[0]);
            s->label[0]->key = 10;
            s->label[0]->str = 11;
        }
        m->sample[i] = s;
    }
    return m;
}

static unsigned char *pack(const Msg *m, size_t *len)
{
    *len = firn__pprof__profile__get_packed_size(m);
    unsigned char *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    firn__pprof__profile__pack(m, buf);
    return buf;
}

struct bad_case {
    const char *name;
    void (*mutate)(Msg *m, firn_arena *a);
    const char *expect; /* substring of the error */
};

static void m_first_string_not_empty(Msg *m, firn_arena *a)
{
    (void)a;
    m->string_table[0] = "oops";
}
static void m_no_strings(Msg *m, firn_arena *a)
{
    (void)a;
    m->n_string_table = 0;
    m->n_sample_type = 0;
    m->n_sample = 0;
    m->n_location = 0;
    m->n_function = 0;
    m->n_mapping = 0;
    m->period_type = NULL;
}
static void m_value_count(Msg *m, firn_arena *a)
{
    (void)a;
    m->sample[1]->n_value = 1;
}
static void m_location_id_zero(Msg *m, firn_arena *a)
{
    (void)a;
    m->location[1]->id = 0;
}
static void m_duplicate_location(Msg *m, firn_arena *a)
{
    (void)a;
    m->location[1]->id = 1;
}
static void m_duplicate_function(Msg *m, firn_arena *a)
{
    (void)a;
    m->function[0]->id = 5;
    m->function[1]->id = 5;
}
static void m_missing_location(Msg *m, firn_arena *a)
{
    (void)a;
    m->sample[0]->location_id[1] = 99;
}
static void m_missing_mapping(Msg *m, firn_arena *a)
{
    (void)a;
    m->location[0]->mapping_id = 7;
}
static void m_missing_function(Msg *m, firn_arena *a)
{
    (void)a;
    m->location[1]->line[0]->function_id = 42;
}
static void m_function_name_range(Msg *m, firn_arena *a)
{
    (void)a;
    m->function[0]->name = 99;
}
static void m_negative_string(Msg *m, firn_arena *a)
{
    (void)a;
    m->function[1]->filename = -1;
}
static void m_label_key_range(Msg *m, firn_arena *a)
{
    (void)a;
    m->sample[1]->label[0]->key = 12;
}
static void m_sample_type_unit_range(Msg *m, firn_arena *a)
{
    (void)a;
    m->sample_type[1]->unit = 1000;
}
static void m_mapping_filename_range(Msg *m, firn_arena *a)
{
    (void)a;
    m->mapping[0]->filename = 12;
}
static void m_comment_range(Msg *m, firn_arena *a)
{
    m->n_comment = 1;
    m->comment = aalloc(a, sizeof(int64_t));
    m->comment[0] = 50;
}
static void m_period_type_range(Msg *m, firn_arena *a)
{
    (void)a;
    m->period_type->type = 77;
}

static const struct bad_case bad_cases[] = {
    {"first string not empty", m_first_string_not_empty, "string_table[0] must be \"\", found \"oops\""},
    {"no string table", m_no_strings, "string_table is empty"},
    {"value count", m_value_count, "sample[1]: 1 values, but 2 sample types"},
    {"location id 0", m_location_id_zero, "location[1]: id 0 is reserved"},
    {"duplicate location id", m_duplicate_location, "location[1]: duplicate id 1 (also location[0])"},
    {"duplicate function id", m_duplicate_function, "function[1]: duplicate id 5"},
    {"missing location", m_missing_location, "sample[0]: location_id 99 not found"},
    {"missing mapping", m_missing_mapping, "location[0] (id 1): mapping_id 7 not found"},
    {"missing function", m_missing_function, "location[1] (id 2): line[0]: function_id 42 not found"},
    {"function name out of range", m_function_name_range,
     "function[0] (id 1).name: string index 99 out of range (string_table has 12 entries)"},
    {"negative string index", m_negative_string, "function[1] (id 2).filename: string index -1 out of range"},
    {"label key out of range", m_label_key_range, "sample[1].label[0].key: string index 12"},
    {"sample type unit out of range", m_sample_type_unit_range, "sample_type[1].unit: string index 1000"},
    {"mapping filename out of range", m_mapping_filename_range, "mapping[0] (id 1).filename"},
    {"comment out of range", m_comment_range, "comment[0]: string index 50"},
    {"period type out of range", m_period_type_range, "period_type.type: string index 77"},
};

static void test_base_message_is_valid(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    size_t len;
    unsigned char *buf = pack(base_msg(a), &len);
    firn_err err = {0};
    pprof_profile *p = pprof_decode(buf, len, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    assert_int_equal(p->n_samples, 2);
    assert_int_equal(p->samples[0].n_locations, 2);
    assert_string_equal(pprof_str(p, p->functions[p->locations[p->samples[0].locations[0]].lines[0].function].name),
                        "foo");
    assert_int_equal(p->repairs, 0);
    pprof_free(p);
    free(buf);
    firn_arena_free(a);
}

/* The top-level fields that are not tables may come anywhere and more than
 * once, as protobuf allows: a later scalar replaces an earlier one, a
 * message field (period_type) means what protobuf-c makes of it,
 * repeated comments (packed or not) add up in order, unknown fields are
 * skipped.  Written
 * around the base message's bytes, which hold period 10 and period_type
 * (3, 4). */
static void test_header_fields_anywhere(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    size_t len;
    unsigned char *base = pack(base_msg(a), &len);
    static const unsigned char before[] = {
        (10 << 3) | 0, 7,            /* duration_nanos 7 */
        (12 << 3) | 0, 99,           /* period 99, replaced by the base's 10 */
        (13 << 3) | 0, 1,            /* comment 1 */
        0xa0, 0x06, 42,              /* unknown field 100 (tag 800), varint 42 */
    };
    static const unsigned char after[] = {
        (11 << 3) | 2, 2, (2 << 3) | 0, 2,   /* period_type { unit 2 } */
        (13 << 3) | 2, 2, 2, 5,              /* comments 2 and 5, packed */
        (15 << 3) | 0, 1,                    /* doc_url 1 */
    };
    size_t n = sizeof before + len + sizeof after;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    memcpy(buf, before, sizeof before);
    memcpy(buf + sizeof before, base, len);
    memcpy(buf + sizeof before + len, after, sizeof after);
    firn_err err = {0};
    pprof_profile *p = pprof_decode(buf, n, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    assert_int_equal(p->duration_nanos, 7);
    assert_int_equal(p->period, 10);
    assert_int_equal(p->doc_url, 1);
    assert_int_equal(p->n_comments, 3);
    assert_int_equal(p->comments[0], 1);
    assert_int_equal(p->comments[1], 2);
    assert_int_equal(p->comments[2], 5);
    /* and what protobuf-c makes of the whole message (a second period_type
     * replaces the first there) */
    Msg *whole = firn__pprof__profile__unpack(NULL, n, buf);
    assert_non_null(whole);
    assert_non_null(whole->period_type);
    assert_int_equal(p->period_type.type, whole->period_type->type);
    assert_int_equal(p->period_type.unit, whole->period_type->unit);
    assert_int_equal(p->period_type.unit, 2);
    assert_int_equal(p->duration_nanos, whole->duration_nanos);
    assert_int_equal(p->n_comments, whole->n_comment);
    firn__pprof__profile__free_unpacked(whole, NULL);
    /* the tables are the base's */
    pprof_profile *q = pprof_decode(base, len, NULL, &err);
    if (!q)
        fail_msg("%s", err.msg);
    assert_int_equal(p->n_samples, q->n_samples);
    assert_int_equal(p->n_sample_types, 2);
    for (size_t i = 0; i < p->n_samples; i++) {
        assert_int_equal(p->samples[i].n_locations, q->samples[i].n_locations);
        assert_memory_equal(p->samples[i].values, q->samples[i].values, 2 * sizeof(int64_t));
    }
    assert_string_equal(pprof_str(p, p->functions[p->locations[p->samples[0].locations[0]].lines[0].function].name),
                        "foo");
    pprof_free(q);
    pprof_free(p);
    free(buf);
    free(base);
    firn_arena_free(a);
}

static void test_invalid_profiles_rejected(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        firn_arena *a = firn_arena_new(0);
        Msg *m = base_msg(a);
        bad_cases[i].mutate(m, a);
        size_t len;
        unsigned char *buf = pack(m, &len);
        firn_err err = {0};
        pprof_profile *p = pprof_decode(buf, len, NULL, &err);
        if (p)
            fail_msg("case \"%s\": decoded, expected error \"%s\"", bad_cases[i].name, bad_cases[i].expect);
        if (!strstr(err.msg, bad_cases[i].expect))
            fail_msg("case \"%s\": error \"%s\" lacks \"%s\"", bad_cases[i].name, err.msg, bad_cases[i].expect);
        assert_int_equal(err.code, FIRN_EINVAL);
        free(buf);
        firn_arena_free(a);
    }
}

static void test_all_zero_ids_numbered_by_position(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    Msg *m = base_msg(a);
    /* Lines refer to functions by position, as the .NET profiler does. */
    m->function[0]->id = 0;
    m->function[1]->id = 0;
    size_t len;
    unsigned char *buf = pack(m, &len);
    firn_err err = {0};
    pprof_profile *p = pprof_decode(buf, len, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    assert_int_equal(p->repairs, PPROF_REPAIR_FUNCTION_IDS);
    assert_int_equal(p->functions[1].id, 2);
    assert_string_equal(pprof_str(p, p->functions[p->locations[0].lines[0].function].name), "foo");
    pprof_free(p);
    free(buf);
    firn_arena_free(a);
}

static void expect_error(const void *data, size_t len, const pprof_limits *lim, int code,
                         const char *substring)
{
    firn_err err = {0};
    pprof_profile *p = pprof_decode(data, len, lim, &err);
    if (p)
        fail_msg("decoded, expected \"%s\"", substring);
    if (!strstr(err.msg, substring))
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, substring);
    assert_int_equal(err.code, code);
}

/* Ids are 64-bit: ids past 32 bits resolve like small ones, and one that
 * is not found is named in full. */
static void test_ids_past_32_bits(void **state)
{
    (void)state;
    const uint64_t fbig = (1ull << 40) + 2, lbig = (1ull << 33) + 2;
    for (int c = 0; c < 3; c++) {
        firn_arena *a = firn_arena_new(0);
        Msg *m = base_msg(a);
        m->function[1]->id = fbig;                   /* foo */
        m->location[0]->line[0]->function_id = c == 1 ? fbig + 5 : fbig;
        m->location[1]->id = lbig;
        m->sample[0]->location_id[1] = lbig;
        m->sample[1]->location_id[0] = c == 2 ? lbig + 1 : lbig;
        size_t len;
        unsigned char *buf = pack(m, &len);
        if (c == 1) {
            expect_error(buf, len, NULL, FIRN_EINVAL,
                         "location[0] (id 1): line[0]: function_id 1099511627783 not found");
        } else if (c == 2) {
            expect_error(buf, len, NULL, FIRN_EINVAL,
                         "sample[1]: location_id 8589934595 not found");
        } else {
            firn_err err = {0};
            pprof_profile *p = pprof_decode(buf, len, NULL, &err);
            if (!p)
                fail_msg("%s", err.msg);
            assert_int_equal(p->locations[0].lines[0].function, 1);
            assert_string_equal(pprof_str(p, p->functions[1].name), "foo");
            assert_int_equal(p->locations[1].id, lbig);
            assert_int_equal(p->samples[0].n_locations, 2);
            assert_int_equal(p->samples[0].locations[0], 0);
            assert_int_equal(p->samples[0].locations[1], 1);
            assert_int_equal(p->samples[1].locations[0], 1);
            pprof_free(p);
        }
        free(buf);
        firn_arena_free(a);
    }
}

/* ---- legacy binary CPU profiles ----------------------------------------- */

/* A legacy CPU profile written word by word, in either size and byte order. */
struct legacy_buf {
    unsigned char b[2048];
    size_t n;
    unsigned size;
    bool big;
};

static void lw(struct legacy_buf *l, uint64_t v)
{
    assert_true(l->n + l->size <= sizeof l->b);
    for (unsigned i = 0; i < l->size; i++) {
        unsigned shift = l->big ? 8 * (l->size - 1 - i) : 8 * i;
        l->b[l->n++] = (unsigned char)(v >> shift);
    }
}

/* Header with the period in microseconds; java selects the Java variant. */
static void legacy_header(struct legacy_buf *l, unsigned size, bool big, bool java, uint64_t period)
{
    memset(l, 0, sizeof *l);
    l->size = size;
    l->big = big;
    lw(l, 0), lw(l, 3), lw(l, java), lw(l, period), lw(l, 0);
}

static void legacy_sample(struct legacy_buf *l, uint64_t count, size_t depth, const uint64_t *pcs)
{
    lw(l, count);
    lw(l, depth);
    for (size_t i = 0; i < depth; i++)
        lw(l, pcs[i]);
}

static void legacy_trailer_text(struct legacy_buf *l, const char *text)
{
    lw(l, 0), lw(l, 1), lw(l, 0);
    size_t n = strlen(text);
    assert_true(l->n + n <= sizeof l->b);
    memcpy(l->b + l->n, text, n);
    l->n += n;
}

static const char LEGACY_MAPS[] =
    "00400000-00500000 r-xp 00000000 08:01 1234 /usr/bin/app\n"
    "f7000000-f7010000 r-xp 00000000 08:01 99 /lib/libc.so.6\n"
    "f7010000-f7020000 rw-p 00010000 08:01 99 /lib/libc.so.6\n";

/* Addresses of sample s's stack, leaf first, with their mappings' files. */
static void expect_stack(const pprof_profile *p, size_t s, size_t depth, const uint64_t *addrs,
                         const char *const *files)
{
    assert_true(s < p->n_samples);
    assert_int_equal(p->samples[s].n_locations, depth);
    for (size_t k = 0; k < depth; k++) {
        const pprof_location *l = &p->locations[p->samples[s].locations[k]];
        assert_int_equal(l->address, addrs[k]);
        assert_int_not_equal(l->mapping, PPROF_NONE);
        assert_string_equal(pprof_str(p, p->mappings[l->mapping].filename), files[k]);
    }
}

/* Three samples, by hand:
 *   2 x [0x401010 0x402020 0x403030]   -> 0x401010 0x40201f 0x40302f
 *   1 x [0x401050 0x403030]            -> 0x401050 0x40302f
 *   4 x [0xf7001000]               -> 0xf7001000 (a leaf is not adjusted)
 * With a period of 10000 us each count is worth 10,000,000 ns: totals 7 and
 * 70,000,000; five distinct locations (0x40302f is shared); the rw-p line
 * is no mapping, so two mappings.  No second frame is on all samples and
 * no second frame is the leaf again, so pprof's clean-ups change nothing. */
static void check_legacy_cpp(unsigned size, bool big)
{
    struct legacy_buf l;
    legacy_header(&l, size, big, false, 10000);
    const uint64_t s1[] = {0x401010, 0x402020, 0x403030}, s2[] = {0x401050, 0x403030},
                   s3[] = {0xf7001000};
    legacy_sample(&l, 2, 3, s1);
    legacy_sample(&l, 1, 2, s2);
    legacy_sample(&l, 4, 1, s3);
    legacy_trailer_text(&l, LEGACY_MAPS);

    firn_err err = {0};
    pprof_profile *p = pprof_decode(l.b, l.n, NULL, &err);
    if (!p)
        fail_msg("%u-bit %s: %s", size * 8, big ? "big" : "little", err.msg);
    assert_invariants(p);
    assert_int_equal(p->n_sample_types, 2);
    assert_string_equal(pprof_str(p, p->sample_types[0].type), "samples");
    assert_string_equal(pprof_str(p, p->sample_types[1].unit), "nanoseconds");
    assert_int_equal(p->period, 10000000);
    assert_int_equal(p->n_samples, 3);
    assert_int_equal(p->n_locations, 5);
    assert_int_equal(p->n_mappings, 2);
    const int64_t want[3][2] = {{2, 20000000}, {1, 10000000}, {4, 40000000}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(p->samples[i].values[0], want[i][0]);
        assert_int_equal(p->samples[i].values[1], want[i][1]);
    }
    const char *app = "/usr/bin/app", *libc = "/lib/libc.so.6";
    expect_stack(p, 0, 3, (const uint64_t[]){0x401010, 0x40201f, 0x40302f},
                 (const char *const[]){app, app, app});
    expect_stack(p, 1, 2, (const uint64_t[]){0x401050, 0x40302f}, (const char *const[]){app, app});
    expect_stack(p, 2, 1, (const uint64_t[]){0xf7001000}, (const char *const[]){libc});
    /* Flat per binary, as go tool pprof -top names unsymbolized frames. */
    pprof_top_report t;
    assert_int_equal(pprof_top(p, 0, &t, &err), 0);
    assert_int_equal(t.total, 7);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(t.rows[0].name, "[libc.so.6]");
    assert_int_equal(t.rows[0].flat, 4);
    assert_string_equal(t.rows[1].name, "[app]");
    assert_int_equal(t.rows[1].flat, 3);
    pprof_top_free(&t);
    /* It encodes as a protobuf that decodes to the same content. */
    pprof_profile *q = reencode(p, -1);
    assert_same_content(p, q);
    pprof_free(q);
    /* Gzipped, it is read too (go tool pprof gunzips before it looks). */
    unsigned char *gz;
    size_t gz_len;
    assert_int_equal(pprof_gzip(l.b, l.n, -1, &gz, &gz_len, &err), 0);
    q = pprof_decode(gz, gz_len, NULL, &err);
    free(gz);
    if (!q)
        fail_msg("gzipped: %s", err.msg);
    assert_same_content(p, q);
    pprof_free(q);
    pprof_free(p);
}

static void test_legacy_cpu_32_little(void **state)
{
    (void)state;
    check_legacy_cpp(4, false);
}

static void test_legacy_cpu_64_big(void **state)
{
    (void)state;
    check_legacy_cpp(8, true);
}

/* pprof's clean-ups, by hand:
 *  - a second frame on every sample (a signal handler's) is dropped, twice
 *    over: [0x401000 0x409000 0x403030] and [0x401100 0x409000 0x403030]
 *    lose 0x408fff, then 0x40302f, leaving the leaves alone;
 *  - a second frame that is the leaf again (recorded twice) is dropped:
 *    with a third, different sample, [0x401200 0x401200 0x403030] becomes
 *    [0x401200 0x40302f] (0x4011ff + 1 is the leaf). */
static void test_legacy_cpu_cleanups(void **state)
{
    (void)state;
    struct legacy_buf l;
    legacy_header(&l, 8, false, false, 1000);
    legacy_sample(&l, 1, 3, (const uint64_t[]){0x401000, 0x409000, 0x403030});
    legacy_sample(&l, 1, 3, (const uint64_t[]){0x401100, 0x409000, 0x403030});
    legacy_trailer_text(&l, LEGACY_MAPS);
    firn_err err = {0};
    pprof_profile *p = pprof_decode(l.b, l.n, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    assert_invariants(p);
    const char *app = "/usr/bin/app";
    expect_stack(p, 0, 1, (const uint64_t[]){0x401000}, (const char *const[]){app});
    expect_stack(p, 1, 1, (const uint64_t[]){0x401100}, (const char *const[]){app});
    assert_int_equal(p->n_locations, 2);
    assert_int_equal(p->samples[0].values[1], 1000000);
    pprof_free(p);

    legacy_header(&l, 4, true, false, 1000);
    legacy_sample(&l, 1, 3, (const uint64_t[]){0x401200, 0x401200, 0x403030});
    legacy_sample(&l, 1, 2, (const uint64_t[]){0x401300, 0x405000});
    legacy_sample(&l, 1, 2, (const uint64_t[]){0x401400, 0x406000});
    legacy_trailer_text(&l, LEGACY_MAPS);
    p = pprof_decode(l.b, l.n, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    expect_stack(p, 0, 2, (const uint64_t[]){0x401200, 0x40302f}, (const char *const[]){app, app});
    expect_stack(p, 1, 2, (const uint64_t[]){0x401300, 0x404fff}, (const char *const[]){app, app});
    pprof_free(p);

    /* One stack written twice (the profiler's table evicted it) is one
     * sample, as go tool pprof -raw shows: 2 + 3 of [0x401000 0x401fff]. */
    legacy_header(&l, 4, false, false, 1000);
    legacy_sample(&l, 2, 2, (const uint64_t[]){0x401000, 0x402000});
    legacy_sample(&l, 1, 2, (const uint64_t[]){0x401100, 0x403000});
    legacy_sample(&l, 3, 2, (const uint64_t[]){0x401000, 0x402000});
    legacy_trailer_text(&l, LEGACY_MAPS);
    p = pprof_decode(l.b, l.n, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    assert_int_equal(p->n_samples, 2);
    expect_stack(p, 0, 2, (const uint64_t[]){0x401000, 0x401fff}, (const char *const[]){app, app});
    assert_int_equal(p->samples[0].values[0], 5);
    assert_int_equal(p->samples[0].values[1], 5000000);
    expect_stack(p, 1, 2, (const uint64_t[]){0x401100, 0x402fff}, (const char *const[]){app, app});
    assert_int_equal(p->samples[1].values[0], 1);
    pprof_free(p);
}

/* The Java variant: frame ids are not adjusted, the text names them
 * ("0xID name (file:line)" or a bare state such as "VM"), and no frame
 * keeps its id as an address.  2 x [5 6] and 1 x [7 6]: 7 is named by no
 * line, so it is an unknown frame at address 0. */
static void test_legacy_cpu_java(void **state)
{
    (void)state;
    struct legacy_buf l;
    legacy_header(&l, 4, false, true, 10000);
    legacy_sample(&l, 2, 2, (const uint64_t[]){5, 6});
    legacy_sample(&l, 1, 2, (const uint64_t[]){7, 6});
    legacy_trailer_text(&l, " 0x00000005 VM\n 0x0000006 com.example.Foo.run (Foo.java:12)\n"
                            " 0x0000009 com.example.Unused (Unused.java:1)\n");
    firn_err err = {0};
    pprof_profile *p = pprof_decode(l.b, l.n, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    assert_invariants(p);
    assert_int_equal(p->n_samples, 2);
    assert_int_equal(p->n_functions, 2);
    const pprof_location *leaf = &p->locations[p->samples[0].locations[0]];
    const pprof_location *caller = &p->locations[p->samples[0].locations[1]];
    const pprof_location *unnamed = &p->locations[p->samples[1].locations[0]];
    assert_int_equal(leaf->n_lines, 1);
    assert_int_equal(leaf->address, 0);
    assert_string_equal(pprof_str(p, p->functions[leaf->lines[0].function].name), "VM");
    assert_int_equal(caller->n_lines, 1);
    assert_int_equal(caller->lines[0].line, 12);
    const pprof_function *f = &p->functions[caller->lines[0].function];
    assert_string_equal(pprof_str(p, f->name), "com.example.Foo.run");
    assert_string_equal(pprof_str(p, f->filename), "Foo.java");
    assert_int_equal(unnamed->n_lines, 0);
    assert_int_equal(unnamed->address, 0);
    assert_int_equal(p->samples[1].values[1], 10000000);
    pprof_free(p);
}

/* Bad legacy input is refused with what and where. */
static void test_legacy_cpu_malformed(void **state)
{
    (void)state;
    struct legacy_buf l;
    /* A stack longer than what is left: sample 1 starts at byte 20 + 16. */
    legacy_header(&l, 4, false, false, 10000);
    legacy_sample(&l, 1, 2, (const uint64_t[]){0x401000, 0x402000});
    lw(&l, 1), lw(&l, 1000), lw(&l, 0x401000);
    expect_error(l.b, l.n, NULL, FIRN_EINVAL,
                 "legacy CPU profile: sample 1 at byte 36: a stack of 1000 words runs past the end");
    /* A count that is no int64. */
    legacy_header(&l, 8, false, false, 10000);
    legacy_sample(&l, UINT64_MAX, 1, (const uint64_t[]){0x401000});
    expect_error(l.b, l.n, NULL, FIRN_EINVAL, "legacy CPU profile: sample 0 at byte 40: count");
    /* count x period past int64. */
    legacy_header(&l, 8, true, false, 1000000);
    legacy_sample(&l, INT64_MAX / 2, 1, (const uint64_t[]){0x401000});
    expect_error(l.b, l.n, NULL, FIRN_EINVAL, "legacy CPU profile: sample 0: count");
    /* A period in microseconds past int64 nanoseconds. */
    legacy_header(&l, 8, false, false, UINT64_MAX / 2);
    expect_error(l.b, l.n, NULL, FIRN_EINVAL, "legacy CPU profile: byte 24: period");
    /* A half sample. */
    legacy_header(&l, 4, false, false, 10000);
    lw(&l, 1);
    expect_error(l.b, l.n, NULL, FIRN_EINVAL, "legacy CPU profile: sample 0 at byte 20: truncated");
    /* The sample cap holds. */
    pprof_limits lim;
    pprof_limits_default(&lim);
    lim.max_samples = 1;
    legacy_header(&l, 4, false, false, 10000);
    legacy_sample(&l, 1, 1, (const uint64_t[]){0x401000});
    legacy_sample(&l, 1, 1, (const uint64_t[]){0x401000});
    expect_error(l.b, l.n, &lim, FIRN_ETOOBIG, "legacy CPU profile: more than 1 samples");
    /* The memory cap holds before anything is allocated: a header and one
     * sample are 8 words, each needing tens of bytes of decode tables. */
    pprof_limits_default(&lim);
    lim.max_memory_bytes = 100;
    legacy_header(&l, 4, false, false, 10000);
    legacy_sample(&l, 1, 1, (const uint64_t[]){0x401000});
    expect_error(l.b, l.n, &lim, FIRN_ETOOBIG,
                 "legacy CPU profile: 8 words need more than the memory cap of 100 bytes");
    /* Four header words are no header: refused as not a protobuf. */
    legacy_header(&l, 4, false, false, 10000);
    expect_error(l.b, 16, NULL, FIRN_EINVAL, "not a pprof protobuf: byte 0: field number 0");
}

static void test_not_protobuf(void **state)
{
    (void)state;
    expect_error("", 0, NULL, FIRN_EINVAL, "not a pprof protobuf: the input is empty");
    const char *text = "heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [3: 4] @ 0x1 0x2\n";
    expect_error(text, strlen(text), NULL, FIRN_EINVAL, "not a pprof protobuf: the input is text");
    const unsigned char gperf[] = {0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x27, 0, 0};
    expect_error(gperf, sizeof gperf, NULL, FIRN_EINVAL, "not a pprof protobuf: byte 0: field number 0");
    /* Group wire types (3/4) never appear in pprof, not even in unknown
     * fields (here field 20). */
    const unsigned char group[] = {0xa3, 0x01, 0xa4, 0x01};
    expect_error(group, sizeof group, NULL, FIRN_EINVAL, "byte 0: invalid wire type 3 for field 20");
    const unsigned char known_group[] = {0x0b, 0x0c};
    expect_error(known_group, sizeof known_group, NULL, FIRN_EINVAL, "field 1 has wire type 3, expected 2");
    /* A length running past the end. */
    const unsigned char overrun[] = {0x32, 0x10, 'a'};
    expect_error(overrun, sizeof overrun, NULL, FIRN_EINVAL, "field 6 claims 16 bytes, only 1 remain");
    /* A known field with the wrong wire type. */
    const unsigned char wrong[] = {0x08, 0x01};
    expect_error(wrong, sizeof wrong, NULL, FIRN_EINVAL, "field 1 has wire type 0, expected 2");
    /* A valid top level with a broken nested message. */
    const unsigned char nested[] = {0x32, 0x00, 0x12, 0x02, 0x0a, 0x05};
    expect_error(nested, sizeof nested, NULL, FIRN_EINVAL, "a nested message is malformed");
}

static void test_truncated_protobuf(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    size_t len;
    unsigned char *buf = pack(base_msg(a), &len);
    /* Every proper prefix is either refused or (at a field boundary) a
     * smaller profile that still passes validation: never a crash. */
    for (size_t cut = 0; cut < len; cut++) {
        firn_err err = {0};
        pprof_profile *p = pprof_decode(buf, cut, NULL, &err);
        if (p) {
            assert_invariants(p);
            pprof_free(p);
        } else {
            assert_true(err.msg[0] != '\0');
        }
    }
    free(buf);
    firn_arena_free(a);
}

static void test_concatenated_profiles(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    size_t len;
    unsigned char *one = pack(base_msg(a), &len);
    unsigned char *two = malloc(2 * len);
    memcpy(two, one, len);
    memcpy(two + len, one, len);
    expect_error(two, 2 * len, NULL, FIRN_EINVAL, "time_nanos appears twice: concatenated profiles");
    free(one);
    free(two);
    firn_arena_free(a);
}

/* Minimal protobuf writer for hand-made wire forms. */
struct wbuf {
    unsigned char b[512];
    size_t n;
};
static void w_varint(struct wbuf *w, uint64_t v)
{
    while (v >= 0x80) {
        w->b[w->n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    w->b[w->n++] = (unsigned char)v;
}
static void w_tag(struct wbuf *w, int field, int wt)
{
    w_varint(w, (uint64_t)(field << 3 | wt));
}
static void w_bytes(struct wbuf *w, int field, const void *data, size_t n)
{
    w_tag(w, field, 2);
    w_varint(w, n);
    memcpy(w->b + w->n, data, n);
    w->n += n;
}
static void w_msg(struct wbuf *w, int field, const struct wbuf *inner)
{
    w_bytes(w, field, inner->b, inner->n);
}

static void test_packed_and_unpacked_repeated_fields(void **state)
{
    (void)state;
    struct wbuf p = {0}, x;
    w_bytes(&p, 6, "", 0);
    w_bytes(&p, 6, "samples", 7);
    w_bytes(&p, 6, "count", 5);
    x.n = 0;
    w_tag(&x, 1, 0);
    w_varint(&x, 1);
    w_tag(&x, 2, 0);
    w_varint(&x, 2);
    w_msg(&p, 1, &x);
    for (int id = 1; id <= 2; id++) {
        x.n = 0;
        w_tag(&x, 1, 0);
        w_varint(&x, (uint64_t)id);
        w_msg(&p, 4, &x);
    }
    /* Sample 1: location_id and value unpacked (how Go writes <= 2 items). */
    x.n = 0;
    w_tag(&x, 1, 0);
    w_varint(&x, 1);
    w_tag(&x, 1, 0);
    w_varint(&x, 2);
    w_tag(&x, 2, 0);
    w_varint(&x, 5);
    w_msg(&p, 2, &x);
    /* Sample 2: the same, packed. */
    x.n = 0;
    const unsigned char ids[] = {1, 2}, vals[] = {7};
    w_bytes(&x, 1, ids, 2);
    w_bytes(&x, 2, vals, 1);
    w_msg(&p, 2, &x);

    firn_err err = {0};
    pprof_profile *prof = pprof_decode(p.b, p.n, NULL, &err);
    if (!prof)
        fail_msg("%s", err.msg);
    assert_int_equal(prof->n_samples, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(prof->samples[i].n_locations, 2);
        assert_int_equal(prof->locations[prof->samples[i].locations[0]].id, 1);
        assert_int_equal(prof->locations[prof->samples[i].locations[1]].id, 2);
    }
    assert_int_equal(prof->samples[0].values[0], 5);
    assert_int_equal(prof->samples[1].values[0], 7);
    /* Equal identity: same stack, no labels. */
    assert_true(pprof_hash_eq(pprof_sample_identity(prof, 0), pprof_sample_identity(prof, 1)));
    pprof_free(prof);
}

/* ---- gzip and caps ------------------------------------------------------------ */

static unsigned char *gzip_bytes(const void *data, size_t len, size_t *out_len)
{
    unsigned char *out;
    firn_err err = {0};
    if (pprof_gzip(data, len, 6, &out, out_len, &err) < 0)
        fail_msg("%s", err.msg);
    return out;
}

static void test_gzip_members_and_corruption(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    size_t len;
    unsigned char *raw = pack(base_msg(a), &len);
    /* Two gzip members make one stream, as Go's gzip reader reads them. */
    size_t l1, l2;
    unsigned char *g1 = gzip_bytes(raw, len / 2, &l1);
    unsigned char *g2 = gzip_bytes(raw + len / 2, len - len / 2, &l2);
    unsigned char *both = malloc(l1 + l2);
    memcpy(both, g1, l1);
    memcpy(both + l1, g2, l2);
    firn_err err = {0};
    pprof_profile *p = pprof_decode(both, l1 + l2, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    assert_int_equal(p->n_samples, 2);
    pprof_free(p);

    expect_error(g1, l1 - 5, NULL, FIRN_EINVAL, "gzip: truncated stream");
    unsigned char *bad = malloc(l1);
    memcpy(bad, g1, l1);
    for (size_t i = 10; i < l1 - 8; i++)
        bad[i] ^= 0x5a;
    firn_errf(&err, FIRN_OK, "unset");
    p = pprof_decode(bad, l1, NULL, &err);
    assert_null(p);
    assert_non_null(strstr(err.msg, "gzip: "));
    free(bad);
    free(both);
    free(g1);
    free(g2);
    free(raw);
    firn_arena_free(a);
}

static void test_caps(void **state)
{
    (void)state;
    pprof_limits lim;
    pprof_limits_default(&lim);

    /* A gzip bomb: 8 MiB of zeros compresses to ~8 KiB. */
    size_t zlen = 8u << 20;
    unsigned char *zeros = calloc(1, zlen);
    size_t glen;
    unsigned char *bomb = gzip_bytes(zeros, zlen, &glen);
    free(zeros);
    assert_true(glen < 64 * 1024);
    lim.max_decoded_bytes = 1u << 20;
    expect_error(bomb, glen, &lim, FIRN_ETOOBIG, "decompressed size exceeds the cap of 1048576 bytes");
    free(bomb);

    firn_arena *a = firn_arena_new(0);
    size_t len;
    unsigned char *raw = pack(base_msg(a), &len);
    pprof_limits_default(&lim);
    lim.max_input_bytes = len - 1;
    expect_error(raw, len, &lim, FIRN_ETOOBIG, "more than the cap of");
    pprof_limits_default(&lim);
    lim.max_samples = 1;
    expect_error(raw, len, &lim, FIRN_ETOOBIG, "profile has 2 samples, more than the cap of 1");
    pprof_limits_default(&lim);
    lim.max_strings = 5;
    expect_error(raw, len, &lim, FIRN_ETOOBIG, "profile has 12 strings");
    pprof_limits_default(&lim);
    lim.max_memory_bytes = 256;
    expect_error(raw, len, &lim, FIRN_ETOOBIG, "memory cap of 256 bytes");
    /* Exactly at the decoded cap is allowed. */
    size_t gl;
    unsigned char *gz = gzip_bytes(raw, len, &gl);
    pprof_limits_default(&lim);
    lim.max_decoded_bytes = len;
    firn_err err = {0};
    pprof_profile *p = pprof_decode(gz, gl, &lim, &err);
    if (!p)
        fail_msg("%s", err.msg);
    pprof_free(p);
    lim.max_decoded_bytes = len - 1;
    expect_error(gz, gl, &lim, FIRN_ETOOBIG, "decompressed size exceeds");
    free(gz);
    free(raw);
    firn_arena_free(a);
}

/* ---- identity and merging ------------------------------------------------------- */

static pprof_profile *decode_msg(Msg *m)
{
    size_t len;
    unsigned char *buf = pack(m, &len);
    firn_err err = {0};
    pprof_profile *p = pprof_decode(buf, len, NULL, &err);
    free(buf);
    if (!p)
        fail_msg("%s", err.msg);
    return p;
}

/* Location identities are stored (they key the store's stacks), so the
 * bytes they hash are fixed: for a symbolized location "S", the number of
 * lines, and per line the function's name and file (each a u64 length and
 * the bytes; empty without a function) and the line number.  Computed here
 * by that rule alone, for every location of real profiles with inlined
 * frames, and compared with pprof_location_identities (which makes each
 * function's part once per profile) and pprof_location_identity. */
static void put_u64(unsigned char **w, uint64_t v)
{
    memcpy(*w, &v, sizeof v);
    *w += sizeof v;
}

static void put_str(unsigned char **w, const char *s)
{
    size_t n = strlen(s);
    put_u64(w, n);
    memcpy(*w, s, n);
    *w += n;
}

static void test_location_identity_bytes(void **state)
{
    (void)state;
    const char *fx[] = {"pprof-internal_proftest_testdata_large.cpu",
                        "pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz"};
    for (size_t f = 0; f < sizeof fx / sizeof *fx; f++) {
        pprof_profile *p = decode_fixture(fx[f]);
        pprof_hash *ids = malloc((p->n_locations + 1) * sizeof *ids);
        assert_non_null(ids);
        assert_int_equal(pprof_location_identities(p, ids), 0);
        size_t symbolized = 0;
        for (size_t i = 0; i < p->n_locations; i++) {
            const pprof_location *l = &p->locations[i];
            bool sym = false;
            size_t size = 1 + 8;
            for (size_t j = 0; j < l->n_lines; j++) {
                size += 8 * 3;
                if (l->lines[j].function != PPROF_NONE) {
                    const pprof_function *fn = &p->functions[l->lines[j].function];
                    size += strlen(pprof_str(p, fn->name)) + strlen(pprof_str(p, fn->filename));
                    sym = true;
                }
            }
            assert_true(pprof_hash_eq(ids[i], pprof_location_identity(p, (uint32_t)i)));
            if (!sym)
                continue;
            symbolized++;
            unsigned char *buf = malloc(size), *w = buf;
            assert_non_null(buf);
            *w++ = 'S';
            put_u64(&w, l->n_lines);
            for (size_t j = 0; j < l->n_lines; j++) {
                const pprof_line *ln = &l->lines[j];
                const pprof_function *fn =
                    ln->function == PPROF_NONE ? NULL : &p->functions[ln->function];
                put_str(&w, fn ? pprof_str(p, fn->name) : "");
                put_str(&w, fn ? pprof_str(p, fn->filename) : "");
                put_u64(&w, (uint64_t)ln->line);
            }
            assert_int_equal((size_t)(w - buf), size);
            XXH128_hash_t x = XXH3_128bits(buf, size);
            free(buf);
            if (ids[i].lo != x.low64 || ids[i].hi != x.high64)
                fail_msg("%s: location %zu: identity differs from its bytes' hash", fx[f], i);
        }
        assert_true(symbolized > 0);
        free(ids);
        pprof_free(p);
    }
}

/* Label-set identities are stored too (they key the store's label sets):
 * the number of labels, then the labels sorted by key, str, num and
 * num_unit, each as key, str (u64 length and bytes), num (u64) and num_unit.
 * Computed here by that rule for every sample of real profiles with
 * labels, and compared with pprof_labels_identities (which hashes each set
 * as written once) and pprof_labels_identity. */
static const pprof_profile *rule_p;

static int rule_cmp(const void *a, const void *b)
{
    const pprof_label *x = a, *y = b;
    int c = strcmp(pprof_str(rule_p, x->key), pprof_str(rule_p, y->key));
    if (!c)
        c = strcmp(pprof_str(rule_p, x->str), pprof_str(rule_p, y->str));
    if (!c && x->num != y->num)
        c = x->num < y->num ? -1 : 1;
    if (!c)
        c = strcmp(pprof_str(rule_p, x->num_unit), pprof_str(rule_p, y->num_unit));
    return c;
}

static pprof_hash labels_by_rule(const pprof_profile *p, const pprof_sample *s)
{
    pprof_label *sorted = malloc((s->n_labels + 1) * sizeof *sorted);
    size_t size = 8;
    for (size_t i = 0; i < s->n_labels; i++) {
        sorted[i] = s->labels[i];
        size += 8 * 4 + strlen(pprof_str(p, s->labels[i].key)) +
                strlen(pprof_str(p, s->labels[i].str)) + strlen(pprof_str(p, s->labels[i].num_unit));
    }
    rule_p = p;
    qsort(sorted, s->n_labels, sizeof *sorted, rule_cmp);
    unsigned char *bytes = malloc(size), *w = bytes;
    put_u64(&w, s->n_labels);
    for (size_t i = 0; i < s->n_labels; i++) {
        put_str(&w, pprof_str(p, sorted[i].key));
        put_str(&w, pprof_str(p, sorted[i].str));
        put_u64(&w, (uint64_t)sorted[i].num);
        put_str(&w, pprof_str(p, sorted[i].num_unit));
    }
    assert_int_equal((size_t)(w - bytes), size);
    XXH128_hash_t x = XXH3_128bits(bytes, size);
    free(bytes);
    free(sorted);
    return (pprof_hash){x.low64, x.high64};
}

static void test_labels_identities_by_rule(void **state)
{
    (void)state;
    const char *fx[] = {"parca-pkg_query_testdata_profile-with-labels.pb.gz",
                        "pyro-pkg_pprof_testdata_go.cpu.labels.pprof",
                        "pyro-pkg_pprof_testdata_dotnet.labels.pprof"};
    for (size_t f = 0; f < sizeof fx / sizeof *fx; f++) {
        pprof_profile *p = decode_fixture(fx[f]);
        /* a sample with its labels reversed: another set as written, the
         * same identity */
        for (size_t i = 0; i < p->n_samples; i++) {
            pprof_sample *s = &p->samples[i];
            if (i % 2 == 0 || s->n_labels < 2)
                continue;
            for (size_t a = 0, b = s->n_labels - 1; a < b; a++, b--) {
                pprof_label t = s->labels[a];
                s->labels[a] = s->labels[b];
                s->labels[b] = t;
            }
        }
        pprof_hash *ids = malloc((p->n_samples + 1) * sizeof *ids);
        assert_non_null(ids);
        pprof_labels_identities(p, ids);
        size_t labelled = 0;
        for (size_t i = 0; i < p->n_samples; i++) {
            const pprof_sample *s = &p->samples[i];
            if (!s->n_labels) {
                assert_true(ids[i].lo == 0 && ids[i].hi == 0);
                continue;
            }
            labelled++;
            pprof_hash want = labels_by_rule(p, s);
            assert_true(pprof_hash_eq(ids[i], want));
            assert_true(pprof_hash_eq(pprof_labels_identity(p, i), want));
        }
        assert_true(labelled > 0);
        free(ids);
        pprof_free(p);
    }
}


static void test_identity_ignores_ids_and_load_address(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    pprof_profile *p1 = decode_msg(base_msg(a));

    /* Same content, renumbered ids and moved addresses: symbolized frames
     * keep their identity. */
    Msg *m = base_msg(a);
    m->location[0]->id = 100;
    m->location[1]->id = 200;
    m->location[0]->address += 0x40;
    m->sample[0]->location_id[0] = 100;
    m->sample[0]->location_id[1] = 200;
    m->sample[1]->location_id[0] = 200;
    m->function[0]->id = 7;
    m->function[1]->id = 8;
    m->location[0]->line[0]->function_id = 8;
    m->location[1]->line[0]->function_id = 7;
    pprof_profile *p2 = decode_msg(m);
    for (size_t i = 0; i < 2; i++)
        assert_true(pprof_hash_eq(pprof_sample_identity(p1, i), pprof_sample_identity(p2, i)));
    assert_false(pprof_hash_eq(pprof_sample_identity(p1, 0), pprof_sample_identity(p1, 1)));

    /* A different line number is a different frame. */
    m = base_msg(a);
    m->location[0]->line[0]->line = 11;
    pprof_profile *p3 = decode_msg(m);
    assert_false(pprof_hash_eq(pprof_sample_identity(p1, 0), pprof_sample_identity(p3, 0)));

    /* A different label value is a different sample. */
    m = base_msg(a);
    m->sample[1]->label[0]->str = 7;
    pprof_profile *p4 = decode_msg(m);
    assert_false(pprof_hash_eq(pprof_sample_identity(p1, 1), pprof_sample_identity(p4, 1)));

    /* Unsymbolized: the same file offset in a binary loaded elsewhere. */
    m = base_msg(a);
    for (int i = 0; i < 2; i++)
        m->location[i]->n_line = 0;
    pprof_profile *u1 = decode_msg(m);
    m = base_msg(a);
    for (int i = 0; i < 2; i++) {
        m->location[i]->n_line = 0;
        m->location[i]->address += 0x700000;
    }
    m->mapping[0]->memory_start += 0x700000;
    m->mapping[0]->memory_limit += 0x700000;
    pprof_profile *u2 = decode_msg(m);
    assert_true(pprof_hash_eq(pprof_location_identity(u1, 0), pprof_location_identity(u2, 0)));
    assert_false(pprof_hash_eq(pprof_location_identity(u1, 0), pprof_location_identity(u1, 1)));
    /* ... but not in another binary. */
    m = base_msg(a);
    for (int i = 0; i < 2; i++)
        m->location[i]->n_line = 0;
    m->mapping[0]->build_id = 7;
    pprof_profile *u3 = decode_msg(m);
    assert_false(pprof_hash_eq(pprof_location_identity(u1, 0), pprof_location_identity(u3, 0)));

    pprof_free(p1);
    pprof_free(p2);
    pprof_free(p3);
    pprof_free(p4);
    pprof_free(u1);
    pprof_free(u2);
    pprof_free(u3);
    firn_arena_free(a);
}

static int64_t copy_str(pprof_builder *b, const pprof_profile *p, int64_t idx)
{
    const char *str = pprof_str(p, idx);
    return pprof_builder_string(b, str, strlen(str));
}

/* Location i of p added to b with its mapping, functions and strings. */
static uint32_t copy_location(pprof_builder *b, const pprof_profile *p, size_t i)
{
    pprof_location l = p->locations[i];
    if (l.mapping != PPROF_NONE) {
        pprof_mapping m = p->mappings[l.mapping];
        m.filename = copy_str(b, p, m.filename);
        m.build_id = copy_str(b, p, m.build_id);
        l.mapping = pprof_builder_mapping(b, &m);
    }
    pprof_line lines[8];
    assert_true(l.n_lines <= 8);
    for (size_t j = 0; j < l.n_lines; j++) {
        lines[j] = l.lines[j];
        if (lines[j].function == PPROF_NONE)
            continue;
        pprof_function f = p->functions[lines[j].function];
        f.name = copy_str(b, p, f.name);
        f.system_name = copy_str(b, p, f.system_name);
        f.filename = copy_str(b, p, f.filename);
        lines[j].function = pprof_builder_function(b, &f);
    }
    l.lines = lines;
    return pprof_builder_location(b, &l);
}

/* A location's identity while its profile is being built is the one the
 * decoded profile it came from gives it, symbolized or not. */
static void test_identity_in_builder(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    pprof_profile *sym = decode_msg(base_msg(a));
    Msg *m = base_msg(a);
    for (int i = 0; i < 2; i++)
        m->location[i]->n_line = 0;
    m->location[1]->mapping_id = 0;   /* no mapping: the raw address */
    pprof_profile *unsym = decode_msg(m);
    const pprof_profile *ps[2] = {sym, unsym};
    pprof_builder *b = pprof_builder_new(1);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < ps[k]->n_locations; i++) {
            uint32_t l = copy_location(b, ps[k], i);
            assert_true(pprof_hash_eq(pprof_builder_location_identity(b, l),
                                      pprof_location_identity(ps[k], i)));
        }
    assert_false(pprof_hash_eq(pprof_builder_location_identity(b, 0),
                               pprof_builder_location_identity(b, 1)));
    pprof_builder_free(b);
    pprof_free(sym);
    pprof_free(unsym);
    firn_arena_free(a);
}

static void test_identity_label_order(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    Msg *m = base_msg(a);
    /* Sample 0 gets labels k=v, foo=main; sample 1 the same in reverse
     * order and the same stack. */
    Firn__Pprof__Sample *s0 = m->sample[0], *s1 = m->sample[1];
    s1->n_location_id = 2;
    s1->location_id[0] = 1;
    s1->location_id[1] = 2;
    Firn__Pprof__Label *l[2];
    for (int i = 0; i < 2; i++) {
        l[i] = aalloc(a, sizeof *l[i]);
        firn__pprof__label__init(l[i]);
    }
    l[0]->key = 10;
    l[0]->str = 11;
    l[1]->key = 7;
    l[1]->str = 5;
    s0->n_label = 2;
    s0->label = aalloc(a, 2 * sizeof *s0->label);
    s0->label[0] = l[0];
    s0->label[1] = l[1];
    s1->n_label = 2;
    s1->label = aalloc(a, 2 * sizeof *s1->label);
    s1->label[0] = l[1];
    s1->label[1] = l[0];
    pprof_profile *p = decode_msg(m);
    assert_true(pprof_hash_eq(pprof_sample_identity(p, 0), pprof_sample_identity(p, 1)));

    firn_err err = {0};
    assert_int_equal(pprof_merge_samples(p, &err), 0);
    assert_int_equal(p->n_samples, 1);
    assert_int_equal(p->samples[0].values[0], 3);
    assert_int_equal(p->samples[0].values[1], 30);
    pprof_free(p);
    firn_arena_free(a);
}

static void test_merge_samples_keeps_totals(void **state)
{
    (void)state;
    static const char *const names[] = {"pyro-pkg_pprof_testdata_heap", "alloy-big-heap.pprof",
                                        "pprof-internal_proftest_testdata_large.cpu",
                                        "pyro-pkg_pprof_testdata_go.cpu.labels.pprof"};
    for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
        pprof_profile *p = decode_fixture(names[f]);
        size_t before = p->n_samples;
        int64_t t0[8], t1[8];
        assert_true(p->n_sample_types <= 8);
        pprof_totals(p, t0);
        firn_err err = {0};
        assert_int_equal(pprof_merge_samples(p, &err), 0);
        pprof_totals(p, t1);
        assert_memory_equal(t0, t1, p->n_sample_types * sizeof(int64_t));
        assert_true(p->n_samples <= before);
        assert_invariants(p);
        /* After merging, identities are distinct: a second merge is a no-op. */
        size_t after = p->n_samples;
        assert_int_equal(pprof_merge_samples(p, &err), 0);
        assert_int_equal(p->n_samples, after);
        pprof_free(p);
    }
}

static void test_add_saturates(void **state)
{
    (void)state;
    assert_int_equal(pprof_add_sat(INT64_MAX, 1), INT64_MAX);
    assert_int_equal(pprof_add_sat(INT64_MIN, -1), INT64_MIN);
    assert_int_equal(pprof_add_sat(-5, 3), -2);
}

/* ---- top ---------------------------------------------------------------------- */

static void test_top_flat_and_cum(void **state)
{
    (void)state;
    firn_arena *a = firn_arena_new(0);
    Msg *m = base_msg(a);
    /* Stacks (leaf first): [foo, main] = 10, [main] = 20, and a recursive
     * [main, main] = 4 that must count once toward main's cum. */
    m->n_sample = 3;
    Firn__Pprof__Sample **ss = aalloc(a, 3 * sizeof *ss);
    ss[0] = m->sample[0];
    ss[1] = m->sample[1];
    ss[2] = aalloc(a, sizeof **ss);
    firn__pprof__sample__init(ss[2]);
    ss[2]->n_location_id = 2;
    ss[2]->location_id = aalloc(a, 2 * sizeof(uint64_t));
    ss[2]->location_id[0] = 2;
    ss[2]->location_id[1] = 2;
    ss[2]->n_value = 2;
    ss[2]->value = aalloc(a, 2 * sizeof(int64_t));
    ss[2]->value[0] = 1;
    ss[2]->value[1] = 4;
    m->sample = ss;
    pprof_profile *p = decode_msg(m);

    pprof_top_report t;
    firn_err err = {0};
    assert_int_equal(pprof_top(p, 1, &t, &err), 0);
    assert_int_equal(t.total, 34);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(t.rows[0].name, "main");
    assert_int_equal(t.rows[0].flat, 24);
    assert_int_equal(t.rows[0].cum, 34);
    assert_string_equal(t.rows[1].name, "foo");
    assert_int_equal(t.rows[1].flat, 10);
    assert_int_equal(t.rows[1].cum, 10);
    pprof_top_free(&t);
    assert_int_equal(pprof_top(p, 2, &t, &err), FIRN_EINVAL);
    assert_non_null(strstr(err.msg, "sample index 2 out of range"));
    pprof_free(p);

    /* Unsymbolized frames are named by their binary, or "<unknown>" when
     * they have no mapping; zero-valued samples add nothing. */
    m = base_msg(a);
    m->location[0]->n_line = 0;
    m->location[1]->n_line = 0;
    m->location[1]->mapping_id = 0;
    m->sample[1]->value[0] = 0;
    p = decode_msg(m);
    assert_int_equal(pprof_top(p, 0, &t, &err), 0);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(t.rows[0].name, "[app]");
    assert_int_equal(t.rows[0].flat, 1);
    assert_string_equal(t.rows[1].name, "<unknown>");
    assert_int_equal(t.rows[1].flat, 0);
    assert_int_equal(t.rows[1].cum, 1);
    assert_int_equal(t.total, 1);
    pprof_top_free(&t);
    pprof_free(p);

    /* A column that is zero everywhere gives an empty report. */
    m = base_msg(a);
    m->sample[0]->value[1] = 0;
    m->sample[1]->value[1] = 0;
    p = decode_msg(m);
    assert_int_equal(pprof_top(p, 1, &t, &err), 0);
    assert_int_equal(t.n_rows, 0);
    assert_int_equal(t.total, 0);
    pprof_top_free(&t);
    pprof_free(p);
    firn_arena_free(a);
}

/* ---- deltas of cumulative profiles ---------------------------------------- */

/* A heap-like profile: stack i is main;fn[i] with the given four values
 * (alloc_objects, alloc_space, inuse_objects, inuse_space). */
static pprof_profile *heap_profile(const char *const *fn, const int64_t (*v)[4], size_t n,
                                   int64_t time_nanos)
{
    static const char *const types[4][2] = {{"alloc_objects", "count"}, {"alloc_space", "bytes"},
                                             {"inuse_objects", "count"}, {"inuse_space", "bytes"}};
    pprof_builder *b = pprof_builder_new(4);
    assert_non_null(b);
    for (size_t i = 0; i < 4; i++)
        pprof_builder_sample_type(b, i, types[i][0], types[i][1]);
    pprof_builder_period(b, "space", "bytes", 524288);
    pprof_builder_time(b, time_nanos, 0);
    pprof_function mf = {.name = pprof_builder_string(b, "main", 4)};
    pprof_line ml = {.function = pprof_builder_function(b, &mf), .line = 1};
    pprof_location main_loc = {.mapping = PPROF_NONE, .lines = &ml, .n_lines = 1};
    uint32_t root = pprof_builder_location(b, &main_loc);
    for (size_t i = 0; i < n; i++) {
        pprof_function f = {.name = pprof_builder_string(b, fn[i], strlen(fn[i]))};
        pprof_line ln = {.function = pprof_builder_function(b, &f), .line = 2};
        pprof_location l = {.mapping = PPROF_NONE, .lines = &ln, .n_lines = 1};
        uint32_t stack[2] = {pprof_builder_location(b, &l), root};
        assert_int_equal(pprof_builder_sample(b, stack, 2, v[i], NULL, 0), 0);
    }
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    assert_non_null(p);
    return p;
}

/* The values of the sample whose leaf function is fn, or NULL. */
static const int64_t *values_of(const pprof_profile *p, const char *fn)
{
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_location *l = &p->locations[p->samples[i].locations[0]];
        if (strcmp(pprof_str(p, p->functions[l->lines[0].function].name), fn) == 0)
            return p->samples[i].values;
    }
    return NULL;
}

static void test_delta_subtracts_cumulative_columns(void **state)
{
    (void)state;
    pprof_delta_state *st = pprof_delta_new();
    bool cols[4];
    firn_err err = {0};
    const char *fn1[] = {"a", "b"};
    const int64_t v1[][4] = {{10, 100, 1, 10}, {5, 50, 0, 0}};
    pprof_profile *p = heap_profile(fn1, v1, 2, 1000000000);
    pprof_delta_columns(p, cols);
    assert_true(cols[0] && cols[1] && !cols[2] && !cols[3]);
    assert_int_equal(pprof_delta_apply(st, p, cols, &err), 0);   /* no baseline yet */
    pprof_free(p);

    const char *fn2[] = {"a", "b", "c", "a"};   /* "a" twice: summed first */
    const int64_t v2[][4] = {{12, 120, 1, 10}, {5, 50, 0, 0}, {1, 8, 1, 8}, {3, 40, 1, 10}};
    p = heap_profile(fn2, v2, 4, 11000000000);
    assert_int_equal(pprof_delta_apply(st, p, cols, &err), 1);
    assert_int_equal(p->n_samples, 2);   /* b did nothing: dropped */
    const int64_t *a = values_of(p, "a"), *c = values_of(p, "c");
    assert_non_null(a);
    assert_non_null(c);
    assert_null(values_of(p, "b"));
    /* alloc: (12+3)-10, (120+40)-100; inuse: the latest, summed */
    assert_int_equal(a[0], 5);
    assert_int_equal(a[1], 60);
    assert_int_equal(a[2], 2);
    assert_int_equal(a[3], 20);
    assert_int_equal(c[0], 1);   /* no baseline for c: all of it is new */
    assert_int_equal(c[1], 8);
    assert_int_equal(p->duration_nanos, 10000000000);
    pprof_free(p);

    /* a value going down is a restart: nothing to store, new baseline */
    const char *fn3[] = {"a"};
    const int64_t v3[][4] = {{2, 20, 2, 20}};
    p = heap_profile(fn3, v3, 1, 21000000000);
    assert_int_equal(pprof_delta_apply(st, p, cols, &err), 0);
    pprof_free(p);
    const int64_t v4[][4] = {{7, 70, 3, 30}};
    p = heap_profile(fn3, v4, 1, 31000000000);
    assert_int_equal(pprof_delta_apply(st, p, cols, &err), 1);
    assert_int_equal(values_of(p, "a")[1], 50);
    assert_int_equal(values_of(p, "a")[3], 30);
    pprof_free(p);

    /* other sample types: no usable baseline */
    p = decode_fixture("alloy-block.before.pprof");
    bool bcols[2];
    pprof_delta_columns(p, bcols);
    assert_true(bcols[0] && bcols[1]);
    assert_int_equal(pprof_delta_apply(st, p, bcols, &err), 0);
    pprof_free(p);
    pprof_delta_free(st);
}

/* Alloy's before/after heap pair (the same allocations six seconds apart):
 * the delta's alloc totals are after minus before, here zero, while the
 * inuse totals are after's, so the samples stay. */
static void test_delta_fixture_pair(void **state)
{
    (void)state;
    pprof_profile *before = decode_fixture("alloy-heap.before.pprof");
    pprof_profile *after = decode_fixture("alloy-heap.after.pprof");
    int64_t tb[4], ta[4], td[4];
    pprof_totals(before, tb);
    pprof_totals(after, ta);
    pprof_delta_state *st = pprof_delta_new();
    bool cols[4];
    pprof_delta_columns(before, cols);
    firn_err err = {0};
    assert_int_equal(pprof_delta_apply(st, before, cols, &err), 0);
    assert_int_equal(pprof_delta_apply(st, after, cols, &err), 1);
    pprof_totals(after, td);
    assert_int_equal(td[0], ta[0] - tb[0]);
    assert_int_equal(td[1], ta[1] - tb[1]);
    assert_int_equal(td[2], ta[2]);
    assert_int_equal(td[3], ta[3]);
    assert_int_equal(after->n_samples, 2);
    pprof_delta_free(st);
    pprof_free(before);
    pprof_free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_fixture),
        cmocka_unit_test(test_dotnet_function_ids_numbered),
        cmocka_unit_test(test_fixture_known_values),
        cmocka_unit_test(test_base_message_is_valid),
        cmocka_unit_test(test_invalid_profiles_rejected),
        cmocka_unit_test(test_all_zero_ids_numbered_by_position),
        cmocka_unit_test(test_not_protobuf),
        cmocka_unit_test(test_legacy_cpu_32_little),
        cmocka_unit_test(test_legacy_cpu_64_big),
        cmocka_unit_test(test_legacy_cpu_cleanups),
        cmocka_unit_test(test_legacy_cpu_java),
        cmocka_unit_test(test_legacy_cpu_malformed),
        cmocka_unit_test(test_truncated_protobuf),
        cmocka_unit_test(test_concatenated_profiles),
        cmocka_unit_test(test_packed_and_unpacked_repeated_fields),
        cmocka_unit_test(test_gzip_members_and_corruption),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_identity_ignores_ids_and_load_address),
        cmocka_unit_test(test_location_identity_bytes),
        cmocka_unit_test(test_labels_identities_by_rule),
        cmocka_unit_test(test_header_fields_anywhere),
        cmocka_unit_test(test_ids_past_32_bits),
        cmocka_unit_test(test_identity_label_order),
        cmocka_unit_test(test_identity_in_builder),
        cmocka_unit_test(test_merge_samples_keeps_totals),
        cmocka_unit_test(test_add_saturates),
        cmocka_unit_test(test_top_flat_and_cum),
        cmocka_unit_test(test_delta_subtracts_cumulative_columns),
        cmocka_unit_test(test_delta_fixture_pair),
    };
    return cmocka_run_group_tests_name("pprof", tests, NULL, NULL);
}
