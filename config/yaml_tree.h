/* yaml_tree.h -- internal to config/: a YAML document as a tree of nodes
 * with their positions, built from libyaml's events.
 *
 * Nodes live in the caller's arena.  An alias is resolved to the node of its
 * anchor (shared, not copied), so the tree is a DAG; `weight` counts the
 * nodes of a subtree with aliases expanded, which is what bounds the work of
 * walking it.  Anchors become visible only once their node is complete, so
 * there are no cycles.
 */
#ifndef FIRN_CONFIG_YAML_TREE_H
#define FIRN_CONFIG_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "model/model.h"

typedef enum ynode_kind { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP } ynode_kind;

typedef struct ynode ynode;
struct ynode {
    ynode_kind kind;
    int line, col;       /* 1-based */
    bool plain;          /* scalar written without quotes or block style */
    char *value;         /* scalar: NUL-terminated (may also hold NULs: see len) */
    size_t len;
    ynode **items;       /* seq: n items; map: n pairs as key, value, key, value... */
    size_t n;
    size_t weight;       /* nodes in this subtree, aliases expanded (saturating) */
};

/* Parse one YAML document.  *root is NULL for an empty document.  On a
 * syntax error or a cap (depth, expanded nodes, several documents) returns
 * FIRN_EINVAL with err "LINE:COL: message" and sets *line and *col. */
int ytree_parse(const char *text, size_t len, firn_arena *arena, ynode **root,
                int *line, int *col, firn_err *err);

/* A null scalar: plain empty, ~, null, Null or NULL. */
bool ynode_is_null(const ynode *n);

/* The document under root written out again as YAML, in arena, with every
 * secret value replaced by "<secret>" (redact.c says which); "" for an empty
 * document, NULL when memory runs out.  What /api/v1/status/config shows. */
char *config_redacted_yaml(const ynode *root, firn_arena *arena);

#endif
