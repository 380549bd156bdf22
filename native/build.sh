#!/usr/bin/env bash
# Builds the simulated Neuron runtime (native/nrt_sim.c) as OUTDIR/libnrt.so (soname libnrt.so.1) with the system gcc.
# Usage: native/build.sh OUTDIR      Prints the path of the library; on failure gcc's messages and a non-zero exit.
# CC (default gcc) and EXTRA_CFLAGS (e.g. -Werror) may be set in the environment.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="$1"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cc="${CC:-gcc}"
if ! command -v "$cc" >/dev/null 2>&1; then
    # the Maven test build calls this: without a C compiler the simulator tests are skipped (they say so)
    echo "nrt-sim not built: no C compiler '$cc' on PATH" >&2
    exit 0
fi
# -ffp-contract=off: every float operation is rounded on its own (no FMA), as the CPU twins compute.
# shellcheck disable=SC2086
"$cc" -std=c11 -O2 -fPIC -shared -pthread -ffp-contract=off -Wall -Wextra ${EXTRA_CFLAGS:-} \
    -I "$root/include" -Wl,-soname,libnrt.so.1 -o "$out/libnrt.so.tmp" "$here/nrt_sim.c"
mv -f "$out/libnrt.so.tmp" "$out/libnrt.so"
echo "$out/libnrt.so"
