#!/usr/bin/python3
"""Fixtures for the simulated Neuron runtime (native/nrt_sim.c): NEFFs that carry an nrt-sim program, Neuron-style
TorchScript artifacts that carry those NEFFs, and CPU TorchScript "twins" that compute the same functions bit for
bit.

    # Neuron kind: compiled_models/*.pt carry the NEFFs (+ raw NEFFs in neff/), as AWS's directories (no manifest)
    /usr/bin/python3 tools/reference/make_sim_model.py --out DIR --geometry tiny --kind neuron --packing mixed
    # CPU kind: compiled_models/*.pt are traced twins (with a manifest)
    /usr/bin/python3 tools/reference/make_sim_model.py --out DIR --geometry tiny --kind cpu
    # optimum-neuron's export layout: <component>/model.neuron (+ config.json with its "neuron" section), the
    # vae_decoder's program is post_quant_conv + decoder (fn vae_decode); --separate-weights marks every component
    # inline_weights_to_neff = false (what the JVM refuses)
    /usr/bin/python3 tools/reference/make_sim_model.py --out DIR --geometry tiny --kind neuron --layout optimum
    # the CPU VAE encoder twin returning a bare tensor and a 1-tuple (vae_encoder_{tensor,tuple}.pt)
    /usr/bin/python3 tools/reference/make_sim_model.py --encoder-variants DIR --geometry tiny
    # self-check: generate both kinds in a temporary folder, run every NEFF through LIBNRT with ctypes and demand
    # bit-equality with the twins; plus conversions, validation and runtime-semantics checks
    /usr/bin/python3 tools/reference/make_sim_model.py --check target/nrt-sim/libnrt.so [--geometry sd21]

Geometries: tiny (64x64 image, latents 4x8x8, text hidden 16, 77 tokens, VAE scale 8: the repo's tiny test models)
and sd21 (SD 2.1-base 512: latents 4x64x64, hidden 1024). Dtypes as AWS's Inferentia2 deployment: text encoder int64
ids -> bf16, unet bf16 in/out, post_quant_conv, decoder and encoder float32. Static batch 1.

The program functions (native/README.md has the authoritative text). Every step is one float32 operation:
  text_encoder  hidden[b,s,j] = float((id*(j+1) + 7*s) mod 64) * 0.03125 - 1;  pooled[b,j] = hidden[b,S-1,j]
  unet          p = (c*h + y)*w + x; e = ehs[b, p % S, p % H]; eps = (sample*0.5 + e*0.25) + t[b]*0.0009765625
  post_quant_conv  r = z*0.5 + 0.125
  vae_decoder   img[b,k,Y,X] = q[b,k%C,Y/f,X/f]*0.25 + q[b,(k+1)%C,Y/f,X/f]*0.125
  vae_decode    vae_decoder(post_quant_conv(z)) in float32 (optimum-neuron's vae_decoder is diffusers' vae.decode)
  vae_encoder   m[b,k,y,x] = img[b,k%3,y*f,x*f]*0.5 + img[b,(k+1)%3,y*f+f-1,x*f+f-1]*0.25  (k < 2C: mean, logvar)
Run with Debian's /usr/bin/python3 (torch 1.13); NEFFs need only the standard library (tarfile, struct, hashlib).
"""
import argparse
import ctypes
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
import zipfile
from typing import Dict, List, Tuple

import torch
from torch import Tensor

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, os.path.join(TOOLS, "model"))
import sd_arch  # noqa: E402  (config dicts with diffusers/transformers keys)

REF = os.path.join(REPO, "src", "all", "test", "resources", "reference", "pipeline", "tiny-sd21-dev")
CREATED_BY = "tools/reference/make_sim_model.py"
ROLES = ["text_encoder", "unet", "vae_post_quant_conv", "vae_decoder", "vae_encoder"]
FN_OF_ROLE = {"text_encoder": "text_encoder", "unet": "unet", "vae_post_quant_conv": "post_quant_conv",
              "vae_decoder": "vae_decoder", "vae_encoder": "vae_encoder"}
INLINE_ROLES_MIXED = ("unet", "vae_decoder")

GEOMETRIES = {
    # preset: sd_arch config preset; image: pixels; latent: latent side; hidden: text hidden size
    "tiny": {"preset": "tiny", "image": 64, "latent": 8, "channels": 4, "hidden": 16, "tokens": 77},
    "sd21": {"preset": "sd21-base", "image": 512, "latent": 64, "channels": 4, "hidden": 1024, "tokens": 77},
}

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
                "int64": torch.int64, "int32": torch.int32, "int16": torch.int16, "int8": torch.int8,
                "uint8": torch.uint8}
ELEM_SIZE = {"float32": 4, "bfloat16": 2, "float16": 2, "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1,
             "uint16": 2, "uint32": 4, "uint64": 8}
# nrt_dtype_t (SDK 2.28+) and nrt_legacy_dtype_t (before), include/nrt_binding.h
DTYPE_CURRENT = {"uint64": 1, "int8": 2, "uint8": 3, "int16": 4, "uint16": 5, "bfloat16": 6, "float16": 7,
                 "int32": 8, "uint32": 9, "float32": 10, "int64": 12}
DTYPE_LEGACY = {"float32": 1, "float16": 2, "bfloat16": 3, "int8": 4, "uint8": 5, "int16": 6, "uint16": 7,
                "int32": 8, "uint32": 9, "int64": 10, "uint64": 11}


# ------------------------------------------------------------------------------------------------- signatures

# the UNet's timestep dtype (--unet-timestep): AWS's wrapper passes it in the UNet's dtype (bf16); a UNet traced with
# an integer example timestep takes int64 or int32 (torch-neuronx keeps the example's dtype)
UNET_TIMESTEP = {"dtype": "bfloat16"}


def signatures(geo, batch=1):
    """Per role: NEFF tensors in program (declaration) order as (usage, name, dtype, shape, contract_name)."""
    g = GEOMETRIES[geo]
    B, C, L, H, S, img = batch, g["channels"], g["latent"], g["hidden"], g["tokens"], g["image"]
    return {
        # output1 (pooler_output) is declared FIRST (the JVM must order tensors by the index in their names, the
        # argument order: output0 = last_hidden_state, as CLIPTextModel returns it); the input sits between the
        # outputs so that nothing can rely on inputs coming first in nrt_get_model_tensor_info
        "text_encoder": [("out", "output1", "bfloat16", [B, H], "pooler_output"),
                         ("in", "input0", "int64", [B, S], "input_ids"),
                         ("out", "output0", "bfloat16", [B, S, H], "last_hidden_state")],
        "unet": [("in", "input0", "bfloat16", [B, C, L, L], "sample"),
                 ("in", "input1", UNET_TIMESTEP["dtype"], [B], "timestep"),
                 ("in", "input2", "bfloat16", [B, S, H], "encoder_hidden_states"),
                 ("out", "output0", "bfloat16", [B, C, L, L], "noise_pred")],
        "vae_post_quant_conv": [("in", "input0", "float32", [B, C, L, L], "latent"),
                                ("out", "output0", "float32", [B, C, L, L], "latent")],
        "vae_decoder": [("in", "input0", "float32", [B, C, L, L], "latent"),
                        ("out", "output0", "float32", [B, 3, img, img], "image")],
        "vae_encoder": [("in", "input0", "float32", [B, 3, img, img], "image"),
                        ("out", "output0", "float32", [B, 2 * C, L, L], "latent_parameters")],
    }


def program_text(fn, tensors, delay_us=0):
    lines = ["nrtsim 1", "fn " + fn]
    for usage, name, dtype, shape, *_ in tensors:
        lines.append(" ".join([usage, name, dtype] + [str(d) for d in shape]))
    if delay_us:
        lines.append("delay_us %d" % delay_us)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------- NEFF

def _tar_member(tf, name, data, is_dir=False):
    ti = tarfile.TarInfo(name)
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    if is_dir:
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        tf.addfile(ti)
    else:
        ti.mode = 0o644
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))


