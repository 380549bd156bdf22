#!/usr/bin/env bash
# Runs the simulator under sanitizers (developer check, not part of mvn verify):
#  - nrt_sim_stress (threads, barrier, init/close cycles) with ThreadSanitizer and with AddressSanitizer+UBSan
#  - tools/reference/make_sim_model.py --check against an ASan+UBSan build of libnrt.so
# Usage: native/test/run_sanitizers.sh [WORKDIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
neff="$root/src/all/test/resources/models/sim-neuron/neff/unet.neff"
flags=(-std=c11 -O1 -g -pthread -ffp-contract=off -Wall -Wextra -I "$root/include" -I "$root/native")
for san in thread address,undefined; do
    gcc "${flags[@]}" -fsanitize="$san" -fno-sanitize-recover=all -o "$work/stress-${san%%,*}" \
        "$here/nrt_sim_stress.c" "$root/native/nrt_sim.c"
    echo "== nrt_sim_stress with -fsanitize=$san"
    "$work/stress-${san%%,*}" "$neff"
done
gcc "${flags[@]}" -fPIC -shared -fsanitize=address,undefined -fno-sanitize-recover=all -o "$work/libnrt-asan.so" \
    "$root/native/nrt_sim.c"
echo "== make_sim_model.py --check with an ASan+UBSan libnrt.so"
LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" ASAN_OPTIONS=detect_leaks=0 \
    /usr/bin/python3 "$root/tools/reference/make_sim_model.py" --check "$work/libnrt-asan.so" --trials 1 \
    2>"$work/check-stderr.txt" | tail -1
if grep -E "ERROR: AddressSanitizer|runtime error" "$work/check-stderr.txt"; then
    exit 1
fi
echo "sanitizers: clean"
