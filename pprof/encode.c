/* encode.c -- pprof_profile -> protobuf bytes (optionally gzipped).
 *
 * Builds protobuf-c messages over the profile's own arrays where the layouts
 * agree (values, strings, comments) and in a scratch arena otherwise, packs
 * them, then gzips.  Array indexes become ids again: each element keeps the
 * id it was decoded with (or was given), so a round trip is lossless.
 */
#include "internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define NEW_ARRAY(A, T, n) ((T *)firn_arena_calloc((A), (n) ? (n) : 1, sizeof(T)))

/* The message for p, its arrays in A (sized by p, already in memory). */
static void build_message(const pprof_profile *p, firn_arena *A, Firn__Pprof__Profile *m)
{
    firn__pprof__profile__init(m);

    m->n_sample_type = p->n_sample_types;
    m->sample_type = NEW_ARRAY(A, Firn__Pprof__ValueType *, p->n_sample_types);
    Firn__Pprof__ValueType *vts = NEW_ARRAY(A, Firn__Pprof__ValueType, p->n_sample_types + 1);
    for (size_t i = 0; i < p->n_sample_types; i++) {
        firn__pprof__value_type__init(&vts[i]);
        vts[i].type = p->sample_types[i].type;
        vts[i].unit = p->sample_types[i].unit;
        m->sample_type[i] = &vts[i];
    }
    if (p->period_type.type || p->period_type.unit) {
        Firn__Pprof__ValueType *pt = &vts[p->n_sample_types];
        firn__pprof__value_type__init(pt);
        pt->type = p->period_type.type;
        pt->unit = p->period_type.unit;
        m->period_type = pt;
    }

    /* samples */
    m->n_sample = p->n_samples;
    m->sample = NEW_ARRAY(A, Firn__Pprof__Sample *, p->n_samples);
    Firn__Pprof__Sample *samples = NEW_ARRAY(A, Firn__Pprof__Sample, p->n_samples);
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        Firn__Pprof__Sample *d = &samples[i];
        firn__pprof__sample__init(d);
        d->n_value = p->n_sample_types;
        d->value = s->values;
        d->n_location_id = s->n_locations;
        d->location_id = NEW_ARRAY(A, uint64_t, s->n_locations);
        for (size_t j = 0; j < s->n_locations; j++)
            d->location_id[j] = p->locations[s->locations[j]].id;
        if (s->n_labels) {
            d->n_label = s->n_labels;
            d->label = NEW_ARRAY(A, Firn__Pprof__Label *, s->n_labels);
            Firn__Pprof__Label *labels = NEW_ARRAY(A, Firn__Pprof__Label, s->n_labels);
            for (size_t j = 0; j < s->n_labels; j++) {
                firn__pprof__label__init(&labels[j]);
                labels[j].key = s->labels[j].key;
                labels[j].str = s->labels[j].str;
                labels[j].num = s->labels[j].num;
                labels[j].num_unit = s->labels[j].num_unit;
                d->label[j] = &labels[j];
            }
        }
        m->sample[i] = d;
    }

    /* mappings */
    m->n_mapping = p->n_mappings;
    m->mapping = NEW_ARRAY(A, Firn__Pprof__Mapping *, p->n_mappings);
    Firn__Pprof__Mapping *maps = NEW_ARRAY(A, Firn__Pprof__Mapping, p->n_mappings);
    for (size_t i = 0; i < p->n_mappings; i++) {
        const pprof_mapping *s = &p->mappings[i];
        Firn__Pprof__Mapping *d = &maps[i];
        firn__pprof__mapping__init(d);
        d->id = s->id;
        d->memory_start = s->memory_start;
        d->memory_limit = s->memory_limit;
        d->file_offset = s->file_offset;
        d->filename = s->filename;
        d->build_id = s->build_id;
        d->has_functions = s->has_functions;
        d->has_filenames = s->has_filenames;
        d->has_line_numbers = s->has_line_numbers;
        d->has_inline_frames = s->has_inline_frames;
        m->mapping[i] = d;
    }

    /* locations */
    m->n_location = p->n_locations;
    m->location = NEW_ARRAY(A, Firn__Pprof__Location *, p->n_locations);
    Firn__Pprof__Location *locs = NEW_ARRAY(A, Firn__Pprof__Location, p->n_locations);
    for (size_t i = 0; i < p->n_locations; i++) {
        const pprof_location *s = &p->locations[i];
        Firn__Pprof__Location *d = &locs[i];
        firn__pprof__location__init(d);
        d->id = s->id;
        d->mapping_id = s->mapping == PPROF_NONE ? 0 : p->mappings[s->mapping].id;
        d->address = s->address;
        d->is_folded = s->is_folded;
        if (s->n_lines) {
            d->n_line = s->n_lines;
            d->line = NEW_ARRAY(A, Firn__Pprof__Line *, s->n_lines);
            Firn__Pprof__Line *lines = NEW_ARRAY(A, Firn__Pprof__Line, s->n_lines);
            for (size_t j = 0; j < s->n_lines; j++) {
                firn__pprof__line__init(&lines[j]);
                const pprof_line *ls = &s->lines[j];
                lines[j].function_id =
                    ls->function == PPROF_NONE ? 0 : p->functions[ls->function].id;
                lines[j].line = ls->line;
                lines[j].column = ls->column;
                d->line[j] = &lines[j];
            }
        }
        m->location[i] = d;
    }

    /* functions */
    m->n_function = p->n_functions;
    m->function = NEW_ARRAY(A, Firn__Pprof__Function *, p->n_functions);
    Firn__Pprof__Function *funcs = NEW_ARRAY(A, Firn__Pprof__Function, p->n_functions);
    for (size_t i = 0; i < p->n_functions; i++) {
        const pprof_function *s = &p->functions[i];
        Firn__Pprof__Function *d = &funcs[i];
        firn__pprof__function__init(d);
        d->id = s->id;
        d->name = s->name;
        d->system_name = s->system_name;
        d->filename = s->filename;
        d->start_line = s->start_line;
        m->function[i] = d;
    }

    m->n_string_table = p->n_strings;
    m->string_table = p->strings;
    m->drop_frames = p->drop_frames;
    m->keep_frames = p->keep_frames;
    m->time_nanos = p->time_nanos;
    m->duration_nanos = p->duration_nanos;
    m->period = p->period;
    m->n_comment = p->n_comments;
    m->comment = p->comments;
    m->default_sample_type = p->default_sample_type;
    m->doc_url = p->doc_url;
}

int pprof_encode(const pprof_profile *p, int gzip_level, unsigned char **out, size_t *out_len,
                 firn_err *err)
{
    *out = NULL;
    *out_len = 0;
    firn_arena *A = firn_arena_new(0);
    Firn__Pprof__Profile m;
    build_message(p, A, &m);
    size_t size = firn__pprof__profile__get_packed_size(&m);
    unsigned char *raw = firn_xmalloc(size);
    size_t packed = firn__pprof__profile__pack(&m, raw);
    assert(packed == size);
    firn_arena_free(A);
    if (gzip_level == 0) {
        *out = raw;
        *out_len = packed;
        return FIRN_OK;
    }
    int rc = pprof_gzip(raw, packed, gzip_level, out, out_len, err);
    free(raw);
    return rc;
}