def make_tar(members, fmt=tarfile.USTAR_FORMAT):
    """Deterministic tar: members = [(name, bytes or None for a directory)]."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members:
            _tar_member(tf, name, data, is_dir=data is None)
    return buf.getvalue()


def neff_header(data, name, pkg_version=1, major=2, minor=0, header_size=1024, data_size=None):
    """neff_header_t (neuron-runtime/explore/work-with-neff-files.rst), little-endian, 1024 bytes."""
    digest = hashlib.sha256(data).digest()
    uid = uuid.uuid5(uuid.NAMESPACE_URL, "nrt-sim:%s:%s" % (name, digest.hex())).bytes
    h = struct.pack("<QQQQQ", pkg_version, header_size, len(data) if data_size is None else data_size, major, minor)
    h += b"nrt-sim 1 (tools/reference/make_sim_model.py)".ljust(128, b"\0")
    h += struct.pack("<I", 1)                        # num_tpb
    h += digest                                      # hash[32]: sha256 of the tar (pkg_version 1)
    h += uid                                         # uuid[16]
    h += name.encode().ljust(256, b"\0")[:256]       # name[256]
    h += struct.pack("<I", 1)                        # requested_tpb_count
    h += bytes([1]) + bytes(63)                      # tpb_per_node[64]
    h += struct.pack("<Q", 0)                        # feature_bits
    h += struct.pack("<I", 1)                        # lnc_size
    h += bytes(468)                                  # pad
    assert len(h) == 1024, len(h)
    return h


def make_neff(role, fn, tensors, geometry, delay_us=0, extra_json=None):
    prog = program_text(fn, tensors, delay_us).encode()
    meta = {"format": "nrt-sim/1", "name": role, "function": fn, "geometry": geometry,
            "program": "sg00/program.nrtsim", "created_by": CREATED_BY,
            "inputs": [{"name": n, "dtype": d, "shape": s} for u, n, d, s, *_ in tensors if u == "in"],
            "outputs": [{"name": n, "dtype": d, "shape": s} for u, n, d, s, *_ in tensors if u == "out"]}
    if extra_json:
        meta.update(extra_json)
    tar = make_tar([("neff.json", (json.dumps(meta, indent=2) + "\n").encode()), ("sg00", None),
                    ("sg00/program.nrtsim", prog)])
    return neff_header(tar, role) + tar


def tar_block_valid(b):
    """A 512-byte POSIX/GNU tar header with a correct checksum (what the JVM's NEFF scanner demands)."""
    if len(b) < 512 or b[257:263] not in (b"ustar\0", b"ustar "):
        return False
    try:
        stored = int(b[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(b[:148]) + 8 * 32 + sum(b[156:512])


def find_neffs(blob):
    """Every NEFF in a byte string, found by its header alone (header_size 1024 at +8, data_size fitting, a valid
    tar block at +1024): the JVM's rule. Returns [(offset, neff_bytes)]."""
    out, key, pos = [], struct.pack("<Q", 1024), 0
    while True:
        i = blob.find(key, pos)
        if i < 0:
            return out
        pos = i + 1
        off = i - 8
        if off < 0 or off + 24 > len(blob):
            continue
        data_size = struct.unpack_from("<Q", blob, off + 16)[0]
        end = off + 1024 + data_size
        if data_size >= 512 and end <= len(blob) and tar_block_valid(blob[off + 1024:off + 1536]):
            out.append((off, blob[off:end]))


def neffs_in_archive(path):
    """NEFFs found in any record of a TorchScript zip archive: [(record, offset, bytes)]."""
    found = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            for off, neff in find_neffs(z.read(info)):
                found.append((info.filename, off, neff))
    return found


# ------------------------------------------------------------------------------- TorchScript zip (torch layout)

def read_records(path):
    """Records of a torch zip archive in file order: (name, method, crc, raw_bytes_as_stored, uncompressed_size)."""
    b = open(path, "rb").read()
    out = []
    with zipfile.ZipFile(path) as z:
        for i in z.infolist():
            o = i.header_offset
            nl, el = struct.unpack_from("<HH", b, o + 26)
            start = o + 30 + nl + el
            out.append((i.filename, i.compress_type, i.CRC, b[start:start + i.compress_size], i.file_size))
    return out


def write_archive(path, records, align=64):
    """Writes records the way torch's PyTorchStreamWriter (miniz) does: local headers with the data-descriptor flag
    and zero sizes, an 'FB' extra field padding every record's data to a 64-byte boundary with 'Z' bytes, a data
    descriptor after each record, the central directory, then zip64 end record + locator + end record. Rewriting an
    archive written by torch.jit.save with its own records reproduces it byte for byte (checked by --check)."""
    out, central = bytearray(), []
    for name, method, crc, raw, usize in records:
        nb = name.encode()
        off = len(out)
        pad = (-(off + 30 + len(nb) + 4)) % align
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        ver = 20 if method == zipfile.ZIP_DEFLATED else 0
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, ver, 0x0808, method, 0, 0, 0, 0, 0, len(nb), len(extra))
        out += nb + extra + raw
        out += struct.pack("<IIII", 0x08074B50, crc, len(raw), usize)
        central.append((nb, method, crc, len(raw), usize, off, ver))
    cd_off = len(out)
    for nb, method, crc, cs, us, off, ver in central:
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, ver, 0x0808, method, 0, 0, crc, cs, us, len(nb),
                           0, 0, 0, 0, 0, off)
        out += nb
    cd_size, z64, n = len(out) - cd_off, len(out), len(central)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, n, n, cd_size, cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, cd_size, cd_off, 0)
    with open(path, "wb") as f:
        f.write(bytes(out))


# the largest archive (and offset) a zip without zip64 records can describe
ZIP32_LIMIT = 0xFFFFFFFF


def save_module(module, path, data_pkl_rewrite=None):
    """torch.jit.save into a temporary file named like `path` (the archive's top folder is the file's stem), then
    re-zip without the *.debug_pkl records (they hold this script's absolute path: not reproducible) and, optionally,
    with data.pkl rewritten."""
    with tempfile.TemporaryDirectory() as td:
        tmp = os.path.join(td, os.path.basename(path))
        torch.jit.save(module, tmp)
        if os.path.getsize(tmp) >= ZIP32_LIMIT:
            # write_archive writes no zip64 records: a full-size UNet (over 4 GiB) keeps torch's own archive, debug
            # records and all (such exports are for benchmarks, made by a script, never committed)
            shutil.move(tmp, path)
            return
        recs = []
        for name, method, crc, raw, usize in read_records(tmp):
            if name.endswith(".debug_pkl"):
                continue
            if name.endswith("/data.pkl") and data_pkl_rewrite is not None:
                assert method == zipfile.ZIP_STORED
                raw = data_pkl_rewrite(raw)
                crc, usize = zipfile.crc32(raw) & 0xFFFFFFFF, len(raw)
            recs.append((name, method, crc, raw, usize))
    write_archive(path, recs)


# ----------------------------------------------------------------------------- Neuron-style artifacts (the NEFF)

NEFF_PLACEHOLDER = "NRTSIM-NEFF-PLACEHOLDER-7f3a9c21"


class SimNeuronArtifact(torch.nn.Module):
    """Carries the NEFF like a torch-neuronx artifact: as a uint8 buffer, or (packing 'inline') as raw bytes that
    write_neuron_artifact puts in place of NEFF_PLACEHOLDER."""

    def __init__(self, neff: bytes, packing: str):
        super().__init__()
        if packing == "buffer":
            self.register_buffer("neff", torch.frombuffer(bytearray(neff), dtype=torch.uint8).clone())
        else:
            self.neff_state = NEFF_PLACEHOLDER


class SimNeuronTextEncoder(SimNeuronArtifact):
    """Stands in for a torch-neuronx traced text encoder: the NEFF is its payload, forward needs a Neuron runtime."""

    def forward(self, input_ids: Tensor) -> Dict[str, Tensor]:
        raise RuntimeError("nrt-sim artifact: run its NEFF with libnrt (native/nrt_sim.c), not with libtorch")


class SimNeuronUNet(SimNeuronArtifact):
    def forward(self, sample: Tensor, timestep: Tensor, encoder_hidden_states: Tensor) -> Tuple[Tensor]:
        raise RuntimeError("nrt-sim artifact: run its NEFF with libnrt (native/nrt_sim.c), not with libtorch")


class SimNeuronVae(SimNeuronArtifact):
    def forward(self, latent: Tensor) -> Tensor:
        raise RuntimeError("nrt-sim artifact: run its NEFF with libnrt (native/nrt_sim.c), not with libtorch")


NEURON_CLASSES = {"text_encoder": SimNeuronTextEncoder, "unet": SimNeuronUNet,
                  "vae_post_quant_conv": SimNeuronVae, "vae_decoder": SimNeuronVae, "vae_encoder": SimNeuronVae}


def write_neuron_artifact(role, neff, packing, path):
    """packing 'buffer': the NEFF is a uint8 tensor (its own data/N record). 'inline': the NEFF's raw bytes are a
    str attribute inside data.pkl (BINUNICODE), like torch-neuronx's std::string model state; torch's C++ unpickler
    reads BINUNICODE as bytes, so torch.jit.load still loads the archive."""
    module = torch.jit.script(NEURON_CLASSES[role](neff, packing))
    if packing == "buffer":
        save_module(module, path)
        return
    ph = NEFF_PLACEHOLDER.encode()
    old = b"X" + struct.pack("<I", len(ph)) + ph
    new = b"X" + struct.pack("<I", len(neff)) + neff

    def rewrite(pkl):
        assert pkl.count(old) == 1, "placeholder must occur once in data.pkl"
        return pkl.replace(old, new)

    save_module(module, path, rewrite)


# ----------------------------------------------------------------------------------------------- CPU twins

class TwinTextEncoder(torch.nn.Module):
    """CLIPTextModel-shaped twin: ids int64 [B,S] -> {last_hidden_state [B,S,H], pooler_output [B,H]} in bf16."""

    def __init__(self, hidden):
        super().__init__()
        self.hidden = hidden

    def forward(self, input_ids):
        ids = input_ids.to(torch.int64)
        j1 = torch.arange(1, self.hidden + 1, dtype=torch.int64)
        s7 = torch.arange(ids.shape[1], dtype=torch.int64) * 7
        v = torch.remainder(ids.unsqueeze(-1) * j1 + s7.unsqueeze(-1), 64)  # int64, wraps like the C code
        m = v.to(torch.float32) * 0.03125
        hidden = m - 1.0
        pooled = hidden[:, -1, :]
        return {"last_hidden_state": hidden.to(torch.bfloat16), "pooler_output": pooled.to(torch.bfloat16)}


class TwinUNet(torch.nn.Module):
    """AWS UNet wrapper-shaped twin: (sample, timestep [B], encoder_hidden_states) bf16 -> (noise_pred,) bf16."""

    def forward(self, sample, timestep, encoder_hidden_states):
        s = sample.float()
        t = timestep.float()
        ehs = encoder_hidden_states.float()
        p = torch.arange(s.shape[1] * s.shape[2] * s.shape[3])
        e = ehs[:, p % ehs.shape[1], p % ehs.shape[2]].reshape(s.shape)
        m1 = s * 0.5
        m2 = e * 0.25
        a = m1 + m2
        m3 = t * 0.0009765625
        r = a + m3.reshape(-1, 1, 1, 1)
        return (r.to(torch.bfloat16),)


class TwinPostQuantConv(torch.nn.Module):
    def forward(self, z):
        m = z.float() * 0.5
        return m + 0.125


class TwinVaeDecoder(torch.nn.Module):
    def __init__(self, factor, out_channels=3):
        super().__init__()
        self.factor = factor
        self.out_channels = out_channels

    def forward(self, q):
        x = q.float()
        up = x.repeat_interleave(self.factor, dim=2).repeat_interleave(self.factor, dim=3)
        k = torch.arange(self.out_channels)
        a = up.index_select(1, k % x.shape[1]) * 0.25
        c = up.index_select(1, (k + 1) % x.shape[1]) * 0.125
        return a + c


