#!/usr/bin/python3
"""Writes the torch reference fixtures for dev.sdjvm.tensor into src/core/test/resources/tensor/.

Run from the repository root with Debian's python (torch 1.13 CPU):

    /usr/bin/python3 tools/reference/make_tensor_fixtures.py

Everything is seeded; re-running gives byte-identical files on the same torch build / CPU capability.
See src/core/test/resources/tensor/README.md for the file formats.
"""
import gzip
import os
import struct
import sys

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "core", "test", "resources", "tensor")


def capability():
    cfg = torch.__config__.show()
    marker = "CPU capability usage:"
    return cfg.split(marker, 1)[1].split("\n", 1)[0].strip() if marker in cfg else "unknown"


# ------------------------------------------------------------------------------------------------------- bf16

EDGE_BITS = [
    0x00000000, 0x80000000,              # +0, -0
    0x00000001, 0x80000001,              # min subnormal (rounds to 0)
    0x00008000, 0x00008001, 0x00018000,  # subnormal ties: to even (0), above tie (up), tie with odd lsb (up)
    0x007FFFFF, 0x807FFFFF,              # max subnormal (rounds up to min normal)
    0x00800000, 0x80800000,              # min normal
    0x7F7FFFFF, 0xFF7FFFFF,              # max finite (rounds to Inf)
    0x7F7F7FFF, 0x7F7F8000, 0x7F7F8001,  # just below / at / above the overflow tie
    0x7F7E8000, 0xFF7F8000,              # tie to even staying finite; negative overflow tie
    0x3F800000, 0x3F808000, 0x3F818000,  # 1.0; 1+2^-8 tie -> even (down); odd lsb tie -> up
    0x3F807FFF, 0x3F808001, 0xBF808000, 0xBF818000,
    0x3F80FFFF, 0x3FFFFFFF, 0x40490FDB,  # carry into exponent; 2-ulp; pi
    0x7F800000, 0xFF800000,              # +Inf, -Inf
    0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FBFFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
    0x7FC12345, 0x7F810000, 0x7F808000, 0x7F807FFF, 0xFF812345, 0x7FFF8000,  # NaNs, several payloads
]


def bf16_bulk(bits_u32):
    """Contiguous float32 tensor -> bfloat16 (torch's vectorised copy kernel)."""
    f = torch.from_numpy(bits_u32.view(np.float32).copy())
    return f.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16).copy()


def bf16_scalar(bits_u32):
    """Strided float32 view -> bfloat16: goes through the scalar c10::BFloat16(float) conversion."""
    n = len(bits_u32)
    wide = np.zeros(2 * n, dtype=np.uint32)
    wide[0::2] = bits_u32
    f = torch.from_numpy(wide.view(np.float32))[0::2]
    assert not f.is_contiguous()
    out = torch.empty(n, dtype=torch.bfloat16)
    out.copy_(f)
    return out.view(torch.int16).numpy().view(np.uint16).copy()


def roundtrip(bits_u32):
    f = torch.from_numpy(bits_u32.view(np.float32).copy())
    return f.to(torch.bfloat16).to(torch.float32).numpy().view(np.uint32).copy()


def random_bits(rng, n):
    """A seeded mix: uniform patterns, ties/near-ties in the low half, and extreme exponents."""
    a = n * 4 // 10
    b = n * 3 // 10
    c = n - a - b
    uniform = rng.randint(0, 2**32, size=a, dtype=np.uint64).astype(np.uint32)
    hi = rng.randint(0, 2**16, size=b, dtype=np.uint64).astype(np.uint32) << 16
    lo = rng.choice(np.array([0x0000, 0x7FFF, 0x8000, 0x8001, 0xFFFF], dtype=np.uint32), size=b)
    ties = hi | lo
    sign = rng.randint(0, 2, size=c, dtype=np.uint64).astype(np.uint32) << 31
    exp = rng.choice(np.array([0x00, 0x01, 0x7E, 0xFE, 0xFF], dtype=np.uint32), size=c) << 23
    mant = rng.randint(0, 2**23, size=c, dtype=np.uint64).astype(np.uint32)
    extreme = sign | exp | mant
    out = np.concatenate([uniform, ties, extreme])
    rng.shuffle(out)
    return out


