#!/usr/bin/env bash
# End-to-end test: the web UI's files as firn serves them (web/ui.c), with
# curl as the client.  Expected bodies come from the files in the source
# tree (cmp, sed for the __FIRN_ASSETS__ placeholder, gunzip for gzip
# bodies), expected Content-Types from the table below (IANA's types, not
# firn's table).  Embedded files; --web.ui-assets=DIR serving edits without
# a restart; every type, exclusions; basic auth over TLS.
#
# usage: web_ui.sh FIRN SRCDIR
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
src=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace
for tool in openssl htpasswd gzip cmp; do
    if ! command -v $tool >/dev/null; then
        fail "$tool is not installed (scripts/deps test)"
        finish
        exit 1
    fi
done
ui=$src/web/ui
echo "scrape_configs: []" >"$tmp/firn.yml"

# get URL [CURL_ARGS...]: fetch into $tmp/body with the headers in
# $tmp/headers; the status in CODE.
CODE=
get() {
    local url=$1
    shift
    : >"$tmp/body"  # curl leaves the file alone when no body comes
    CODE=$(curl_local -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@" "$url")
}
# hdr NAME: the value of a response header of the last get ("" when absent).
hdr() {
    tr -d '\r' <"$tmp/headers" | awk -v n="$1" 'BEGIN { n = tolower(n) }
        { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) {
            print substr($0, i + 2); exit } }'
}
# mime FILE: the Content-Type a browser needs for FILE.
mime() {
    case $1 in
    *.html) echo "text/html; charset=utf-8" ;;
    *.js | *.mjs) echo "text/javascript; charset=utf-8" ;;
    *.css) echo "text/css; charset=utf-8" ;;
    *.svg) echo "image/svg+xml" ;;
    *.png) echo "image/png" ;;
    *.ico) echo "image/x-icon" ;;
    *.json) echo "application/json" ;;
    *.woff2) echo "font/woff2" ;;
    *.txt) echo "text/plain; charset=utf-8" ;;
    esac
}
# assets DIR: the files of DIR served under /static/ (relative paths): a
# type from mime(), not a page, nothing under test/ or node_modules/, no
# dot file or directory.
assets() {
    (cd "$1" && find . -type f ! -name '*.html' ! -path './test/*' ! -path '*/node_modules/*' \
        ! -path '*/.*' | sed 's#^\./##' | while read -r f; do [ -n "$(mime "$f")" ] && echo "$f"; done)
}

# ---- embedded -----------------------------------------------------------------------
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
base=http://127.0.0.1:$FIRN_PORT