class TwinVaeEncoder(torch.nn.Module):
    """optimum-neuron's VAE encoder export: image [B,3,H,W] -> {"latent_parameters": moments [B,2C,h,w]}."""

    def __init__(self, factor, moments_channels):
        super().__init__()
        self.factor = factor
        self.moments_channels = moments_channels

    def forward(self, image):
        x = image.float()
        f = self.factor
        k = torch.arange(self.moments_channels)
        a = x[:, :, ::f, ::f].index_select(1, k % x.shape[1]) * 0.5
        c = x[:, :, f - 1::f, f - 1::f].index_select(1, (k + 1) % x.shape[1]) * 0.25
        return {"latent_parameters": a + c}


class TwinVaeEncoderWrapped(torch.nn.Module):
    """The VAE encoder twin under another output wrapper: "tensor" (bare moments) or "tuple" (a 1-tuple)."""

    def __init__(self, inner, wrapper):
        super().__init__()
        self.inner = inner
        self.wrapper = wrapper

    def forward(self, image):
        m = self.inner(image)["latent_parameters"]
        return m if self.wrapper == "tensor" else (m,)


def write_encoder_variants(out, geo):
    """vae_encoder_tensor.pt / vae_encoder_tuple.pt: the sim-cpu encoder twin returning a bare tensor / a 1-tuple."""
    os.makedirs(out, exist_ok=True)
    inner = twin_modules(geo)["vae_encoder"]
    for wrapper in ("tensor", "tuple"):
        gen = torch.Generator().manual_seed(0)
        ins = tuple(example_inputs(geo, "vae_encoder", gen))
        with torch.no_grad():
            traced = torch.jit.trace(TwinVaeEncoderWrapped(inner, wrapper).eval(), ins, check_trace=False)
        save_module(traced, os.path.join(out, "vae_encoder_%s.pt" % wrapper))


def twin_modules(geo):
    g = GEOMETRIES[geo]
    return {"text_encoder": TwinTextEncoder(g["hidden"]).eval(), "unet": TwinUNet().eval(),
            "vae_post_quant_conv": TwinPostQuantConv().eval(),
            "vae_decoder": TwinVaeDecoder(g["image"] // g["latent"]).eval(),
            "vae_encoder": TwinVaeEncoder(g["image"] // g["latent"], 2 * g["channels"]).eval()}


def example_inputs(geo, role, gen, batch=1):
    """Random inputs of a role's contract (torch tensors in the NEFF's dtypes), contract order."""
    sig = [t for t in signatures(geo, batch)[role] if t[0] == "in"]
    out = []
    for _, _, dtype, shape, cname in sig:
        if dtype == "int64":
            out.append(torch.randint(0, 49408, shape, generator=gen, dtype=torch.int64))
        elif cname == "timestep":
            out.append((torch.rand(shape, generator=gen) * 1000).floor().to(TORCH_DTYPES[dtype]))
        else:
            out.append((torch.randn(shape, generator=gen) * 3).to(TORCH_DTYPES[dtype]))
    return out


def trace_twin(geo, role, module):
    gen = torch.Generator().manual_seed(0)
    ins = tuple(example_inputs(geo, role, gen))
    with torch.no_grad():
        return torch.jit.trace(module, ins, strict=(role not in ("text_encoder", "vae_encoder")), check_trace=False)


def twin_outputs(module, role, inputs):
    """Twin outputs keyed by contract name."""
    with torch.no_grad():
        r = module(*inputs)
    if role in ("text_encoder", "vae_encoder"):
        return dict(r)
    if role == "unet":
        return {"noise_pred": r[0]}
    return {"latent" if role == "vae_post_quant_conv" else "image": r}


# ------------------------------------------------------------------------------------------ model directories

def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def manifest(geo, kind):
    g = GEOMETRIES[geo]
    sig = signatures(geo)
    arts = {}
    for role in ROLES:
        ins = [{"name": c, "dtype": d, "shape": s} for u, _, d, s, c in sig[role] if u == "in"]
        outs = [{"name": c, "dtype": d, "shape": s} for u, _, d, s, c in sig[role] if u == "out"]
        if role == "text_encoder":  # the contract order of CLIPTextModel: last_hidden_state first
            outs = sorted(outs, key=lambda t: t["name"] != "last_hidden_state")
        dynamic = kind == "cpu" and role != "text_encoder"  # twins accept any batch; NEFFs are static
        a = {"file": role + ".pt", "batch": None if dynamic else 1, "inputs": ins, "outputs": outs}
        if role in ("text_encoder", "vae_encoder"):
            a["output_kind"] = "dict"
        elif role == "unet":
            a["output_kind"] = "tuple"
        arts[role] = a
    return {"format": "sdjvm-manifest/1", "target": "neuron" if kind == "neuron" else "cpu",
            "created_by": CREATED_BY, "torch": torch.__version__, "torch_neuronx": None, "neuronx_cc": None,
            "height": g["image"], "width": g["image"], "artifacts": arts}


def packing_of(role, packing):
    if packing == "mixed":
        return "inline" if role in INLINE_ROLES_MIXED else "buffer"
    return packing


def write_configs(out, geo, kind):
    g = GEOMETRIES[geo]
    text_cfg, unet_cfg, vae_cfg, h, w = sd_arch.preset(g["preset"])
    assert (h, w) == (g["image"], g["image"]) and unet_cfg["sample_size"] == g["latent"]
    assert text_cfg["hidden_size"] == g["hidden"] and 2 ** (len(vae_cfg["block_out_channels"]) - 1) == 8
    note = ("NRT-SIM FIXTURE made by %s (--geometry %s --kind %s): the artifacts in compiled_models/ compute fixed "
            "test functions (native/README.md), not a diffusion model; this config records their dimensions"
            % (CREATED_BY, geo, kind))
    tc = dict(text_cfg, torch_dtype="bfloat16", _sdjvm_note=note)
    write_json(os.path.join(out, "text_encoder", "config.json"), tc)
    write_json(os.path.join(out, "unet", "config.json"), dict(unet_cfg, _sdjvm_note=note))
    write_json(os.path.join(out, "vae", "config.json"), dict(vae_cfg, _sdjvm_note=note))
    for rel in ["model_index.json", "scheduler/scheduler_config.json"]:
        with open(os.path.join(REF, rel), "rb") as f:
            data = f.read()
        os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
        with open(os.path.join(out, rel), "wb") as f:
            f.write(data)


def build_neffs(geo, delay_us=0):
    sig = signatures(geo)
    return {role: make_neff(role, FN_OF_ROLE[role], sig[role], geo, delay_us if role == "unet" else 0)
            for role in ROLES}


def write_model_dir(out, geo, kind, packing="buffer", with_manifest=None, delay_us=0, command=None):
    cm = os.path.join(out, "compiled_models")
    os.makedirs(cm, exist_ok=True)
    if with_manifest is None:
        with_manifest = kind == "cpu"
    if kind == "neuron":
        neffs = build_neffs(geo, delay_us)
        os.makedirs(os.path.join(out, "neff"), exist_ok=True)
        for role in ROLES:
            with open(os.path.join(out, "neff", role + ".neff"), "wb") as f:
                f.write(neffs[role])
            write_neuron_artifact(role, neffs[role], packing_of(role, packing), os.path.join(cm, role + ".pt"))
    else:
        for role, module in twin_modules(geo).items():
            save_module(trace_twin(geo, role, module), os.path.join(cm, role + ".pt"))
    mf = os.path.join(cm, "sdjvm-manifest.json")
    if with_manifest:
        write_json(mf, manifest(geo, kind))
    elif os.path.exists(mf):
        os.remove(mf)
    write_configs(out, geo, kind)
    write_readme(out, geo, kind, packing, with_manifest, delay_us, command)


OPTIMUM_COMPONENTS = {"text_encoder": "text_encoder", "unet": "unet", "vae_decoder": "vae_decoder",
                      "vae_encoder": "vae_encoder"}


def optimum_neff(geo, component, delay_us=0):
    """The NEFF of an optimum-neuron component: the role's, except the decoder, which includes post_quant_conv."""
    sig = signatures(geo)
    if component == "vae_decoder":
        return make_neff("vae_decoder", "vae_decode", sig["vae_decoder"], geo)
    return make_neff(component, FN_OF_ROLE[component], sig[component], geo, delay_us if component == "unet" else 0)


def write_optimum_dir(out, geo, inline_weights=True, delay_us=0, command=None):
    """optimum-cli export neuron --task stable-diffusion's layout (optimum/exporters/neuron/__main__.py: model.neuron
    per component, config.json with store_compilation_config's "neuron" section, model_index.json, scheduler/);
    the UNet config keeps the checkpoint's sample_size, the compiled latent size is neuron.static_height/width."""
    g = GEOMETRIES[geo]
    text_cfg, unet_cfg, vae_cfg, _, _ = sd_arch.preset(g["preset"])
    note = ("NRT-SIM FIXTURE made by %s (--geometry %s --kind neuron --layout optimum): the model.neuron files "
            "compute fixed test functions (native/README.md), not a diffusion model" % (CREATED_BY, geo))
    L, img = g["latent"], g["image"]
    configs = {"text_encoder": dict(text_cfg), "unet": dict(unet_cfg, sample_size=L * 2),
               "vae_decoder": dict(vae_cfg), "vae_encoder": dict(vae_cfg)}
    shapes = {"text_encoder": {"static_batch_size": 1, "static_sequence_length": g["tokens"]},
              "unet": {"static_batch_size": 1, "static_sequence_length": g["tokens"], "static_num_channels": 4,
                       "static_height": L, "static_width": L, "static_vae_scale_factor": img // L},
              "vae_decoder": {"static_batch_size": 1, "static_num_channels": 4, "static_height": L, "static_width": L},
              "vae_encoder": {"static_batch_size": 1, "static_num_channels": 3, "static_height": img,
                              "static_width": img}}
    types = {"text_encoder": "clip-text-model", "unet": "unet", "vae_decoder": "vae-decoder",
             "vae_encoder": "vae-encoder"}
    for component in OPTIMUM_COMPONENTS:
        d = os.path.join(out, component)
        os.makedirs(d, exist_ok=True)
        neuron = {"compiler_type": "neuronx-cc", "compiler_version": "(nrt-sim)", "inline_weights_to_neff": inline_weights}
        neuron.update(shapes[component])
        neuron.update({"dynamic_batch_size": False, "tensor_parallel_size": 1, "optlevel": "2", "int_dtype": "int64",
                       "float_dtype": "bf16" if component in ("text_encoder", "unet") else "fp32",
                       "model_type": types[component], "task": None})
        write_json(os.path.join(d, "config.json"), dict(configs[component], neuron=neuron, _sdjvm_note=note))
        write_neuron_artifact(component, optimum_neff(geo, component, delay_us), "buffer",
                              os.path.join(d, "model.neuron"))
    for rel in ["model_index.json", "scheduler/scheduler_config.json"]:
        with open(os.path.join(REF, rel), "rb") as f:
            data = f.read()
        os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
        with open(os.path.join(out, rel), "wb") as f:
            f.write(data)
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("# nrt-sim fixture in optimum-neuron's layout\n\nMade by `%s`. %s. No tokenizer/: copy one in (the "
                "tests use the embedded model's).\n" % (command or CREATED_BY, note))


def listing(out):
    rows = []
    for root, _, files in os.walk(out):
        for fn in files:
            p = os.path.join(root, fn)
            rel = os.path.relpath(p, out)
            if rel != "README.md":
                with open(p, "rb") as f:
                    rows.append((rel, os.path.getsize(p), hashlib.sha256(f.read()).hexdigest()[:16]))
    return sorted(rows)


def write_readme(out, geo, kind, packing, with_manifest, delay_us, command):
    g = GEOMETRIES[geo]
    sig = signatures(geo)
    rows = listing(out)
    lines = []
    title = "Neuron-style artifacts carrying nrt-sim NEFFs" if kind == "neuron" else "CPU twins of the nrt-sim NEFFs"
    lines += ["# %s (%s geometry): test fixture, not a model" % (title, geo), ""]
    if kind == "neuron":
        lines += ["The artifacts of an AWS Inferentia2 Stable Diffusion directory (`compiled_models/*.pt`: the four of "
                  "AWS's deployment plus the optional VAE encoder), each a "
                  "TorchScript archive carrying a NEFF for the simulated Neuron runtime `native/nrt_sim.c` "
                  "(built by `native/build.sh` as `libnrt.so`). The NEFFs are real NEFF containers (1024-byte "
                  "`neff_header_t`, pkg_version 1, sha256 of the tar in `hash`, NEFF version 2.0, name = role) "
                  "whose tar holds `neff.json` and `sg00/program.nrtsim`, the simulator's program. The same NEFFs "
                  "are in `neff/` as raw files.", "",
                  "How each `.pt` carries its NEFF (find it by scanning every zip record for the NEFF header, never "
                  "by the pickle's structure):"]
        for role in ROLES:
            p = packing_of(role, packing)
            how = ("`buffer`: a uint8 tensor, its own `data/N` record" if p == "buffer" else
                   "`inline`: raw bytes of a str attribute inside `data.pkl` (BINUNICODE), like torch-neuronx's "
                   "std::string state")
            lines.append("- `%s.pt`: %s" % (role, how))
        lines += ["", "Their `forward` raises: libtorch cannot run them. No `sdjvm-manifest.json` (AWS's directories "
                  "have none)." if not with_manifest else "", ""]
    else:
        lines += ["TorchScript modules traced with torch %s on CPU that compute exactly what the nrt-sim NEFFs of "
                  "`../sim-neuron` compute, with the same dtypes, so a CPU run and a simulated-Neuron run of the "
                  "pipeline give the same bits (checked by `make_sim_model.py --check`). bf16 twins cast their "
                  "inputs `.float()`, compute in the written order and cast the result `.to(torch.bfloat16)`. The "
                  "text encoder returns a dict {last_hidden_state, pooler_output} like CLIPTextModel, the unet a "
                  "1-tuple, the VAE encoder a dict {latent_parameters} as optimum-neuron exports it, the other VAE "
                  "parts tensors. The unet and VAE twins accept any batch (manifest "
                  "`\"batch\": null`)." % torch.__version__, ""]
    lines += ["Made with (`/usr/bin/python3`, torch %s):" % torch.__version__, "```", command or "", "```",
              "Rerunning the command rewrites the same bytes.", "",
              "Geometry `%s`: image %dx%d, latents %dx%dx%d, text hidden %d, %d tokens, VAE scale 8; the NEFFs have "
              "static batch 1." % (geo, g["image"], g["image"], g["channels"], g["latent"], g["latent"], g["hidden"],
                                   g["tokens"]), "",
              "## Functions (every arithmetic step is one float32 operation in this order)", "",
              "| role | %s | computes |" % ("NEFF tensors (program order)" if kind == "neuron" else
                                            "twin inputs -> outputs (shapes at batch 1)"), "|---|---|---|"]
    what = {
        "text_encoder": "hidden[b,s,j] = float((id*(j+1) + 7*s) mod 64) * 0.03125 - 1 (id int64); "
                        "pooled[b,j] = hidden[b,S-1,j]",
        "unet": "p = (c*h + y)*w + x; e = ehs[b, p % S, p % H]; eps = (s*0.5 + e*0.25) + t[b]*0.0009765625",
        "vae_post_quant_conv": "r = z*0.5 + 0.125",
        "vae_decoder": "img[b,k,Y,X] = q[b,k%C,Y/f,X/f]*0.25 + q[b,(k+1)%C,Y/f,X/f]*0.125, f = 8",
        "vae_encoder": "m[b,k,y,x] = img[b,k%3,y*f,x*f]*0.5 + img[b,(k+1)%3,y*f+f-1,x*f+f-1]*0.25, f = 8 "
                       "(channels 0-3: mean, 4-7: logvar)",
    }
    for role in ROLES:
        if kind == "neuron":
            ts = ", ".join("%s `%s` (%s) %s %s" % (u, n, c, d, "x".join(map(str, s))) for u, n, d, s, c in sig[role])
        else:
            def fmt(u):
                return ", ".join("`%s` %s %s" % (c, d, "x".join(map(str, s))) for uu, n, d, s, c in sig[role] if uu == u)
            wrap = {"text_encoder": "dict {%s}", "vae_encoder": "dict {%s}", "unet": "(%s,)"}.get(role, "%s")
            ts = "%s -> %s" % (fmt("in"), wrap % fmt("out"))
        lines.append("| %s | %s | %s |" % (role, ts, what[role].replace("|", "\\|")))
    lines += ["", "bf16 results: round to nearest even, NaN -> 0xFFFF (torch's contiguous `.to(torch.bfloat16)`). "
              "See `native/README.md` for the program format and the simulator.", ""]
    if delay_us:
        lines += ["The unet program has `delay_us %d`." % delay_us, ""]
    lines += ["No tokenizer: tests copy the embedded model's tokenizer into a copy of this directory.", "",
              "Files (bytes, sha256 prefix):", "```"]
    lines += ["%-42s %9d  %s" % r for r in rows]
    lines += ["```", ""]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


# ------------------------------------------------------------------------------------------------------ check

class TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 256), ("usage", ctypes.c_int), ("size", ctypes.c_size_t),
                ("dtype", ctypes.c_int), ("shape", ctypes.POINTER(ctypes.c_uint32)), ("ndim", ctypes.c_uint32)]


class Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint64), ("minor", ctypes.c_uint64), ("patch", ctypes.c_uint64),
                ("maint", ctypes.c_uint64), ("detail", ctypes.c_char * 128), ("git", ctypes.c_char * 64)]


