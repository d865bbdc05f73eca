#!/usr/bin/env bash
# Worst-case stack depth of every public entry point, from GCC's own frame sizes and call graph. Fails when any
# entry point can use more than the limit (16 KiB: worker threads with small stacks, musl's default is 128 KiB),
# when a frame is dynamic (a VLA or alloca: no static bound), or when the call graph has a cycle (recursion).
#
#   scripts/stack-usage.sh                                   native build (gcc), into build-stack
#   scripts/stack-usage.sh --cross cross/aarch64-linux-gnu.txt   cross build, into build-stack-aarch64-linux-gnu
#   options: --limit BYTES (16384), --builddir DIR, --top N (10)
#
# Method. The library is configured in its own build dir, release build type as shipped (the frames depend on
# the optimisation level and on inlining; a debug build is not what users run), with GCC's -fcallgraph-info=su:
# one .ci file per translation unit, holding every function actually emitted (inlined ones are part of their
# caller's frame), its frame in bytes (return address included), whether the frame is static, dynamic but bounded
# (stack realignment for _Alignas / AVX-512 spills: the bound is what is reported) or dynamic (unbounded), and
# every direct call it makes. The depth of a function is its frame plus the largest depth among its callees.
# - Entry points: every posattn_* symbol that the shared library exports (nm -D).
# - Indirect calls (the dispatcher's table of kernels): from src/<family>_api.c they may reach every kernel
#   posattn_<family>_*_f32_<isa> of every compiled ISA; from any other file, every kernel posattn_*_f32_* at all.
#   Both are over-approximations: the bound holds whatever ISA is active.
# - Calls that leave the library (libc, libm, SLEEF, pthread, compiler built-ins such as memcpy) are counted as a
#   fixed allowance of EXTERNAL_ALLOWANCE bytes on top of the caller's frame: an assumption about code this script
#   does not see, with a wide margin. Debian 12's x86-64 SLEEF kernels that the library calls (sincos, tanh) were
#   read with objdump: no frame, no call, at most 40 bytes of red zone (Sleef_sincosd8_u10avx512f); glibc's leaf
#   routines (sin, cos, pow, frexp, ldexp, memcpy, tolower, getenv) are of the same kind.
# - Recursion has no static bound and fails, except a function calling itself directly with a depth stated in
#   RECURSION_BOUNDS below (shell glob on the function name = the most frames of it on any path), each entry
#   justified by the code: the depth counts that many frames, then the worst of its other callees.
# The worst kernels are listed as well: an entry point's path shows only its worst callee.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=16384
top=10
cross=""
builddir=""
EXTERNAL_ALLOWANCE=512
RECURSION_BOUNDS=(
    # N-D rows form their logits, then call the 1-D softmax of those logits on themselves (nd.axes = 0, which
    # does not recurse again): two frames at most (src/neon/alibi.c).
    'posattn_alibi_softmax_row_f32_*=2'
)
while [ $# -gt 0 ]; do
    case "$1" in
    --cross) cross="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --builddir) builddir="$2"; shift 2 ;;
    --top) top="$2"; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "stack-usage.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

setup_args=(-Dtests=false -Dbench=false -Dfuzz=false -Dbuildtype=release -Dc_args=-fcallgraph-info=su)
nm_tool="nm"
if [ -n "$cross" ]; then
    [ -f "$cross" ] || { echo "stack-usage.sh: no cross file $cross" >&2; exit 2; }
    setup_args+=(--cross-file "$cross")
    : "${builddir:=build-stack-$(basename "$cross" .txt)}"
    # The cross toolchain's nm: the C compiler's name with gcc replaced by nm (aarch64-linux-gnu-gcc -> -nm).
    cross_cc=$(sed -n "s/^c *= *'\(.*\)'.*/\1/p" "$cross" | head -n1)
    if [ -n "$cross_cc" ] && command -v "${cross_cc%gcc}nm" >/dev/null; then nm_tool="${cross_cc%gcc}nm"; fi
else
    # -fcallgraph-info is GCC's (10 and later); clang has no equivalent.
    export CC=gcc
    : "${builddir:=build-stack}"
fi

# A fresh build dir: .ci files of sources that no longer exist must not linger.
rm -rf "$builddir"
meson setup "$builddir" "${setup_args[@]}" >/dev/null
ninja -C "$builddir" >/dev/null

shared=$(find "$builddir" -maxdepth 1 -name 'libposattn.so*' -type f | head -n1)
[ -n "$shared" ] || { echo "stack-usage.sh: no libposattn.so in $builddir" >&2; exit 1; }
entries=$("$nm_tool" -D --defined-only "$shared" | awk '$2 == "T" && $3 ~ /^posattn_/ { print $3 }')
[ -n "$entries" ] || { echo "stack-usage.sh: no exported posattn_* function in $shared" >&2; exit 1; }

