/* yaml.h -- config/'s YAML decoding, public: a YAML document as a tree of
 * nodes with their positions (yaml_tree.c, on libyaml's events), and the
 * decoder that turns such a tree into typed structs, strictly, with every
 * error as "NAME:LINE:COL: field: message" (decode.c).  Every YAML file
 * firn reads goes through it, in config/ and outside (discovery's file_sd
 * target files).
 *
 * Nodes live in the caller's arena.  An alias is resolved to the node of its
 * anchor (shared, not copied), so the tree is a DAG; `weight` counts the
 * nodes of a subtree with aliases expanded, which is what bounds the work of
 * walking it.  Anchors become visible only once their node is complete, so
 * there are no cycles.
 *
 * A decoder (config_dec) collects errors instead of stopping at the first one
 * (up to CONFIG_MAX_ERRORS, then a count), so one run lists every problem
 * of a file.  Strings it returns live in the decoder's arena, which the
 * caller owns.  config.c (the scrape configuration), web_config.c (the
 * web configuration) and kubeconfig.c (kubeconfig files, leniently) are
 * its users, and discovery/file.c for file_sd's YAML target files.
 */
#ifndef FIRN_CONFIG_YAML_H
#define FIRN_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "model/model.h"

/* ---- the node tree (yaml_tree.c) ------------------------------------------ */

typedef enum config_ynode_kind {
    CONFIG_YNODE_SCALAR,
    CONFIG_YNODE_SEQ,
    CONFIG_YNODE_MAP
} config_ynode_kind;

typedef struct config_ynode config_ynode;
struct config_ynode {
    config_ynode_kind kind;
    int line, col;       /* 1-based */
    bool plain;          /* scalar written without quotes or block style */
    char *value;         /* scalar: NUL-terminated (may also hold NULs: see len) */
    size_t len;
    config_ynode **items; /* seq: n items; map: n pairs as key, value, key, value... */
    size_t n;
    size_t weight;       /* nodes in this subtree, aliases expanded (saturating) */
};

/* Parse one YAML document.  *root is NULL for an empty document.  On a
 * syntax error or a cap (depth, expanded nodes, several documents) returns
 * FIRN_EINVAL with err "LINE:COL: message" and sets *line and *col. */
int config_ytree_parse(const char *text, size_t len, firn_arena *arena, config_ynode **root,
                       int *line, int *col, firn_err *err);

/* A null scalar: plain empty, ~, null, Null or NULL. */
bool config_ynode_is_null(const config_ynode *n);

/* The document under root written out again as YAML, in arena, with every
 * secret value replaced by "<secret>" (redact.c says which); "" for an empty
 * document, NULL when libyaml refuses to write the tree back.  What
 * /api/v1/status/config shows. */
char *config_redacted_yaml(const config_ynode *root, firn_arena *arena);

/* ---- the decoder (decode.c) ---------------------------------------------- */

typedef struct config_dec_error {
    int line, col;   /* 0 for errors about the whole file */
    size_t seq;      /* report order, to keep the sort stable */
    char *text;      /* malloc'd */
} config_dec_error;

typedef struct config_dec {
    const char *name;    /* the file's name in messages */
    firn_arena *arena;   /* the result's: strings and arrays decoded go here */
    config_dec_error *errs;
    size_t n_lines, cap_lines;
    size_t dropped;      /* errors beyond CONFIG_MAX_ERRORS */
} config_dec;

/* ---- errors ---------------------------------------------------------------- */

/* Report "NAME:LINE:COL: field: message" at node `at` (NULL: the whole
 * file, "NAME: field: message"); field may be NULL. */
void config_dec_err(config_dec *d, const config_ynode *at, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Parse text into *root (NULL for an empty document).  False, after
 * reporting, when the text is over CONFIG_MAX_BYTES or is not YAML: then
 * that is the only error. */
bool config_dec_parse(config_dec *d, const char *text, size_t len, config_ynode **root);

/* The start of a load from text: errs (when not NULL) emptied, *name
 * defaulted to default_name, a zeroed result of size bytes with a new
 * arena in *arena (the caller stores it in the result). */
void *config_dec_begin(config_errors *errs, const char **name, const char *default_name, size_t size,
                firn_arena **arena);

/* The end of a load: 0 when nothing was reported.  Otherwise -1, err holds
 * the first lines (as many as fit, then "(and N more)"), and when errs is
 * not NULL every line in document order goes to it (caller frees with
 * config_errors_free).  Frees the decoder's own error list either way. */
int config_dec_finish(config_dec *d, config_errors *errs, firn_err *err);

/* Read a file for a loader: at most CONFIG_MAX_BYTES.  On failure err and
 * errs (one line, when not NULL) say why. */
int config_dec_read_file(const char *path, unsigned char **buf, size_t *len, config_errors *errs,
                  firn_err *err);

/* ---- memory ---------------------------------------------------------------- */

/* In the decoder's arena (model/alloc.h: they do not fail; NULL stays
 * NULL).  config_dec_calloc returns NULL for n == 0. */
char *config_dec_strdup(config_dec *d, const char *s);
void *config_dec_calloc(config_dec *d, size_t n, size_t size);

/* ---- nodes ------------------------------------------------------------------ */

/* "null", "a mapping", "a list" or "a scalar", for messages. */
const char *config_dec_kind(const config_ynode *n);

/* Look up each of names[0..count) in map n: vals[i] / keys[i] get the value
 * and key nodes, or NULL (keys may be NULL when count <= 32).  Reports
 * unknown and duplicate keys ("unknown field in WHAT") and non-scalar keys.
 * Returns false (after reporting) when n is neither a mapping nor null; a
 * null node is an empty mapping. */
bool config_dec_fields(config_dec *d, const config_ynode *n, const char *field, const char *what,
                const char *const *names, size_t count, const config_ynode **vals, const config_ynode **keys);

/* As config_dec_fields, for formats whose files carry many keys firn does not
 * read (kubeconfig's preferences, extensions, ...): keys not in names are
 * ignored, without a word.  Duplicates of names are still reported. */
bool config_dec_fields_lax(config_dec *d, const config_ynode *n, const char *field, const char *what,
                    const char *const *names, size_t count, const config_ynode **vals,
                    const config_ynode **keys);

/* v as a list: NULL when absent or null, and (after reporting "expected a
 * list") when it is anything else. */
const config_ynode *config_dec_seq(config_dec *d, const config_ynode *v, const char *field);

/* The later of two nodes in the file (either may be NULL): where a
 * conflict between two keys becomes one. */
const config_ynode *config_dec_later(const config_ynode *a, const config_ynode *b);

/* A scalar as a string (valid UTF-8, no NUL); false after reporting when it
 * is not.  A null or absent value is "not given": *out is left alone.  The
 * string lives in the tree, so in the decoder's arena. */
bool config_dec_str(config_dec *d, const config_ynode *v, const char *field, char **out);

/* A YAML 1.1 boolean as go-yaml v2 reads it; null or absent leaves *out. */
bool config_dec_bool(config_dec *d, const config_ynode *v, const char *field, bool *out);

/* A list of strings; null or absent is an empty list. */
bool config_dec_str_list(config_dec *d, const config_ynode *v, const char *field, char ***out, size_t *n);

/* ---- shared decoders -------------------------------------------------------- */

/* One relabel_config rule into rc (malloc'd strings, as firn_relabel_config
 * owns them), validated and compiled.  Returns true when rc is initialized
 * and must be destroyed later (firn_relabel_config_destroy).  config.c's;
 * the agent's config uses it too. */
bool config_dec_relabel(config_dec *d, const config_ynode *v, firn_relabel_config *rc);

#endif