class Sim:
    """ctypes binding of libnrt (nrt-sim) for the checks."""

    def __init__(self, path):
        self.lib = L = ctypes.CDLL(os.path.abspath(path))
        vp, sz, i32 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int32
        L.nrt_init.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p]
        L.nrt_load.argtypes = [ctypes.c_char_p, sz, i32, i32, ctypes.POINTER(vp)]
        L.nrt_unload.argtypes = [vp]
        L.nrt_tensor_allocate.argtypes = [ctypes.c_int, ctypes.c_int, sz, ctypes.c_char_p, ctypes.POINTER(vp)]
        L.nrt_tensor_free.argtypes = [ctypes.POINTER(vp)]
        L.nrt_tensor_write.argtypes = [vp, ctypes.c_char_p, sz, sz]
        L.nrt_tensor_read.argtypes = [vp, vp, sz, sz]
        L.nrt_tensor_get_size.argtypes = [vp]
        L.nrt_tensor_get_size.restype = sz
        L.nrt_allocate_tensor_set.argtypes = [ctypes.POINTER(vp)]
        L.nrt_destroy_tensor_set.argtypes = [ctypes.POINTER(vp)]
        L.nrt_add_tensor_to_tensor_set.argtypes = [vp, ctypes.c_char_p, vp]
        L.nrt_execute.argtypes = [vp, vp, vp]
        L.nrt_get_model_tensor_info.argtypes = [vp, ctypes.POINTER(vp)]
        L.nrt_free_model_tensor_info.argtypes = [vp]
        L.nrt_get_version.argtypes = [ctypes.POINTER(Version), sz]
        for f in ("nrt_get_total_nc_count", "nrt_get_visible_nc_count", "nrt_get_total_vnc_count",
                  "nrt_get_visible_vnc_count"):
            getattr(L, f).argtypes = [ctypes.POINTER(ctypes.c_uint32)]
        L.nrt_get_status_as_str.restype = ctypes.c_char_p
        L.nrtsim_stat_name.restype = ctypes.c_char_p
        L.nrtsim_inject.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.nstats = L.nrtsim_stats_count()
        self.stat_names = [L.nrtsim_stat_name(i).decode() for i in range(self.nstats)]

    def stats(self):
        arr = (ctypes.c_int64 * self.nstats)()
        self.lib.nrtsim_get_stats(arr)
        return dict(zip(self.stat_names, arr))

    def init(self):
        return self.lib.nrt_init(1, b"", b"")

    def load(self, neff, vnc=-1, vnc_count=-1):
        m = ctypes.c_void_p()
        st = self.lib.nrt_load(neff, len(neff), vnc, vnc_count, ctypes.byref(m))
        return st, m

    def tensor_info(self, model):
        p = ctypes.c_void_p()
        st = self.lib.nrt_get_model_tensor_info(model, ctypes.byref(p))
        if st:
            return st, None
        n = ctypes.c_uint64.from_address(p.value).value
        arr = (TensorInfo * n).from_address(p.value + 8)
        out = [(t.name.decode(), t.usage, t.size, t.dtype, [t.shape[i] for i in range(t.ndim)]) for t in arr]
        assert self.lib.nrt_free_model_tensor_info(p) == 0
        return 0, out

    def alloc(self, size, vnc, placement=0, name=b"t"):
        t = ctypes.c_void_p()
        st = self.lib.nrt_tensor_allocate(placement, vnc, size, name, ctypes.byref(t))
        return st, t

    def new_set(self):
        s = ctypes.c_void_p()
        assert self.lib.nrt_allocate_tensor_set(ctypes.byref(s)) == 0
        return s

    def read(self, t, size):
        buf = ctypes.create_string_buffer(size)
        assert self.lib.nrt_tensor_read(t, buf, 0, size) == 0
        return buf.raw


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def bytes_tensor(b, dtype, shape):
    if dtype in ("bfloat16", "float16"):
        t = torch.frombuffer(bytearray(b), dtype=torch.int16).view(TORCH_DTYPES[dtype])
    else:
        t = torch.frombuffer(bytearray(b), dtype=TORCH_DTYPES[dtype])
    return t.reshape(shape)


