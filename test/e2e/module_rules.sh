#!/bin/bash
# module_rules.sh FIRN_AGENT FIRNCTL SOURCE_DIR -- the module rules of
# docs/ARCHITECTURE.md, checked on what was built and what is included:
#  - firn-agent links the HTTP server library (http/) and none of the
#    server's store, query engine or scraper: `nm` finds http_new in it and
#    no symbol (defined or imported) starting with tsdb_, pql_, scrape_ or mdb_ (LMDB);
#  - the same check on firnctl finds those symbols (so the pattern matches
#    what it is meant to catch);
#  - firnctl's sources include no module's internal header, and no module
#    includes another's (tests and fuzz targets may: they test internals);
#  - config/ keeps no header marked internal, so discovery/ reads YAML
#    through config/yaml.h, the public decoder;
#  - no hand-written growth (the out-of-memory policy): no realloc( or
#    reallocarray( call in a module's *.c but model/alloc.c (firn_xrealloc,
#    which everything grows by) and selfprof/malloc.c (the malloc interposer,
#    which defines realloc); the same search over a copy of a module's
#    file with a realloc( added must find it (so the pattern matches).
set -uo pipefail
AGENT=$1
FIRNCTL=$2
SRC=$3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

FORBIDDEN=' [A-Za-z] (tsdb_|pql_|scrape_|mdb_)'

agent_syms=$(nm "$AGENT") || { fail "nm $AGENT"; finish; exit; }
if grep -q ' T http_new$' <<<"$agent_syms"; then
    ok "firn-agent links http/ (http_new)"
else
    fail "firn-agent: no http_new symbol (is the binary stripped?)"
fi
bad=$(grep -E "$FORBIDDEN" <<<"$agent_syms" | head -5 | tr '\n' ';')
if [ -z "$bad" ]; then
    ok "firn-agent holds no store, query or scraper symbol"
else
    fail "firn-agent holds: $bad"
fi

ctl_syms=$(nm "$FIRNCTL") || { fail "nm $FIRNCTL"; finish; exit; }
for p in tsdb_ pql_ mdb_; do
    if grep -qE " [A-Za-z] $p" <<<"$ctl_syms"; then
        ok "the pattern finds $p in firnctl"
    else
        fail "no $p symbol in firnctl: the check above would see nothing"
    fi
done

bad=$(grep -n '#include "[a-z-]*/internal\.h"' "$SRC"/cmd/firnctl/*.[ch] | tr '\n' ';')
if [ -z "$bad" ]; then ok "firnctl includes no internal header"; else fail "firnctl: $bad"; fi

bad=""
for f in $(cd "$SRC" && git ls-files '*.c' '*.h' | grep -v '^test/'); do
    dir=${f%%/*}
    while read -r inc; do
        [ "${inc%%/*}" = "$dir" ] || bad+="$f includes $inc;"
    done < <(sed -n 's|^#include "\([a-z-]*/internal\.h\)".*|\1|p' "$SRC/$f")
done
if [ -z "$bad" ]; then ok "no module includes another's internal header"; else fail "$bad"; fi
bad=$(grep -l 'internal to config/' "$SRC"/config/*.h | tr '\n' ';')
if [ -z "$bad" ]; then ok "config/ has no internal header"; else fail "internal config/ headers: $bad"; fi

REALLOC_ALLOWED="model/alloc.c selfprof/malloc.c"
# A call of realloc or reallocarray itself: firn_xrealloc, __libc_realloc
# and the like are other names.
REALLOC_CALL='(^|[^A-Za-z0-9_])(realloc|reallocarray) *\('

# hand_grown FILE...: "file:line: text;" for each realloc( call.
hand_grown() {
    grep -HnE "$REALLOC_CALL" "$@" | tr '\n' ';'
}

files=()
for f in $(cd "$SRC" && git ls-files '*.c' | grep -v '^test/'); do
    [[ " $REALLOC_ALLOWED " == *" $f "* ]] && continue
    files+=("$SRC/$f")
done
if [ ${#files[@]} -eq 0 ]; then
    fail "no module source to search for realloc("
else
    bad=$(hand_grown "${files[@]}")
    if [ -z "$bad" ]; then
        ok "no realloc( outside model/alloc.c and selfprof/malloc.c (${#files[@]} files)"
    else
        fail "hand-written growth (use firn_grow, firn_buf or firn_xreallocarray): $bad"
    fi
fi
# The pattern finds a call, and not the names that merely contain realloc.
probe=$(mktemp) || { fail "mktemp"; finish; exit; }
printf '%s\n' 'p = firn_xrealloc(p, n); q = __libc_realloc(q, n);' >"$probe"
if [ -z "$(hand_grown "$probe")" ]; then
    ok "firn_xrealloc( and __libc_realloc( are not counted"
else
    fail "the realloc( pattern matches firn_xrealloc or __libc_realloc"
fi
cp "$SRC/tsdb/read.c" "$probe"
printf '%s\n' 'static void *grow(void *p, size_t n) { return realloc(p, n); }' >>"$probe"
if [ -n "$(hand_grown "$probe")" ]; then
    ok "the realloc( pattern finds a call added to tsdb/read.c"
else
    fail "the realloc( pattern misses a realloc( call"
fi
rm -f "$probe"

finish