def write_bf16():
    edges = np.array(EDGE_BITS, dtype=np.uint32)
    rng = np.random.RandomState(20240601)
    rand = random_bits(rng, 100_000)
    all_bf16 = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    widened = torch.from_numpy(all_bf16.view(np.int16).copy()).view(torch.bfloat16).to(torch.float32)
    widened = widened.numpy().view(np.uint32).copy()

    payload = bytearray()
    payload += b"SDJVBF16"
    payload += struct.pack("<ii", 1, len(edges))
    payload += edges.astype("<u4").tobytes()
    payload += bf16_bulk(edges).astype("<u2").tobytes()
    payload += bf16_scalar(edges).astype("<u2").tobytes()
    payload += roundtrip(edges).astype("<u4").tobytes()
    payload += struct.pack("<i", len(rand))
    payload += rand.astype("<u4").tobytes()
    payload += bf16_bulk(rand).astype("<u2").tobytes()
    payload += bf16_scalar(rand).astype("<u2").tobytes()
    payload += widened.astype("<u4").tobytes()
    path = os.path.join(OUT, "bf16_torch.bin.gz")
    with open(path, "wb") as fh:
        # mtime=0: reproducible bytes
        with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(bytes(payload))
    print(f"{path}: {os.path.getsize(path)} bytes ({len(edges)} edges, {len(rand)} random)")


# ------------------------------------------------------------------------------------------------------ randn

RANDN_SEEDS = [0, 7, 42, 2**32 + 5, 1234567890123456789, 2**63 + 12345, 2**64 - 1]
RANDN_SIZES = [1, 3, 15, 16, 17, 100, 1024]


def randn_cases():
    """(seed, [shape, shape, ...]): each case is a fresh generator and consecutive torch.randn calls on it."""
    cases = []
    for seed in RANDN_SEEDS:
        for n in RANDN_SIZES:
            cases.append((seed, [(n,)]))
    cases.append((0, [(1, 4, 16, 16)]))
    for seed in [0, 42, 2**63 + 12345]:
        cases.append((seed, [(1, 4, 64, 64)]))
    # consecutive draws: state continues, and the numel < 16 path's cached second normal survives between calls
    cases.append((42, [(1, 4, 64, 64), (1, 4, 64, 64)]))
    cases.append((7, [(3,), (3,)]))
    cases.append((7, [(1,), (17,), (1,), (2,)]))
    cases.append((2**32 + 5, [(100,), (31,), (15,), (16,)]))
    # many numel < 16 draws in a row: 30000 values through the double Box-Muller path (libm log/sin/cos)
    cases.append((2024, [(15,)] * 2000))
    return cases


def write_randn():
    cases = randn_cases()
    payload = bytearray()
    payload += b"SDJVRNDN"
    payload += struct.pack("<ii", 1, len(cases))
    total = 0
    for seed, shapes in cases:
        g = torch.Generator(device="cpu").manual_seed(seed)
        payload += struct.pack("<Qi", seed, len(shapes))
        for shape in shapes:
            t = torch.randn(shape, generator=g, dtype=torch.float32)
            assert t.is_contiguous()
            bits = t.numpy().reshape(-1).view(np.uint32)
            payload += struct.pack("<i", len(shape))
            payload += struct.pack("<%di" % len(shape), *shape)
            payload += bits.astype("<u4").tobytes()
            total += bits.size
    path = os.path.join(OUT, "randn_torch.bin.gz")
    with open(path, "wb") as fh:
        with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(bytes(payload))
    print(f"{path}: {os.path.getsize(path)} bytes ({len(cases)} cases, {total} floats)")


def main():
    os.makedirs(OUT, exist_ok=True)
    print(f"torch {torch.__version__}, CPU capability {capability()}, numpy {np.__version__}")
    what = sys.argv[1:] or ["bf16", "randn"]
    if "bf16" in what:
        write_bf16()
    if "randn" in what:
        write_randn()


if __name__ == "__main__":
    main()