class Model:
    """A loaded NEFF with per-model tensors + sets on its VNC (the JVM's pattern)."""

    def __init__(self, sim, neff, vnc, tensor_vnc=None):
        self.sim = sim
        st, self.m = sim.load(neff, vnc)
        assert st == 0, "nrt_load -> %d" % st
        vnc = vnc if tensor_vnc is None else tensor_vnc
        st, self.info = sim.tensor_info(self.m)
        assert st == 0
        self.ins, self.outs = sim.new_set(), sim.new_set()
        self.tensors = {}
        for name, usage, size, _, _ in self.info:
            st, t = sim.alloc(size, vnc, name=name.encode())
            assert st == 0
            self.tensors[(usage, name)] = t
            assert sim.lib.nrt_add_tensor_to_tensor_set(self.ins if usage == 0 else self.outs, name.encode(), t) == 0

    def run(self, inputs):
        """inputs: {name: bytes}; returns {name: bytes}."""
        L = self.sim.lib
        for name, b in inputs.items():
            assert L.nrt_tensor_write(self.tensors[(0, name)], b, 0, len(b)) == 0
        st = L.nrt_execute(self.m, self.ins, self.outs)
        assert st == 0, "nrt_execute -> %d" % st
        return {name: self.sim.read(self.tensors[(1, name)], size) for name, usage, size, _, _ in self.info
                if usage == 1}

    def close(self):
        L = self.sim.lib
        for t in self.tensors.values():
            L.nrt_tensor_free(ctypes.byref(t))
        L.nrt_destroy_tensor_set(ctypes.byref(self.ins))
        L.nrt_destroy_tensor_set(ctypes.byref(self.outs))
        assert L.nrt_unload(self.m) == 0


class Checker:
    def __init__(self):
        self.n = 0
        self.failed = []

    def ok(self, cond, what):
        self.n += 1
        if not cond:
            self.failed.append(what)
            print("FAIL:", what, flush=True)


def special_floats():
    """Edge values as float32 bit patterns: zeros, subnormals, bf16/fp16 rounding ties, overflow, inf, NaNs."""
    bits = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00400000, 0x3F800000, 0xBF800000, 0x7F7FFFFF,
            0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FA00000, 0xFFFFFFFF,
            0x3F808000, 0x3F818000, 0x3F80C000, 0x3F807FFF, 0x3F817FFF,  # bf16 ties / near ties
            0x477FF000, 0x477FEFFF, 0x477FE000, 0x47800000, 0x38800000, 0x387FFFFF, 0x33800000, 0x33000000,
            0x33000001, 0x337FFFFF, 0x3F801000, 0x3F803000, 0x3F800FFF, 0x3F802000, 0x7F7F8000, 0x7F7FC000]
    return torch.tensor([b - (1 << 32) if b >= 1 << 31 else b for b in bits], dtype=torch.int64) \
        .to(torch.int32).view(torch.float32)


def check_echo(sim, c, gen):
    """Echo NEFFs: name/dtype/byte-order handling and conversions against torch's .to()."""
    n = 4096
    randbits = torch.randint(-(1 << 31), (1 << 31) - 1, (n,), generator=gen, dtype=torch.int64).to(torch.int32)
    floats = torch.cat([special_floats(), randbits.view(torch.float32), torch.randn(n, generator=gen) * 100,
                        torch.randn(n, generator=gen) * 1e-6, torch.rand(n, generator=gen) * 70000])
    ints = torch.cat([torch.randint(-(1 << 62), 1 << 62, (n,), generator=gen, dtype=torch.int64),
                      torch.tensor([0, 1, -1, 127, 128, 255, 256, -129, 32767, 32768, -32769, 65535, 2 ** 31 - 1,
                                    2 ** 31, -(2 ** 31) - 1, 2 ** 24 + 1, 2 ** 53 + 1, -(2 ** 63), 2 ** 63 - 1],
                                   dtype=torch.int64)])
    pairs = [("float32", "bfloat16"), ("float32", "float16"), ("float32", "float32"), ("bfloat16", "float32"),
             ("float16", "float32"), ("bfloat16", "float16"), ("float16", "bfloat16"), ("bfloat16", "bfloat16"),
             ("int64", "int32"), ("int64", "int16"), ("int64", "int8"), ("int64", "uint8"), ("int32", "int64"),
             ("int16", "int64"), ("uint8", "int64"), ("int8", "int32"), ("int64", "float32"), ("int32", "float32"),
             ("int64", "bfloat16"), ("int32", "float16"), ("uint8", "bfloat16"), ("int16", "float32")]
    for a, b in pairs:
        src = floats if a in ("float32", "bfloat16", "float16") else ints
        if a == "int64" and b in ("float32", "bfloat16", "float16"):
            src = ints.remainder(1 << 24) - (1 << 23)  # "exact for small values": the documented range
        x = src.to(TORCH_DTYPES[a]) if a not in ("bfloat16", "float16") else src.to(TORCH_DTYPES[a])
        N = x.numel()
        tensors = [("in", "in_" + a, a, [N]), ("out", "out_" + b, b, [N])]
        neff = make_neff("echo", "echo", tensors, "check")
        m = Model(sim, neff, 0)
        got = m.run({"in_" + a: tensor_bytes(x)})["out_" + b]
        want = tensor_bytes(x.to(TORCH_DTYPES[b]))
        c.ok(got == want, "echo %s -> %s equals torch .to() bit for bit (%d values)" % (a, b, N))
        if got != want:
            g = bytes_tensor(got, b, [N])
            w = bytes_tensor(want, b, [N])
            gi = g.view(torch.int16) if b in ("bfloat16", "float16") else g
            wi = w.view(torch.int16) if b in ("bfloat16", "float16") else w
            bad = (gi != wi).nonzero().flatten()[:5].tolist()
            print("   first mismatches at", bad, "src", [x[i].item() for i in bad], "got", gi[bad].tolist(),
                  "want", wi[bad].tolist())
        m.close()
    # several pairs in one program: k-th input -> k-th output, declared in shuffled order
    tensors = [("out", "o1", "float32", [2, 3]), ("in", "i0", "bfloat16", [6]), ("out", "o0", "float16", [3, 2]),
               ("in", "i1", "int32", [3, 2])]
    m = Model(sim, make_neff("echo", "echo", tensors, "check"), 1)
    x0 = torch.randn(6, generator=gen).to(torch.bfloat16)
    x1 = torch.arange(-3, 3, dtype=torch.int32).reshape(3, 2)
    out = m.run({"i0": tensor_bytes(x0), "i1": tensor_bytes(x1)})
    # inputs in declaration order: i0, i1; outputs: o1, o0 -> i0 pairs with o1, i1 with o0
    c.ok(out["o1"] == tensor_bytes(x0.float()) and out["o0"] == tensor_bytes(x1.to(torch.float16)),
         "echo with shuffled declarations pairs the k-th input with the k-th output (declaration order)")
    c.ok([t[0] for t in m.info] == ["o1", "i0", "o0", "i1"], "tensor info lists tensors in program order")
    m.close()


def check_roles(sim, c, geo, neffs_by_packing, twins, trials):
    gen = torch.Generator().manual_seed(1234)
    sig = signatures(geo)
    for packing, neffs in neffs_by_packing.items():
        for vnc in (0, 1):
            models = {role: Model(sim, neffs[role], vnc) for role in ROLES}
            for role in ROLES:
                info = models[role].info
                want_info = [(n, 0 if u == "in" else 1, ELEM_SIZE[d] * prod(s), DTYPE_CURRENT[d], s)
                             for u, n, d, s, _ in sig[role]]
                c.ok(info == want_info, "%s/%s tensor info %s" % (packing, role, info))
            for trial in range(trials):
                for role in ROLES:
                    ins = example_inputs(geo, role, gen)
                    if role == "unet" and trial == 0:
                        ins[1] = torch.tensor([999.0]).to(torch.bfloat16)
                    names = [n for u, n, _, _, _ in sig[role] if u == "in"]
                    got = models[role].run({n: tensor_bytes(t) for n, t in zip(names, ins)})
                    want = twin_outputs(twins[role], role, ins)
                    for u, n, d, s, cname in sig[role]:
                        if u != "out":
                            continue
                        w = want[cname]
                        same = got[n] == tensor_bytes(w) and w.dtype == TORCH_DTYPES[d] and list(w.shape) == s
                        c.ok(same, "%s NEFF %s on vnc %d, trial %d: output %s (%s) equals the twin bit for bit"
                             % (packing, role, vnc, trial, n, cname))
            for m in models.values():
                m.close()