# The library's translation units only (not meson's compiler sanity checks).
mapfile -t ci_files < <(find "$builddir" -name '*.ci' -path '*/libposattn*' | sort)
[ ${#ci_files[@]} -gt 0 ] || { echo "stack-usage.sh: no .ci file: does the compiler support -fcallgraph-info?" >&2; exit 1; }

echo "== stack usage of $(echo "$entries" | wc -l) entry points, ${#ci_files[@]} translation units ($builddir), limit $limit bytes"
python3 - "$limit" "$top" "$EXTERNAL_ALLOWANCE" "$entries" "${RECURSION_BOUNDS[*]}" "${ci_files[@]}" <<'PY'
import fnmatch
import re
import sys

limit, top, allowance = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
entries = sys.argv[4].split()
recursion_bounds = [(g, int(n)) for g, n in (b.split('=') for b in sys.argv[5].split())]
ci_files = sys.argv[6:]

node_re = re.compile(r'^node: \{ title: "([^"]+)" label: "([^"]*)"')
edge_re = re.compile(r'^edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
frame_re = re.compile(r'\\n(\d+) bytes \(([a-z,]+)\)')
api_re = re.compile(r'src_([a-z0-9]+)_api\.c\.ci$')
kernel_re = re.compile(r'^posattn_([a-z0-9]+)_\w*_f32_[a-z0-9]+$')

frame = {}    # function title -> bytes
kind = {}     # function title -> static | dynamic,bounded | dynamic
where = {}    # function title -> .ci file that defines it
callees = {}  # function title -> set of callee titles
indirect = {} # function title -> set of families it reaches indirectly ('' = unknown: every kernel)
for path in ci_files:
    family = api_re.search(path)
    family = family.group(1) if family else ''
    with open(path) as f:
        for line in f:
            m = node_re.match(line)
            if m:
                fm = frame_re.search(m.group(2))
                if fm:  # a definition (declarations have no frame)
                    frame[m.group(1)] = int(fm.group(1))
                    kind[m.group(1)] = fm.group(2)
                    where[m.group(1)] = path
                continue
            m = edge_re.match(line)
            if m:
                src, dst = m.groups()
                if dst == '__indirect_call':
                    indirect.setdefault(src, set()).add(family)
                else:
                    callees.setdefault(src, set()).add(dst)

kernels = {}
for name in frame:
    m = kernel_re.match(name)
    if m:
        kernels.setdefault(m.group(1), set()).add(name)
all_kernels = set().union(*kernels.values()) if kernels else set()
for src, families in indirect.items():
    for fam in families:
        callees.setdefault(src, set()).update(kernels.get(fam) or all_kernels)

errors = []
depth = {}  # title -> (bytes, path as a list of titles)
active = set()


def short(title):
    return title.rsplit(':', 1)[-1]


def worst(fn):
    if fn in depth:
        return depth[fn]
    if fn not in frame:  # outside the library
        return allowance, ['<external %s: %d allowed>' % (short(fn), allowance)]
    if fn in active:
        errors.append('recursion through %s: no static bound' % short(fn))
        return 0, ['<cycle>']
    frames = 1
    others = callees.get(fn, set())
    if fn in others:
        bound = [n for g, n in recursion_bounds if fnmatch.fnmatchcase(short(fn), g)]
        if not bound:
            errors.append('%s calls itself, with no bound in RECURSION_BOUNDS' % short(fn))
        frames = bound[0] if bound else 1
        others = others - {fn}
    active.add(fn)
    best, best_path = 0, []
    for callee in sorted(others):
        d, p = worst(callee)
        if d > best:
            best, best_path = d, p
    active.discard(fn)
    label = '%s (%d%s)' % (short(fn), frame[fn], ' x %d' % frames if frames > 1 else '')
    depth[fn] = (frames * frame[fn] + best, [label] + best_path)
    return depth[fn]


for fn in sorted(frame):
    if kind[fn] == 'dynamic':
        errors.append('dynamic frame (VLA or alloca) in %s (%s)' % (short(fn), where[fn]))

results = []
for e in entries:
    if e not in frame:
        errors.append('entry point %s not found in the call graphs' % e)
        continue
    d, p = worst(e)
    results.append((d, e, p))
results.sort(reverse=True)

print('worst %d of %d entry points (bytes: frame + callees, external calls at %d):' % (min(top, len(results)), len(results), allowance))
for d, e, p in results[:top]:
    print('  %6d  %s%s' % (d, e, '   <-- over %d' % limit if d > limit else ''))
    print('          ' + ' -> '.join(p))
kernel_depths = sorted(((worst(k)[0], k, worst(k)[1]) for k in all_kernels), reverse=True)
print('worst %d of %d kernels (the targets of indirect calls):' % (min(top, len(kernel_depths)), len(kernel_depths)))
for d, k, p in kernel_depths[:top]:
    print('  %6d  %s' % (d, k))
    print('          ' + ' -> '.join(p))
over = [r for r in results if r[0] > limit]
for d, e, _ in over:
    errors.append('%s can use %d bytes of stack (limit %d)' % (e, d, limit))
if errors:
    print('FAILED:')
    for msg in errors:
        print('  ' + msg)
    sys.exit(1)
print('OK: every entry point within %d bytes' % limit)
PY
