/* text.h -- text encodings every writer shares: UTF-8 (the one decoder and
 * encoder), Go's strconv.Quote, JSON strings as Go's encoding/json writes
 * them, and HTTP reason phrases. */
#ifndef FIRN_MODEL_TEXT_H
#define FIRN_MODEL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/buf.h"

/* One UTF-8 sequence at s[0..len) (len > 0): its length with *rune set, or
 * 0 when invalid (bad lead byte, missing continuation, overlong form,
 * surrogate, past U+10FFFF). */
size_t firn_utf8_decode(const unsigned char *s, size_t len, uint32_t *rune);
/* The UTF-8 sequence of rune r (at most 0x10FFFF) into out: its length,
 * 1 to 4.  Surrogates are the caller's to refuse. */
size_t firn_utf8_encode(uint32_t r, char out[4]);
/* The len bytes at s are valid UTF-8. */
bool firn_utf8_valid(const char *s, size_t len);

/* The Go-quoted (strconv.Quote) form of s[0..len) written to out when out
 * is not NULL; returns its length, quotes included: at most 10 bytes per
 * input byte, plus 2.  Invalid UTF-8 bytes come out as \xNN, as in Go. */
size_t firn_go_quote(char *out, const char *s, size_t len);

/* s (NULL as "") as a JSON string escaped as Go's encoding/json does (<, >,
 * & and U+2028/9 as \u escapes; invalid UTF-8 as \ufffd). */
void firn_json_string(firn_buf *b, const char *s);

/* The reason phrase of an HTTP status, as Go's http.StatusText ("Not
 * Found"); "" for a code it does not know. */
const char *firn_http_status_text(int status);

#endif