def check_optimum(sim, c, geo, twins, out):
    """optimum-neuron's layout: every model.neuron loads with torch.jit.load and holds one NEFF; its vae_decoder
    NEFF (fn vae_decode) equals the twins' decoder(post_quant_conv(z)) bit for bit."""
    write_optimum_dir(out, geo, command="(--check)")
    gen = torch.Generator().manual_seed(77)
    for component in OPTIMUM_COMPONENTS:
        path = os.path.join(out, component, "model.neuron")
        torch.jit.load(path)
        found = neffs_in_archive(path)
        c.ok(len(found) == 1, "optimum %s/model.neuron: one NEFF found by header scan" % component)
        if component != "vae_decoder" or not found:
            continue
        m = Model(sim, found[0][2], 0)
        for trial in range(2):
            z = example_inputs(geo, "vae_decoder", gen)[0]
            got = m.run({"input0": tensor_bytes(z)})["output0"]
            with torch.no_grad():
                want = twins["vae_decoder"](twins["vae_post_quant_conv"](z))
            c.ok(got == tensor_bytes(want), "optimum vae_decoder (vae_decode), trial %d: equals the twins' "
                                            "decoder(post_quant_conv(z)) bit for bit" % trial)
        m.close()


def prod(s):
    r = 1
    for d in s:
        r *= d
    return r


def check_batch2(sim, c, geo, twins):
    """Static batch 2 NEFFs (the C functions are batch-generic) against the twins at batch 2."""
    gen = torch.Generator().manual_seed(7)
    sig = signatures(geo, batch=2)
    for role in ("unet", "text_encoder", "vae_decoder"):
        m = Model(sim, make_neff(role, FN_OF_ROLE[role], sig[role], geo), 1)
        ins = example_inputs(geo, role, gen, batch=2)
        names = [n for u, n, _, _, _ in sig[role] if u == "in"]
        got = m.run({n: tensor_bytes(t) for n, t in zip(names, ins)})
        want = twin_outputs(twins[role], role, ins)
        for u, n, d, s, cname in sig[role]:
            if u == "out":
                c.ok(got[n] == tensor_bytes(want[cname]), "batch-2 %s output %s equals the twin" % (role, cname))
        m.close()
    # a single timestep [1] is used for every batch element
    tensors = [("in", "input0", "bfloat16", [2, 4, 2, 2]), ("in", "input1", "bfloat16", [1]),
               ("in", "input2", "bfloat16", [2, 5, 3]), ("out", "output0", "bfloat16", [2, 4, 2, 2])]
    m = Model(sim, make_neff("unet", "unet", tensors, "check"), 0)
    s, t, e = torch.randn(2, 4, 2, 2).to(torch.bfloat16), torch.tensor([500.0]).to(torch.bfloat16), \
        torch.randn(2, 5, 3).to(torch.bfloat16)
    got = m.run({"input0": tensor_bytes(s), "input1": tensor_bytes(t), "input2": tensor_bytes(e)})["output0"]
    c.ok(got == tensor_bytes(TwinUNet()(s, t, e)[0]), "unet with timestep [1] broadcasts it over the batch")
    m.close()


def corrupt(neff, at, value):
    b = bytearray(neff)
    b[at:at + len(value)] = value
    return bytes(b)