get "$base/"
same "GET / status" "$CODE" 200
same "GET / Content-Type" "$(hdr content-type)" "text/html; charset=utf-8"
same "GET / Cache-Control" "$(hdr cache-control)" "no-cache"
page_etag=$(hdr etag)
[[ $page_etag =~ ^\"[^\"]+\"$ ]] && ok "GET / has an ETag ($page_etag)" || fail "GET / ETag: '$page_etag'"
hash=$(grep -o '/static/[0-9a-f]*/' "$tmp/body" | head -1 | cut -d/ -f3)
[[ $hash =~ ^[0-9a-f]{16}$ ]] && ok "the page names its assets under /static/$hash/" ||
    fail "no /static/HASH/ in the page: $(head -c 300 "$tmp/body")"
sed "s#__FIRN_ASSETS__#/static/$hash#g" "$ui/index.html" >"$tmp/want"
check "GET / is web/ui/index.html with the placeholder replaced" cmp "$tmp/body" "$tmp/want"
grep -q __FIRN_ASSETS__ "$tmp/body" && fail "GET / still holds __FIRN_ASSETS__" ||
    ok "GET / holds no placeholder"

for page in "$ui"/*.html; do
    name=$(basename "$page" .html)
    [ "$name" = index ] && continue
    get "$base/$name" -H 'Accept-Encoding: gzip'
    same "GET /$name status" "$CODE" 200
    same "GET /$name Content-Encoding" "$(hdr content-encoding)" gzip
    same "GET /$name Vary" "$(hdr vary)" "Accept-Encoding"
    sed "s#__FIRN_ASSETS__#/static/$hash#g" "$page" >"$tmp/want"
    check "GET /$name gunzipped is web/ui/$name.html with the placeholder replaced" \
        cmp <(gzip -dc "$tmp/body") "$tmp/want"
done

get "$base/" -H "If-None-Match: $page_etag"
same "GET / with its ETag is 304" "$CODE" 304
same "the 304 has no body" "$(wc -c <"$tmp/body")" 0
get "$base/" -H 'If-None-Match: "someone-else"'
same "GET / with another ETag is 200" "$CODE" 200

n_assets=0
n_gzip=0
while read -r rel; do
    n_assets=$((n_assets + 1))
    url=$base/static/$hash/$rel
    get "$url"
    same "$rel status" "$CODE" 200
    same "$rel Content-Type" "$(hdr content-type)" "$(mime "$rel")"
    same "$rel Cache-Control" "$(hdr cache-control)" "public, max-age=31536000, immutable"
    [ -z "$(hdr content-encoding)" ] || fail "$rel: Content-Encoding without Accept-Encoding"
    check "$rel is the file" cmp "$tmp/body" "$ui/$rel"
    etag=$(hdr etag)
    get "$url" -H 'Accept-Encoding: gzip, deflate, br'
    if [ "$(hdr content-encoding)" = gzip ]; then
        n_gzip=$((n_gzip + 1))
        check "$rel gunzipped is the file" cmp <(gzip -dc "$tmp/body") "$ui/$rel"
        same "$rel gzip Vary" "$(hdr vary)" "Accept-Encoding"
        [ "$(hdr etag)" != "$etag" ] && ok "$rel: the gzip body has its own ETag" ||
            fail "$rel: gzip and identity share ETag $etag"
        [ "$(wc -c <"$tmp/body")" -lt "$(wc -c <"$ui/$rel")" ] && ok "$rel gzip is smaller" ||
            fail "$rel gzip is not smaller"
    else
        check "$rel (not compressed) is the file" cmp "$tmp/body" "$ui/$rel"
        # Text worth compressing must come compressed.
        case $rel in *.js | *.mjs | *.css | *.svg | *.json | *.txt)
            [ "$(wc -c <"$ui/$rel")" -lt 512 ] || fail "$rel: $(wc -c <"$ui/$rel") bytes of text sent uncompressed" ;;
        esac
    fi
    get "$url" -H "If-None-Match: W/\"x\", $etag"
    same "$rel with its ETag in a list is 304" "$CODE" 304
done < <(assets "$ui")
[ "$n_assets" -gt 0 ] && ok "$n_assets assets checked, $n_gzip served gzipped" || fail "no assets found in $ui"
[ "$n_gzip" -gt 0 ] || fail "no asset was served gzipped"

first=$(assets "$ui" | head -1)
get "$base/static/$hash/$first" -H 'Accept-Encoding: gzip;q=0, identity'
same "gzip;q=0 gets no gzip" "$(hdr content-encoding)" ""
get "$base/static/$hash/$first" -H 'Accept-Encoding: *'
same "Accept-Encoding: * gets gzip" "$(hdr content-encoding)" gzip
get "$base/static/$hash/$first" -H 'Accept-Encoding: *, gzip;q=0'
same "gzip;q=0 beside * gets no gzip" "$(hdr content-encoding)" ""
get "$base/static/$hash/$first" -I
same "HEAD status" "$CODE" 200
same "HEAD Content-Type" "$(hdr content-type)" "$(mime "$first")"
# With -I curl writes the headers as the output: nothing more came.
check "HEAD has no body" cmp "$tmp/body" "$tmp/headers"
same "HEAD Content-Length is the file's" "$(hdr content-length)" "$(wc -c <"$ui/$first")"

for path in "/static/$hash/no/such.js" "/static/0000000000000000/$first" "/static/$first" \
        "/static/$hash/index.html" "/static/$hash/" "/static/" "/no-such-page" "/index"; do
    get "$base$path"
    same "GET $path is 404" "$CODE" 404
done
if [ -d "$ui/test" ] && t=$(cd "$ui" && find test -type f | head -1) && [ -n "$t" ]; then
    get "$base/static/$hash/$t"
    same "the UI's tests ($t) are not served" "$CODE" 404
fi
get "$base/" -X POST
same "POST / is 405" "$CODE" 405
stop_pid "$FIRN_PID"

# ---- from a directory ----------------------------------------------------------------
dev=$tmp/ui
cp -r "$ui" "$dev"
mkdir -p "$dev/sub" "$dev/test" "$dev/node_modules/p" "$dev/.git"
head -c 3000 /dev/urandom >"$dev/sub/a.png"
for f in b.css c.svg d.json e.woff2 f.mjs g.ico h.txt; do
    printf 'content of %s\n' "$f" >"$dev/sub/$f"
done
for f in README.md sub/page.html test/x.test.mjs node_modules/p/index.js .git/x.js sub/.hidden.js; do
    echo "not served" >"$dev/$f"
done
if ! start_firn "$firn" "$tmp/dev.log" --config.file="$tmp/firn.yml" --web.ui-assets="$dev" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data"; then
    fail "start firn --web.ui-assets: $(tail -5 "$tmp/dev.log")"
    finish
    exit 1
fi
base=http://127.0.0.1:$FIRN_PORT
get "$base/" -H 'Accept-Encoding: gzip'
same "dev: GET / status" "$CODE" 200
same "dev: GET / Cache-Control" "$(hdr cache-control)" "no-cache"
sed "s#__FIRN_ASSETS__#/static/dev#g" "$dev/index.html" >"$tmp/want"
check "dev: GET / is the page with /static/dev" cmp "$tmp/body" "$tmp/want"
for rel in sub/a.png sub/b.css sub/c.svg sub/d.json sub/e.woff2 sub/f.mjs sub/g.ico sub/h.txt; do
    get "$base/static/dev/$rel"
    same "dev: $rel status" "$CODE" 200
    same "dev: $rel Content-Type" "$(hdr content-type)" "$(mime "$rel")"
    same "dev: $rel Cache-Control" "$(hdr cache-control)" "no-cache"
    check "dev: $rel is the file" cmp "$tmp/body" "$dev/$rel"
done
for rel in README.md sub/page.html test/x.test.mjs node_modules/p/index.js .git/x.js \
        sub/.hidden.js index.html; do
    get "$base/static/dev/$rel"
    same "dev: $rel is not served" "$CODE" 404
done
get "$base/static/$hash/$first"
same "dev: the embedded version's URL is 404" "$CODE" 404

get "$base/static/dev/sub/b.css"
old_etag=$(hdr etag)
printf 'body { color: red }\n' >>"$dev/sub/b.css"
get "$base/static/dev/sub/b.css" -H "If-None-Match: $old_etag"
same "dev: an edited file is 200 to the old ETag" "$CODE" 200
check "dev: the edit is served without a restart" cmp "$tmp/body" "$dev/sub/b.css"
new_etag=$(hdr etag)
[ "$new_etag" != "$old_etag" ] && ok "dev: the ETag follows the content" ||
    fail "dev: ETag $new_etag unchanged after an edit"
get "$base/static/dev/sub/b.css" -H "If-None-Match: $new_etag"
same "dev: the new ETag is 304" "$CODE" 304
printf 'export const added = 1;\n' >"$dev/sub/new.js"
get "$base/static/dev/sub/new.js"
same "dev: an added file is served" "$CODE" 200
check "dev: the added file's bytes" cmp "$tmp/body" "$dev/sub/new.js"
printf '<!-- edited -->\n' >>"$dev/index.html"
get "$base/"
sed "s#__FIRN_ASSETS__#/static/dev#g" "$dev/index.html" >"$tmp/want"
check "dev: an edited page is served without a restart" cmp "$tmp/body" "$tmp/want"
rm "$dev/sub/new.js"
get "$base/static/dev/sub/new.js"
same "dev: a removed file is 404" "$CODE" 404
stop_pid "$FIRN_PID"

# refused WHAT DIR MESSAGE: firn --web.ui-assets=DIR exits non-zero (within
# 30 s: a firn that starts after all is stopped by timeout) saying MESSAGE.
refused() {
    timeout 30 "$firn" --config.file="$tmp/firn.yml" --web.ui-assets="$2" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data" >"$tmp/bad.log" 2>&1
    local rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qF "$3" "$tmp/bad.log"; then
        ok "$1 stops startup: $3"
    else
        fail "$1: exit $rc, $(tail -2 "$tmp/bad.log")"
    fi
}
refused "a missing --web.ui-assets directory" "$tmp/nowhere" "web.ui-assets: $tmp/nowhere: No such file"
mkdir "$tmp/empty"
refused "a directory without index.html" "$tmp/empty" "web.ui-assets: $tmp/empty has no index.html"

# ---- basic auth over TLS --------------------------------------------------------------
if ! (cd "$tmp" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout server.key -out server.pem) >"$tmp/openssl.log" 2>&1; then
    fail "make a certificate: $(tail -3 "$tmp/openssl.log")"
    finish
    exit 1
fi
cat >"$tmp/web.yml" <<EOF
tls_server_config:
  cert_file: server.pem
  key_file: server.key
basic_auth_users:
  alice: $(htpasswd -nbBC 4 alice 'open sesame' | cut -d: -f2-)
EOF
if ! start_firn "$firn" "$tmp/tls.log" --config.file="$tmp/firn.yml" \
        --web.config.file="$tmp/web.yml" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$tmp/data"; then
    fail "start firn with TLS and basic auth: $(tail -5 "$tmp/tls.log")"
    finish
    exit 1
fi
base=https://localhost:$FIRN_PORT
tls=(--cacert "$tmp/server.pem" --resolve "localhost:$FIRN_PORT:127.0.0.1")
for path in / /targets "/static/$hash/$first" /static/nothing; do
    get "$base$path" "${tls[@]}"
    same "TLS, no credentials: GET $path is 401" "$CODE" 401
    same "TLS, no credentials: GET $path asks for Basic" "$(hdr www-authenticate)" Basic
    get "$base$path" "${tls[@]}" -u 'alice:wrong'
    same "TLS, a wrong password: GET $path is 401" "$CODE" 401
done
get "$base/" "${tls[@]}" -u 'alice:open sesame'
same "TLS, alice: GET / is 200" "$CODE" 200
sed "s#__FIRN_ASSETS__#/static/$hash#g" "$ui/index.html" >"$tmp/want"
check "TLS, alice: GET / is the page" cmp "$tmp/body" "$tmp/want"
get "$base/static/$hash/$first" "${tls[@]}" -u 'alice:open sesame'
same "TLS, alice: $first is 200" "$CODE" 200
check "TLS, alice: $first is the file" cmp "$tmp/body" "$ui/$first"
get "http://127.0.0.1:$FIRN_PORT/"
same "plain HTTP to the TLS port is 400" "$CODE" 400

finish
