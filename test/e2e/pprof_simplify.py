#!/usr/bin/env python3
"""pprof_simplify.py -- "FLAT<TAB>NAME" rows on standard input with each name
simplified as go tool pprof simplifies a function name it could not demangle
but that looks like a demangled C++ name (google/pprof's
internal/symbolizer: looksLikeDemangledCPlusPlus, then removeMatching for
"()" and "<>", the NoParams and NoTemplateParams options of its default
demangling).  pprof_fixtures.sh applies it to firnctl's rows of the
fixtures whose names pprof rewrites this way, so that their -top rows can be
compared too.  Our port of the rule, for the test only."""
import sys


def remove_matching(name, start, end):
    nesting = first = 0
    cur = 0
    while True:
        idx = -1
        for i in range(cur, len(name)):
            if name[i] in (start, end):
                idx = i; break
        if idx == -1: return name
        cur = idx
        if name[cur] == start:
            nesting += 1
            if nesting == 1: first = cur
        else:
            nesting -= 1
            if nesting < 0: return name
            if nesting == 0:
                name = name[:first] + name[cur+1:]
                cur = first - 1
        cur += 1
def looks_cpp(n):
    # Java names ("class.<init>") and Go methods of generic types are not C++
    if '.<' in n: return False
    if ']).' in n: return False
    return any(c in n for c in '<>[]') or '::' in n
for raw in sys.stdin.buffer:
    line = raw.rstrip(b'\n').decode('utf-8', errors='replace')
    flat, _, name = line.partition('\t')
    if looks_cpp(name):
        name = remove_matching(remove_matching(name, '(', ')'), '<', '>')
    print(flat + '\t' + name)