def check_semantics(sim, c, neffs, lib_path):
    L = sim.lib
    good = neffs["vae_post_quant_conv"]
    st_ = sim.stats

    # --- init / close state machine
    st, m = sim.load(good)
    c.ok(st == 14, "nrt_load after an nrt_close, before nrt_init -> NRT_CLOSED (14), got %d" % st)
    c.ok(sim.init() == 0, "nrt_init(NO_FW) -> 0")
    c.ok(sim.init() == 2, "a second nrt_init without nrt_close -> NRT_INVALID")
    c.ok(L.nrt_init(0, b"", b"") == 2, "framework NRT_FRAMEWORK_TYPE_INVALID -> NRT_INVALID")
    n = ctypes.c_uint32()
    c.ok(L.nrt_get_visible_nc_count(ctypes.byref(n)) == 0 and n.value == 2, "2 visible cores by default")
    L.nrt_close()
    st, m = sim.load(good)
    c.ok(st == 14, "nrt_load after nrt_close -> NRT_CLOSED (14), got %d" % st)
    c.ok(sim.init() == 0, "nrt_init after nrt_close works (cycle)")

    # --- NEFF validation
    bad_cases = [
        (good[:-1], 2, "size != 1024 + data_size"),
        (good + b"\0" * 512, 2, "trailing bytes"),
        (good[:1000], 2, "shorter than the header"),
        (corrupt(good, 8, struct.pack("<Q", 512)), 2, "header_size 512"),
        (corrupt(good, 24, struct.pack("<Q", 3)), 10, "neff_version_major 3 -> NRT_UNSUPPORTED_NEFF_VERSION"),
        (corrupt(good, 24, struct.pack("<Q", 0)), 10, "neff_version_major 0"),
        (corrupt(good, 1024 + 148, b"0000000\0"), 2, "tar header checksum"),
        (corrupt(good, 1024 + 257, b"xxxxxx"), 2, "tar magic"),
        (neff_header(b"\x1f\x8b" + bytes(1022), "gz") + b"\x1f\x8b" + bytes(1022), 2, "gzip payload"),
        (neff_header(make_tar([("neff.json", b"{}")]), "x") + make_tar([("neff.json", b"{}")]), 2,
         "no program.nrtsim member"),
        (make_neff("x", "unet", [("in", "a", "float32", [1, 4, 8, 8]), ("out", "b", "float32", [1, 4, 8, 8])],
                   "check"), 2, "unet program with the wrong inputs"),
        (make_neff("x", "vae_decoder", [("in", "a", "float32", [1, 4, 8, 8]), ("out", "b", "float32", [1, 3, 60, 60])],
                   "check"), 2, "vae_decoder with a non-integer scale"),
        (make_neff("x", "text_encoder", [("in", "a", "float32", [1, 77]), ("out", "b", "float32", [1, 77, 4])],
                   "check"), 2, "text_encoder with float ids"),
        (make_neff("x", "post_quant_conv", [("in", "a", "float32", [1, 4, 8, 8]), ("out", "b", "int32", [1, 4, 8, 8])],
                   "check"), 2, "float function into an int output"),
        (make_neff("x", "nope", [("in", "a", "float32", [1])], "check"), 2, "unknown fn"),
        (make_neff("x", "echo", [("in", "a", "float32", [2]), ("out", "b", "float32", [3])], "check"), 2,
         "echo element count mismatch"),
        (make_neff("x", "echo", [("in", "a", "float32", [2]), ("out", "b", "int32", [2])], "check"), 2,
         "echo float -> int"),
    ]
    for neff, want, what in bad_cases:
        st, m = sim.load(neff)
        c.ok(st == want, "invalid NEFF (%s) -> %d, got %d" % (what, want, st))
    # GNU tar format and a long member path are accepted
    tar = make_tar([("neff.json", b"{}"), ("a" * 120 + "/program.nrtsim",
                                           program_text("post_quant_conv", [("in", "x", "float32", [1, 4, 2, 2]),
                                                                            ("out", "y", "float32", [1, 4, 2, 2])]
                                                        ).encode())], fmt=tarfile.GNU_FORMAT)
    st, m = sim.load(neff_header(tar, "gnu") + tar)
    c.ok(st == 0, "GNU tar with a long member name loads, got %d" % st)
    if st == 0:
        L.nrt_unload(m)
    tar = make_tar([("b" * 130 + "/program.nrtsim",
                     program_text("post_quant_conv", [("in", "x", "float32", [1, 4, 2, 2]),
                                                      ("out", "y", "float32", [1, 4, 2, 2])]).encode())],
                   fmt=tarfile.PAX_FORMAT)
    st, m = sim.load(neff_header(tar, "pax") + tar)
    c.ok(st == 0, "POSIX pax tar with a long path loads, got %d" % st)
    if st == 0:
        L.nrt_unload(m)
    # NEURON_RT_VALIDATE_HASH
    os.environ["NEURON_RT_VALIDATE_HASH"] = "true"
    try:
        st, m = sim.load(good)
        c.ok(st == 0, "NEURON_RT_VALIDATE_HASH=true: a correct sha256 loads")
        if st == 0:
            L.nrt_unload(m)
        st, m = sim.load(corrupt(good, 172, bytes(32)))
        c.ok(st == 2, "NEURON_RT_VALIDATE_HASH=true: a wrong hash -> NRT_INVALID, got %d" % st)
    finally:
        del os.environ["NEURON_RT_VALIDATE_HASH"]
    st, m = sim.load(corrupt(good, 172, bytes(32)))
    c.ok(st == 0, "without NEURON_RT_VALIDATE_HASH the hash is not checked (docs: default false)")
    L.nrt_unload(m)
    # vnc / vnc_count
    sig = [("in", "input0", "float32", [1, 4, 2, 2]), ("out", "output0", "float32", [1, 4, 2, 2])]
    small = make_neff("pqc", "post_quant_conv", sig, "check")
    c.ok(sim.load(good, vnc=2)[0] == 2, "nrt_load on vnc 2 of 2 visible -> NRT_INVALID")
    c.ok(sim.load(good, vnc=0, vnc_count=0)[0] == 2, "vnc_count 0 -> NRT_INVALID")
    c.ok(sim.load(good, vnc=1, vnc_count=2)[0] == 9, "vnc 1 + vnc_count 2 of 2 -> NRT_LOAD_NOT_ENOUGH_NC")
    st, m1 = sim.load(small, vnc=0, vnc_count=1)
    c.ok(st == 0, "vnc_count 1 (pre-2.28 callers) loads")
    auto = Model(sim, small, -1, tensor_vnc=1)  # vnc 0 has a model: -1 picks the least loaded, vnc 1
    c.ok(L.nrt_execute(auto.m, auto.ins, auto.outs) == 0,
         "nrt_load(vnc=-1) picked the least loaded vnc 1 (DEVICE tensors on vnc 1 execute)")
    auto.close()
    L.nrt_unload(m1)

    # --- execute validation (model on vnc 0)
    m = Model(sim, small, 0)
    x = torch.randn(1, 4, 2, 2)
    out = m.run({"input0": tensor_bytes(x)})["output0"]
    c.ok(out == tensor_bytes(x * 0.5 + 0.125), "post_quant_conv computes z*0.5 + 0.125")
    L_ins = m.ins

    def exec_status(ins, outs):
        return L.nrt_execute(m.m, ins, outs)

    st, wrong_size = sim.alloc(60, 0)
    extra_set = sim.new_set()
    L.nrt_add_tensor_to_tensor_set(extra_set, b"input0", m.tensors[(0, "input0")])
    L.nrt_add_tensor_to_tensor_set(extra_set, b"bogus", m.tensors[(0, "input0")])
    c.ok(exec_status(extra_set, m.outs) == 2, "an extra name in the input set -> NRT_INVALID")
    empty = sim.new_set()
    c.ok(exec_status(empty, m.outs) == 2, "a missing input -> NRT_INVALID")
    bad = sim.new_set()
    L.nrt_add_tensor_to_tensor_set(bad, b"input0", wrong_size)
    c.ok(exec_status(bad, m.outs) == 2, "an input of the wrong byte size -> NRT_INVALID")
    st, other_core = sim.alloc(64, 1)
    oc = sim.new_set()
    L.nrt_add_tensor_to_tensor_set(oc, b"input0", other_core)
    c.ok(exec_status(oc, m.outs) == 2, "a DEVICE input on another vnc -> NRT_INVALID")
    st, host = sim.alloc(64, -1, placement=1)
    c.ok(st == 0, "HOST tensor with vnc -1")
    hs = sim.new_set()
    L.nrt_add_tensor_to_tensor_set(hs, b"input0", host)
    L.nrt_tensor_write(host, tensor_bytes(x), 0, 64)
    c.ok(exec_status(hs, m.outs) == 0, "a HOST input works on any vnc")
    # replace by name
    L.nrt_add_tensor_to_tensor_set(oc, b"input0", m.tensors[(0, "input0")])
    c.ok(exec_status(oc, m.outs) == 0, "nrt_add_tensor_to_tensor_set replaces an existing name")
    c.ok(sim.alloc(5 << 20, -1, placement=1)[0] == 2, "HOST tensor over 4MB -> NRT_INVALID (documented limit)")
    c.ok(sim.alloc(64, 2)[0] == 2, "DEVICE tensor on vnc 2 of 2 -> NRT_INVALID")
    c.ok(L.nrt_execute(ctypes.c_void_p(12345678), L_ins, m.outs) == 3, "unknown model -> NRT_INVALID_HANDLE")
    buf = ctypes.create_string_buffer(128)
    c.ok(L.nrt_tensor_read(host, buf, 1, 64) == 2, "read past the end -> NRT_INVALID")
    c.ok(L.nrt_tensor_write(host, buf, 65, 0) == 2, "write at offset past the end -> NRT_INVALID")
    c.ok(L.nrt_tensor_get_size(host) == 64, "nrt_tensor_get_size")
    # a freed tensor still in a set
    st, gone = sim.alloc(64, 0)
    gs = sim.new_set()
    L.nrt_add_tensor_to_tensor_set(gs, b"input0", gone)
    L.nrt_tensor_free(ctypes.byref(gone))
    c.ok(gone.value is None, "nrt_tensor_free sets the pointer to NULL")
    c.ok(exec_status(gs, m.outs) == 2, "a set holding a freed tensor -> NRT_INVALID")
    # double frees are recognised, not executed
    p = ctypes.c_void_p()
    L.nrt_get_model_tensor_info(m.m, ctypes.byref(p))
    stale = ctypes.c_void_p(p.value)
    c.ok(L.nrt_free_model_tensor_info(p) == 0 and L.nrt_free_model_tensor_info(stale) == 2,
         "nrt_free_model_tensor_info twice -> NRT_INVALID the second time")
    st, t2 = sim.alloc(16, 0)
    t2_stale = ctypes.c_void_p(t2.value)
    before = st_()["invalid_handles"]
    L.nrt_tensor_free(ctypes.byref(t2))
    L.nrt_tensor_free(ctypes.byref(t2_stale))
    c.ok(st_()["invalid_handles"] == before + 1 and L.nrt_tensor_get_size(t2_stale) == 0,
         "a second nrt_tensor_free of the same tensor is reported, not executed")
    # poisoned fresh tensor
    st, fresh = sim.alloc(8, 0)
    c.ok(sim.read(fresh, 8) == b"\xff" * 8, "fresh device memory reads as 0xFF (poison)")
    # legacy dtypes
    L.nrtsim_set_legacy_dtypes(1)
    st, info = sim.tensor_info(m.m)
    c.ok(info[0][3] == DTYPE_LEGACY["float32"], "legacy numbering: float32 = 1")
    L.nrtsim_set_legacy_dtypes(0)
    st, info = sim.tensor_info(m.m)
    c.ok(info[0][3] == DTYPE_CURRENT["float32"], "current numbering: float32 = 0xA")

    # --- injection
    L.nrtsim_reset_stats()
    c.ok(L.nrtsim_inject(b"nrt_load", 0, 1, 4) == 0 and L.nrtsim_inject(b"nrt_execute", 1, 1, 1005) == 0,
         "nrtsim_inject accepts rules")
    c.ok(L.nrtsim_inject(b"nrt_close", 0, 1, 4) == -1, "nrt_close is not injectable")
    before = st_()["live_models"]
    st, mm = sim.load(small)
    c.ok(st == 4 and st_()["live_models"] == before, "injected nrt_load -> 4, nothing loaded")
    st, mm = sim.load(small)
    c.ok(st == 0, "the next nrt_load works")
    L.nrt_unload(mm)
    c.ok(exec_status(L_ins, m.outs) == 0, "injection skip 1: first execute runs")
    c.ok(exec_status(L_ins, m.outs) == 1005, "then injected NRT_EXEC_NC_BUSY")
    c.ok(exec_status(L_ins, m.outs) == 0, "then executes again")
    s = st_()
    c.ok(s["injected_failures"] == 2 and s["failed_loads"] == 1 and s["failed_executes"] == 1,
         "stats count injected failures %s" % {k: s[k] for k in ("injected_failures", "failed_loads",
                                                                  "failed_executes")})
    L.nrtsim_clear_injections()

    # --- concurrency: two executions on vnc 0 and vnc 1 meet at the barrier
    m_b = Model(sim, small, 1)
    L.nrtsim_reset_stats()
    L.nrtsim_set_exec_barrier(2, 5000)
    res = {}

    def go(model, key):
        res[key] = L.nrt_execute(model.m, model.ins, model.outs)

    th = [threading.Thread(target=go, args=(m, "a")), threading.Thread(target=go, args=(m_b, "b"))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    s = st_()
    c.ok(res == {"a": 0, "b": 0} and s["max_concurrent_executes"] == 2 and s["max_concurrent_vnc_mask"] == 3
         and s["barrier_timeouts"] == 0 and s["execs_per_vnc[0]"] == 1 and s["execs_per_vnc[1]"] == 1,
         "barrier(2): executions on vnc 0 and 1 in flight together: %s" % {k: s[k] for k in (
             "max_concurrent_executes", "max_concurrent_vnc_mask", "barrier_timeouts")})
    L.nrtsim_set_exec_barrier(2, 150)
    c.ok(exec_status(L_ins, m.outs) == 0 and st_()["barrier_timeouts"] == 1, "a lone execution times out at "
                                                                               "the barrier and still runs")
    L.nrtsim_set_exec_barrier(0, 0)
    L.nrtsim_set_exec_delay_us(20000)
    L.nrtsim_reset_stats()
    exec_status(L_ins, m.outs)
    c.ok(st_()["exec_ns_total"] >= 20_000_000, "nrtsim_set_exec_delay_us(20000): exec_ns_total >= 20 ms")
    L.nrtsim_set_exec_delay_us(0)
    m_b.close()

    # --- close frees leftovers and counts them
    L.nrtsim_reset_stats()
    s0 = st_()
    live = s0["live_models"] + s0["live_tensors"] + s0["live_sets"] + s0["live_tensor_infos"]
    L.nrt_close()
    s = st_()
    c.ok(s["leaked_at_close"] == live and live > 0 and s["live_tensors"] == 0 and s["initialized"] == 0,
         "nrt_close frees the %d live objects and counts them as leaks" % live)
    c.ok(L.nrt_unload(m.m) == 14, "a model handle after nrt_close -> NRT_CLOSED")
    c.ok(sim.init() == 0, "init again after a close with leaks")
    c.ok(L.nrt_unload(m.m) == 3, "a stale model handle after re-init -> NRT_INVALID_HANDLE")
    L.nrt_close()

    # --- cores and version, before nrt_init
    for env, want in [({"NRT_SIM_TOTAL_CORES": "8", "NEURON_RT_VISIBLE_CORES": "0-1,4-5"}, (0, 8, 4)),
                      ({"NRT_SIM_TOTAL_CORES": "4", "NEURON_RT_VISIBLE_CORES": "0,2"}, (0, 4, 2)),
                      ({"NRT_SIM_TOTAL_CORES": "4", "NEURON_RT_VISIBLE_CORES": "3"}, (0, 4, 1)),
                      ({"NRT_SIM_TOTAL_CORES": "4", "NEURON_RT_NUM_CORES": "3"}, (0, 4, 3)),
                      ({"NRT_SIM_TOTAL_CORES": "4", "NEURON_RT_NUM_CORES": "3", "NEURON_RT_VISIBLE_CORES": "1"},
                       (0, 4, 1)),
                      ({"NEURON_RT_VISIBLE_CORES": "2"}, (2, 2, None)),
                      ({"NEURON_RT_VISIBLE_CORES": "1,0"}, (2, 2, None)),
                      ({"NEURON_RT_VISIBLE_CORES": "0-"}, (2, 2, None)),
                      ({"NEURON_RT_VISIBLE_CORES": "a"}, (2, 2, None)),
                      ({"NEURON_RT_NUM_CORES": "3"}, (2, 2, None))]:
        saved = {k: os.environ.get(k) for k in ("NRT_SIM_TOTAL_CORES", "NEURON_RT_VISIBLE_CORES",
                                                "NEURON_RT_NUM_CORES")}
        os.environ.update(env)
        try:
            tot, vis = ctypes.c_uint32(), ctypes.c_uint32()
            a = L.nrt_get_total_nc_count(ctypes.byref(tot))
            b = L.nrt_get_visible_nc_count(ctypes.byref(vis))
            init = sim.init()
            got = (init, tot.value, vis.value if b == 0 else None)
            c.ok(a == 0 and got == want, "cores %s -> (init, total, visible) %s, want %s" % (env, got, want))
            if init == 0:
                st, mdl = sim.load(good, vnc=(want[2] - 1))
                c.ok(st == 0, "load on the last relative vnc %d with %s" % (want[2] - 1, env))
                L.nrt_close()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    v = Version()
    c.ok(L.nrt_get_version(ctypes.byref(v), ctypes.sizeof(v)) == 0 and (v.major, v.minor) == (2, 99)
         and v.detail == b"nrt-sim", "nrt_get_version 2.99.0.0 nrt-sim")
    os.environ["NRT_SIM_VERSION"] = "2.27.1.0"
    v = Version()
    L.nrt_get_version(ctypes.byref(v), ctypes.sizeof(v))
    del os.environ["NRT_SIM_VERSION"]
    c.ok((v.major, v.minor, v.patch, v.maint) == (2, 27, 1, 0), "NRT_SIM_VERSION overrides the version")
    c.ok(L.nrt_get_status_as_str(1005) == b"NRT_EXEC_NC_BUSY", "nrt_get_status_as_str")

    # --- env controls in a child process (read when the library loads)
    code = ("import ctypes,sys; L=ctypes.CDLL(sys.argv[1]); m=ctypes.c_void_p(); t=ctypes.c_void_p();"
            "a=L.nrt_load(b'', ctypes.c_size_t(0), -1, -1, ctypes.byref(m));"
            "b=L.nrt_tensor_allocate(0, 0, ctypes.c_size_t(4), b'x', ctypes.byref(t));"
            "print(a, b, L.nrt_init(1,b'',b''), L.nrt_init(1,b'',b''))")
    env = dict(os.environ, NRT_SIM_INJECT="nrt_init:0:1:4;bogus", NRT_SIM_LEGACY_DTYPES="1")
    r = subprocess.run([sys.executable, "-c", code, os.path.abspath(lib_path)], env=env, capture_output=True,
                       text=True)
    c.ok(r.stdout.split() == ["13", "13", "4", "0"] and "bogus" in r.stderr,
         "fresh process: nrt_load/nrt_tensor_allocate before nrt_init -> NRT_UNINITIALIZED (13); NRT_SIM_INJECT "
         "from the environment: first nrt_init -> 4, then 0; bad items reported (%r)" % r.stdout)


def check(lib, geo, trials, keep):
    c = Checker()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as td:
        root = keep or td
        dirs = {"buffer": os.path.join(root, "neuron-buffer"), "inline": os.path.join(root, "neuron-inline"),
                "cpu": os.path.join(root, "cpu")}
        write_model_dir(dirs["buffer"], geo, "neuron", "buffer", command="(--check)")
        write_model_dir(dirs["inline"], geo, "neuron", "inline", command="(--check)")
        write_model_dir(dirs["cpu"], geo, "cpu", command="(--check)")

        # 1. the zip writer reproduces torch's own archives byte for byte
        with tempfile.TemporaryDirectory() as zt:
            for name, module in [("unet.pt", torch.jit.script(SimNeuronUNet(b"x" * 100, "buffer"))),
                                 ("twin.pt", trace_twin(geo, "unet", TwinUNet()))]:
                a = os.path.join(zt, name)
                torch.jit.save(module, a)
                b = os.path.join(zt, "re-" + name)
                write_archive(b, read_records(a))
                c.ok(open(a, "rb").read() == open(b, "rb").read(),
                     "zip writer reproduces torch.jit.save's %s byte for byte" % name)

        # 2. every .pt loads with torch.jit.load and holds exactly one NEFF, equal to neff/<role>.neff
        neffs_by_packing = {}
        for packing in ("buffer", "inline"):
            neffs = {}
            for role in ROLES:
                pt = os.path.join(dirs[packing], "compiled_models", role + ".pt")
                try:
                    torch.jit.load(pt)
                    loads = True
                except Exception as e:  # noqa: BLE001
                    loads = False
                    print("   torch.jit.load(%s): %s" % (pt, e))
                c.ok(loads, "torch.jit.load(%s/%s.pt)" % (packing, role))
                found = neffs_in_archive(pt)
                raw = open(os.path.join(dirs[packing], "neff", role + ".neff"), "rb").read()
                c.ok(len(found) == 1 and found[0][2] == raw,
                     "%s/%s.pt: one NEFF found by header scan (%s), equal to neff/%s.neff"
                     % (packing, role, [(r, o) for r, o, _ in found], role))
                neffs[role] = found[0][2] if found else raw
            neffs_by_packing[packing] = neffs
        c.ok(neffs_by_packing["buffer"] == neffs_by_packing["inline"], "both packings carry the same NEFFs")

        # 3. CPU twins as saved (loaded back from the files)
        twins = {role: torch.jit.load(os.path.join(dirs["cpu"], "compiled_models", role + ".pt")) for role in ROLES}

        sim = Sim(lib)
        c.ok(sim.nstats == 35 and ctypes.sizeof(TensorInfo) == 296 and TensorInfo.dtype.offset == 272,
             "stats count 35, nrt_tensor_info_t layout 296 bytes")
        c.ok(sim.init() == 0, "nrt_init")
        check_roles(sim, c, geo, neffs_by_packing, twins, trials)
        check_batch2(sim, c, geo, twins)
        check_echo(sim, c, torch.Generator().manual_seed(99))
        check_optimum(sim, c, geo, twins, os.path.join(root, "optimum"))
        s = sim.stats()
        c.ok(s["failed_calls"] == 0 and s["invalid_handles"] == 0 and s["live_models"] == 0
             and s["live_tensors"] == 0 and s["live_sets"] == 0 and s["live_tensor_infos"] == 0,
             "no failed calls and nothing alive after the positive checks: %s" % s)
        sim.lib.nrt_close()
        check_semantics(sim, c, neffs_by_packing["buffer"], lib)
    print("%d checks, %d failed (geometry %s, %d trials per role, packings buffer+inline, vnc 0 and 1)"
          % (c.n, len(c.failed), geo, trials))
    return 1 if c.failed else 0


# ------------------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="model directory to write")
    ap.add_argument("--geometry", choices=sorted(GEOMETRIES), default="tiny")
    ap.add_argument("--kind", choices=["neuron", "cpu"], default="neuron")
    ap.add_argument("--packing", choices=["buffer", "inline", "mixed"], default="buffer",
                    help="neuron kind: how each .pt carries its NEFF; mixed = unet and vae_decoder inline, others "
                         "buffer (the committed sim-neuron fixture)")
    ap.add_argument("--layout", choices=["compiled_models", "optimum"], default="compiled_models",
                    help="neuron kind: AWS's compiled_models/*.pt, or optimum-neuron's <component>/model.neuron")
    ap.add_argument("--separate-weights", action="store_true",
                    help="--layout optimum: mark the export inline_weights_to_neff = false")
    ap.add_argument("--unet-timestep", choices=["bfloat16", "float32", "int64", "int32"], default="bfloat16",
                    help="dtype of the UNet's timestep input (NEFF program, twin trace example, manifest)")
    ap.add_argument("--manifest", action="store_true", help="neuron kind: also write sdjvm-manifest.json")
    ap.add_argument("--no-manifest", action="store_true", help="cpu kind: no sdjvm-manifest.json")
    ap.add_argument("--delay-us", type=int, default=0, help="neuron kind: delay_us of the unet program")
    ap.add_argument("--encoder-variants", metavar="DIR", help="write vae_encoder_{tensor,tuple}.pt: the cpu encoder "
                                                              "twin returning a bare tensor / a 1-tuple")
    ap.add_argument("--check", metavar="LIBNRT", help="self-check against the built simulator (libnrt.so)")
    ap.add_argument("--trials", type=int, default=3, help="--check: random input sets per role")
    ap.add_argument("--keep", metavar="DIR", help="--check: write the generated directories here instead of a "
                                                  "temporary folder")
    args = ap.parse_args()
    if args.check:
        sys.exit(check(args.check, args.geometry, args.trials, args.keep))
    if args.encoder_variants:
        write_encoder_variants(args.encoder_variants, args.geometry)
        print("wrote", args.encoder_variants)
        return
    if not args.out:
        ap.error("--out or --check is required")
    if args.kind == "cpu" and (args.packing != "buffer" or args.manifest or args.delay_us):
        ap.error("--packing/--manifest/--delay-us apply to --kind neuron")
    UNET_TIMESTEP["dtype"] = args.unet_timestep
    cmd = ["/usr/bin/python3", CREATED_BY, "--out", os.path.relpath(os.path.abspath(args.out), REPO),
           "--geometry", args.geometry, "--kind", args.kind]
    if args.unet_timestep != "bfloat16":
        cmd += ["--unet-timestep", args.unet_timestep]
    if args.layout == "optimum":
        if args.kind != "neuron" or args.manifest or args.packing != "buffer":
            ap.error("--layout optimum is a --kind neuron layout without a manifest, packed as buffers")
        cmd += ["--layout", "optimum"] + (["--separate-weights"] if args.separate_weights else []) + \
               (["--delay-us", str(args.delay_us)] if args.delay_us else [])
        write_optimum_dir(args.out, args.geometry, not args.separate_weights, args.delay_us, " ".join(cmd))
        print("wrote", args.out)
        return
    if args.kind == "neuron":
        cmd += ["--packing", args.packing] + (["--manifest"] if args.manifest else []) + \
               (["--delay-us", str(args.delay_us)] if args.delay_us else [])
    elif args.no_manifest:
        cmd.append("--no-manifest")
    with_manifest = args.manifest if args.kind == "neuron" else not args.no_manifest
    write_model_dir(args.out, args.geometry, args.kind, args.packing, with_manifest, args.delay_us, " ".join(cmd))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
