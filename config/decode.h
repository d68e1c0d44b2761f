/* decode.h -- internal to config/: what the YAML file loaders share to turn
 * a node tree (yaml_tree.h) into typed structs, strictly, with every error
 * as "NAME:LINE:COL: field: message".
 *
 * A decoder (dec) collects errors instead of stopping at the first one
 * (up to CONFIG_MAX_ERRORS, then a count), so one run lists every problem
 * of a file.  Strings it returns live in the decoder's arena, which the
 * caller owns.  config.c (the scrape configuration), web_config.c (the
 * web configuration) and kubeconfig.c (kubeconfig files, leniently) are
 * its users, and discovery/file.c for file_sd's YAML target files.
 */
#ifndef FIRN_CONFIG_DECODE_H
#define FIRN_CONFIG_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "config/yaml_tree.h"
#include "model/model.h"

typedef struct dec_error {
    int line, col;   /* 0 for errors about the whole file */
    size_t seq;      /* report order, to keep the sort stable */
    char *text;      /* malloc'd */
} dec_error;

typedef struct dec {
    const char *name;    /* the file's name in messages */
    firn_arena *arena;   /* the result's: strings and arrays decoded go here */
    dec_error *errs;
    size_t n_lines, cap_lines;
    size_t dropped;      /* errors beyond CONFIG_MAX_ERRORS */
    bool oom;
} dec;

/* ---- errors ---------------------------------------------------------------- */

/* Report "NAME:LINE:COL: field: message" at node `at` (NULL: the whole
 * file, "NAME: field: message"); field may be NULL. */
void dec_err(dec *d, const ynode *at, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parse text into *root (NULL for an empty document).  False, after
 * reporting, when the text is over CONFIG_MAX_BYTES or is not YAML: then
 * that is the only error. */
bool dec_parse(dec *d, const char *text, size_t len, ynode **root);

/* The start of a load from text: errs (when not NULL) emptied, *name
 * defaulted to default_name, a zeroed result of size bytes with a new
 * arena in *arena (the caller stores it in the result).  NULL with err
 * "NAME: out of memory" when either allocation fails. */
void *dec_begin(config_errors *errs, const char **name, const char *default_name, size_t size,
                firn_arena **arena, firn_err *err);

/* The end of a load: 0 when nothing was reported.  Otherwise -1, err holds
 * the first lines (as many as fit, then "(and N more)"), and when errs is
 * not NULL every line in document order goes to it (caller frees with
 * config_errors_free).  Frees the decoder's own error list either way. */
int dec_finish(dec *d, config_errors *errs, firn_err *err);

/* Read a file for a loader: at most CONFIG_MAX_BYTES.  On failure err and
 * errs (one line, when not NULL) say why. */
int dec_read_file(const char *path, unsigned char **buf, size_t *len, config_errors *errs,
                  firn_err *err);

/* ---- memory ---------------------------------------------------------------- */

/* s copied into a (NULL stays NULL); *ok turns false when a runs out.  For
 * copying a decoded result out of the decoder's arena. */
char *dec_copy_str(firn_arena *a, const char *s, bool *ok);

/* In the decoder's arena; NULL (and d->oom) when out of memory.
 * dec_calloc returns NULL for n == 0. */
char *dec_strdup(dec *d, const char *s);
void *dec_calloc(dec *d, size_t n, size_t size);

/* ---- nodes ------------------------------------------------------------------ */

/* "null", "a mapping", "a list" or "a scalar", for messages. */
const char *dec_kind(const ynode *n);

/* Look up each of names[0..count) in map n: vals[i] / keys[i] get the value
 * and key nodes, or NULL (keys may be NULL when count <= 32).  Reports
 * unknown and duplicate keys ("unknown field in WHAT") and non-scalar keys.
 * Returns false (after reporting) when n is neither a mapping nor null; a
 * null node is an empty mapping. */
bool dec_fields(dec *d, const ynode *n, const char *field, const char *what,
                const char *const *names, size_t count, const ynode **vals, const ynode **keys);

/* As dec_fields, for formats whose files carry many keys firn does not
 * read (kubeconfig's preferences, extensions, ...): keys not in names are
 * ignored, without a word.  Duplicates of names are still reported. */
bool dec_fields_lax(dec *d, const ynode *n, const char *field, const char *what,
                    const char *const *names, size_t count, const ynode **vals,
                    const ynode **keys);

/* v as a list: NULL when absent or null, and (after reporting "expected a
 * list") when it is anything else. */
const ynode *dec_seq(dec *d, const ynode *v, const char *field);

/* The later of two nodes in the file (either may be NULL): where a
 * conflict between two keys becomes one. */
const ynode *dec_later(const ynode *a, const ynode *b);

/* A scalar as a string (valid UTF-8, no NUL); false after reporting when it
 * is not.  A null or absent value is "not given": *out is left alone.  The
 * string lives in the tree, so in the decoder's arena. */
bool dec_str(dec *d, const ynode *v, const char *field, char **out);

/* A YAML 1.1 boolean as go-yaml v2 reads it; null or absent leaves *out. */
bool dec_bool(dec *d, const ynode *v, const char *field, bool *out);

/* A list of strings; null or absent is an empty list. */
bool dec_str_list(dec *d, const ynode *v, const char *field, char ***out, size_t *n);

/* ---- shared decoders -------------------------------------------------------- */

/* One relabel_config rule into rc (malloc'd strings, as firn_relabel_config
 * owns them), validated and compiled.  Returns true when rc is initialized
 * and must be destroyed later (firn_relabel_config_destroy).  config.c's;
 * the agent's config uses it too. */
bool dec_relabel(dec *d, const ynode *v, firn_relabel_config *rc);

#endif
