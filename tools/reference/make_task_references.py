#!/usr/bin/python3
"""Reference outputs for image-to-image and inpainting, made by diffusers' OWN pipeline classes
(StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline; diffusers source, not a re-implementation) run
around the TorchScript artifacts of the project's tiny fixtures, on CPU, float32, torch.set_num_threads(1), with a
seeded CPU torch.Generator.

    git --git-dir=DIFFUSERS_GIT archive HEAD src | tar -x -C /tmp/diffusers
    /usr/bin/python3 tools/reference/make_task_references.py --diffusers-src /tmp/diffusers/src           # writes
    /usr/bin/python3 tools/reference/make_task_references.py --diffusers-src /tmp/diffusers/src --check   # compares
    /usr/bin/python3 tools/reference/make_task_references.py --diffusers-src /tmp/diffusers/src --perturb # headroom

Models: src/all/test/resources/models/tiny-sd21-fp32 (4-channel unet, with compiled_models/vae_encoder.pt) and
src/all/test/resources/models/tiny-sd21-inpaint-fp32 (9-channel inpainting unet), both from tools/model/make_tiny_sd.py.
Output: src/all/test/resources/reference/tasks/ (cases.json, inputs/, cases/; see the README.md there).

The pipelines get small stand-ins for the parts diffusers would load from transformers / the Hub:
- unet: nn.Module with .config (unet/config.json + time_cond_proj_dim=None) and diffusers' call signature
  unet(x, t, encoder_hidden_states=, timestep_cond=, cross_attention_kwargs=, added_cond_kwargs=, return_dict=);
  it calls unet.pt as AWS's wrapper does: unet.pt(x, t.float().expand((B,)), emb) -> (noise_pred,);
- vae: nn.Module with .config (vae/config.json); encode(x) = diffusers' own
  AutoencoderKLOutput(latent_dist=DiagonalGaussianDistribution(vae_encoder.pt(x)["latent_parameters"]));
  decode(z) = (vae_decoder.pt(vae_post_quant_conv.pt(z)),);
- text_encoder: nn.Module with .config (text_encoder/config.json) and .dtype; forward(ids) runs text_encoder.pt per row
  (traced at batch 1) and returns (last_hidden_state,);
- tokenizer: CLIPTokenizer's call surface over tools/reference/clip_reference.py (transformers' slow CLIPTokenizer
  ids; cross-checked against tools/reference/sd_sampler.py's independent tokenizer for every prompt);
- scheduler: diffusers' DPMSolverMultistepScheduler / EulerDiscreteScheduler .from_config(scheduler_config.json).
Import stubs (install_stubs below; nothing is installed in the system): huggingface_hub, transformers (classes
only used as annotations/isinstance targets, plus a dist-info so that is_transformers_available() is true),
safetensors, tokenizers, httpx, filelock, tqdm (a no-op progress bar), packaging.version (a small Version),
diffusers.dependency_versions_check (skipped), and the torch 2.x names diffusers touches at import time on torch
1.13 (torch.xpu, torch.mps, torch.compiler, torch.float8_*, torch.distributed.device_mesh,
torch.distributed._functional_collectives, torch.nn.attention); none of them runs in these pipelines.
"""
import argparse
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import os
import re
import shutil
import sys
import tempfile
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))  # tools/<group>/x.py
MODELS = os.path.join(REPO, "src", "all", "test", "resources", "models")
OUT = os.path.join(REPO, "src", "all", "test", "resources", "reference", "tasks")
sys.path.insert(0, HERE)
import clip_reference  # noqa: E402
import sd_sampler  # noqa: E402

# --------------------------------------------------------------------------------------------------
# import stubs (diffusers 0.40.0.dev0 on Debian's torch 1.13 without transformers / huggingface_hub)
# --------------------------------------------------------------------------------------------------

STUBBED_PACKAGES = ("huggingface_hub", "safetensors", "transformers", "tokenizers", "httpx", "filelock", "tqdm",
                    "packaging")
STUBBED_TORCH_MODULES = ("torch.distributed._functional_collectives", "torch.nn.attention")


class _Version:
    """packaging.version.Version, enough for diffusers' comparisons (release numbers, then dev < a < b < rc < final
    < post)."""
    ORDER = {"dev": -4, "a": -3, "alpha": -3, "b": -2, "beta": -2, "rc": -1, None: 0, "post": 1}

    def __init__(self, s):
        self.public = str(s)
        m = re.match(r"v?(\d+(?:\.\d+)*)(?:[.-]?(a|b|rc|alpha|beta|dev|post)(\d*))?", self.public.strip())
        self.release = tuple(int(x) for x in m.group(1).split(".")) if m else (0,)
        rel = list(self.release)
        while len(rel) > 1 and rel[-1] == 0:
            rel.pop()
        tag = m.group(2) if m else None
        self._key = (tuple(rel), self.ORDER[tag], int(m.group(3) or 0) if m else 0)
        self.base_version = ".".join(str(x) for x in self.release)
        self.is_prerelease = tag in ("dev", "a", "alpha", "b", "beta", "rc")
        self.is_devrelease = tag == "dev"
        self.major, self.minor, self.micro = (list(self.release) + [0, 0])[:3]

    @staticmethod
    def _of(o):
        return o if isinstance(o, _Version) else _Version(o)

    def __lt__(self, o):
        return self._key < self._of(o)._key

    def __le__(self, o):
        return self._key <= self._of(o)._key

    def __gt__(self, o):
        return self._key > self._of(o)._key

    def __ge__(self, o):
        return self._key >= self._of(o)._key

    def __eq__(self, o):
        return self._key == self._of(o)._key

    def __hash__(self):
        return hash(self._key)

    def __str__(self):
        return self.public


class _Tqdm:
    """tqdm.auto.tqdm without output (diffusers' progress_bar and logging)."""

    def __init__(self, iterable=None, *a, **k):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def update(self, n=1):
        pass

    def close(self):
        pass

    @classmethod
    def set_lock(cls, lock):
        pass

    @classmethod
    def get_lock(cls):
        return None


class _StubModule(types.ModuleType):
    """Any attribute: UPPER_CASE constants are "", CamelCase names are empty classes (…Error/…Exception ones
    exceptions), other names are functions returning None (or, used as a decorator, the decorated function)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name.isupper() or name.startswith("HF_") or name.startswith("REGEX"):
            val = ""
        elif name[:1].isupper():
            val = type(name, (Exception,) if name.endswith(("Error", "Exception")) else (object,), {})
        else:
            def val(*a, **k):
                return a[0] if len(a) == 1 and not k and callable(a[0]) else None
            val.__name__ = name
        setattr(self, name, val)
        return val


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, packages, modules):
        self.packages, self.modules = packages, modules

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in self.packages or any(
                fullname == p or fullname.startswith(p + ".") for p in self.modules):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _StubModule(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, m):
        if m.__name__ == "packaging":
            import packaging.version as pv
            m.version = pv
        elif m.__name__ == "packaging.version":
            m.Version = m.parse = _Version
            m.InvalidVersion = type("InvalidVersion", (ValueError,), {})
        elif m.__name__ in ("tqdm", "tqdm.auto"):
            m.tqdm = _Tqdm
            if m.__name__ == "tqdm":
                import tqdm.auto as ta
                m.auto = ta


class _NoDevice(types.ModuleType):
    """torch.xpu / torch.mps (absent in torch 1.13): every function answers False (no such device)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: False


STUB_NOTES = []


def _find(name):
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None


def install_stubs(diffusers_src):
    """Make `import diffusers` work from diffusers_src on this machine; returns the temporary dist-info folder."""
    missing = tuple(p for p in STUBBED_PACKAGES if importlib.util.find_spec(p) is None)
    missing_torch = tuple(m for m in STUBBED_TORCH_MODULES if _find(m) is None)
    STUB_NOTES.extend(missing + missing_torch)
    sys.meta_path.insert(0, _StubFinder(missing, missing_torch))
    dist = tempfile.mkdtemp(prefix="sdjvm-stub-dists-")
    if "transformers" in missing:
        d = os.path.join(dist, "transformers-4.57.1.dist-info")  # only makes is_transformers_available() true
        os.makedirs(d)
        with open(os.path.join(d, "METADATA"), "w") as f:
            f.write("Metadata-Version: 2.1\nName: transformers\nVersion: 4.57.1\n")
        with open(os.path.join(d, "top_level.txt"), "w") as f:
            f.write("transformers\n")
        sys.path.append(dist)
    STUB_NOTES.append("diffusers.dependency_versions_check")
    dv = types.ModuleType("diffusers.dependency_versions_check")  # version checks of requests/filelock/...
    dv.dep_version_check = lambda *a, **k: None
    sys.modules["diffusers.dependency_versions_check"] = dv
    for ns in ("xpu", "mps"):
        if not hasattr(torch, ns):
            setattr(torch, ns, _NoDevice("torch." + ns))
            STUB_NOTES.append("torch." + ns)
    for dt in ("float8_e4m3fn", "float8_e5m2"):
        if not hasattr(torch, dt):
            setattr(torch, dt, "placeholder for torch.%s (diffusers' quantizer dtype tables)" % dt)
            STUB_NOTES.append("torch." + dt)
    if not hasattr(torch, "compiler"):
        tc = types.ModuleType("torch.compiler")
        tc.disable = lambda fn=None, *a, **k: fn if callable(fn) else (lambda f: f)
        tc.is_compiling = lambda: False
        tc.cudagraph_mark_step_begin = lambda: None
        torch.compiler = tc
        STUB_NOTES.append("torch.compiler")
    import torch.distributed as dist_mod
    if not hasattr(dist_mod, "device_mesh"):
        dm = types.ModuleType("torch.distributed.device_mesh")
        dm.DeviceMesh = type("DeviceMesh", (), {})  # a type annotation in diffusers' parallel config
        dist_mod.device_mesh = dm
        STUB_NOTES.append("torch.distributed.device_mesh")
    sys.path.insert(0, diffusers_src)
    return dist


# --------------------------------------------------------------------------------------------------
# stand-ins for the modules diffusers would load (around the TorchScript artifacts)
# --------------------------------------------------------------------------------------------------


def read_json(path):
    with open(path) as f:
        return json.load(f)


class Recorder:
    """What one pipeline call did: the generator draws, the encoder calls, the unet calls."""

    def __init__(self):
        self.draws = []
        self.encodes = []
        self.unet = []
        self.perturb = None  # (relative size, torch.Generator) for --perturb
        self.contiguous = False  # --contiguous-encoder-input

    def noise_like(self, x):
        rel, g = self.perturb
        return x + rel * x.abs().max() * torch.randn(x.shape, generator=g, dtype=x.dtype)


REC = Recorder()


def make_stand_ins(model_dir):
    from diffusers.configuration_utils import FrozenDict
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
    from diffusers.models.modeling_outputs import AutoencoderKLOutput

    cm = os.path.join(model_dir, "compiled_models")
    man = read_json(os.path.join(cm, "sdjvm-manifest.json"))
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16}

    class Module(torch.nn.Module):
        """What diffusers asks of a ModelMixin besides the call: .device and .dtype."""

        @property
        def device(self):
            return torch.device("cpu")

        @property
        def dtype(self):
            return torch.float32

    class UNet(Module):
        def __init__(self):
            super().__init__()
            self.ts = torch.jit.load(os.path.join(cm, "unet.pt")).eval()
            cfg = {"time_cond_proj_dim": None}  # diffusers' default; the config.json does not name it
            cfg.update(read_json(os.path.join(model_dir, "unet", "config.json")))
            self.config = FrozenDict(cfg)
            self.D = dtypes[man["artifacts"]["unet"]["inputs"][0]["dtype"]]

        @property
        def dtype(self):
            return self.D

        def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None, cross_attention_kwargs=None,
                    added_cond_kwargs=None, return_dict=True):
            assert timestep_cond is None and cross_attention_kwargs is None and added_cond_kwargs is None
            B = sample.shape[0]
            t = torch.as_tensor(timestep).float().expand((B,)).to(self.D)  # AWS's NeuronUNet wrapper
            out = self.ts(sample.to(self.D), t, encoder_hidden_states.to(self.D))
            eps = (out[0] if isinstance(out, (tuple, list)) else out).float()
            if REC.perturb:
                eps = REC.noise_like(eps)
            REC.unet.append({"t": float(torch.as_tensor(timestep)), "t_unet": float(t[0]),
                             "sample_shape": list(sample.shape), "sample_dtype": str(sample.dtype)})
            return (eps,) if not return_dict else types.SimpleNamespace(sample=eps)

    class TextEncoder(Module):
        def __init__(self):
            super().__init__()
            self.ts = torch.jit.load(os.path.join(cm, "text_encoder.pt")).eval()
            self.config = FrozenDict(read_json(os.path.join(model_dir, "text_encoder", "config.json")))

        def forward(self, input_ids, attention_mask=None, output_hidden_states=None):
            assert attention_mask is None and not output_hidden_states
            rows = []
            for i in range(input_ids.shape[0]):  # traced at batch 1, as AWS's
                out = self.ts(input_ids[i:i + 1])
                if isinstance(out, dict):
                    out = out["last_hidden_state"]
                elif isinstance(out, (tuple, list)):
                    out = out[0]
                rows.append(out.float())
            return (torch.cat(rows),)

    class Vae(Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.jit.load(os.path.join(cm, "vae_encoder.pt")).eval()
            self.pq = torch.jit.load(os.path.join(cm, "vae_post_quant_conv.pt")).eval()
            self.dec = torch.jit.load(os.path.join(cm, "vae_decoder.pt")).eval()
            self.config = FrozenDict(read_json(os.path.join(model_dir, "vae", "config.json")))

        def encode(self, x, return_dict=True):
            moments = self.enc(x.contiguous() if REC.contiguous else x)["latent_parameters"]
            if REC.perturb:
                moments = REC.noise_like(moments)
            REC.encodes.append({"input": x.clone(), "moments": moments.clone()})
            out = AutoencoderKLOutput(latent_dist=DiagonalGaussianDistribution(moments))
            return out if return_dict else (out.latent_dist,)

        def decode(self, z, return_dict=True, generator=None):
            img = self.dec(self.pq(z))
            return (img,) if not return_dict else types.SimpleNamespace(sample=img)

    return UNet(), TextEncoder(), Vae(), man


class Tokenizer:
    """The part of transformers' CLIPTokenizer that the SD pipelines call, with the ids of clip_reference.Clip
    (transformers' slow CLIPTokenizer restated; SD 2.x: pad "!" = id 0)."""
    model_max_length = 77

    def __init__(self, model_dir):
        self.clip = clip_reference.Clip(model_dir)
        self.bos, self.eos = self.clip.added["<|startoftext|>"], self.clip.added["<|endoftext|>"]
        self.pad = self.clip.added["!"]
        self.added_tokens_encoder = dict(self.clip.added)
        self.decoder = {v: k for k, v in self.clip.encoder.items()}

    def tokenize(self, text):  # TextualInversionLoaderMixin.maybe_convert_prompt looks for added tokens in these
        return [self.decoder.get(i, "") for i in self.clip.encode(text)]

    def __call__(self, text, padding=False, max_length=None, truncation=False, return_tensors=None):
        texts = [text] if isinstance(text, str) else list(text)
        rows = []
        for t in texts:
            ids = self.clip.encode(t)
            if truncation and max_length is not None:
                ids = ids[:max_length - 2]
            rows.append([self.bos] + ids + [self.eos])
        n = max_length if padding == "max_length" else max(len(r) for r in rows) if padding in (True, "longest") \
            else None
        mask = [[1] * len(r) + [0] * ((n or len(r)) - len(r)) for r in rows]
        rows = [r + [self.pad] * ((n or len(r)) - len(r)) for r in rows]
        return types.SimpleNamespace(input_ids=torch.tensor(rows, dtype=torch.int64),
                                     attention_mask=torch.tensor(mask, dtype=torch.int64))

    def batch_decode(self, ids):
        return [" ".join(self.decoder.get(int(i), "?") for i in row) for row in ids]


def record_draws():
    """Wrap diffusers' randn_tensor where the pipelines, the VAE distribution and the schedulers import it: every
    draw from a generator is recorded with its caller, shape and first values."""
    import diffusers.models.autoencoders.vae as vae_mod
    import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img as i2i
    import diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint as inp
    import diffusers.schedulers.scheduling_dpmsolver_multistep as dpm
    import diffusers.schedulers.scheduling_euler_discrete as eul
    from diffusers.utils import torch_utils
    orig = torch_utils.randn_tensor

    def wrapped(shape, generator=None, device=None, dtype=None, layout=None):
        out = orig(shape, generator=generator, device=device, dtype=dtype, layout=layout)
        caller = inspect.stack()[1]
        REC.draws.append({"by": "%s.%s" % (os.path.basename(caller.filename)[:-3], caller.function),
                          "line": caller.lineno, "shape": list(shape), "dtype": str(dtype).replace("torch.", ""),
                          "generator": generator is not None, "first4": [float(v) for v in out.flatten()[:4]]})
        return out

    for mod in (vae_mod, i2i, inp, dpm, eul):
        assert mod.randn_tensor is orig, mod
        mod.randn_tensor = wrapped


# --------------------------------------------------------------------------------------------------
# inputs (deterministic, written as PNG)
# --------------------------------------------------------------------------------------------------


def start_image(w, h):
    """RGB uint8: colour gradients, a disc, a square and a triangle, at coordinates relative to the image size."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = (x + 0.5) / w, (y + 0.5) / h
    img = np.stack([40 + 180 * u, 30 + 160 * v, 200 - 120 * (u + v) / 2], axis=-1)
    disc = (u - 0.3) ** 2 + ((v - 0.35) * h / w) ** 2 < 0.18 ** 2
    img[disc] = (230, 60, 40)
    square = (u > 0.58) & (u < 0.88) & (v > 0.55) & (v < 0.85)
    img[square] = (30, 70, 210)
    tri = (v > 0.62) & (v < 0.92) & (np.abs(u - 0.3) < (v - 0.62) * 0.8)
    img[tri] = (250, 220, 40)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def mask_image(w, h):
    """L uint8 with grey values: 0 background; a disc of 200; a ramp 96..160 crossing the binarization threshold
    (diffusers: value/255 >= 0.5, i.e. >= 128); bars of exactly 127 (kept) and 128 (repainted). The edges fall
    inside 8x8 blocks, so the latent mask depends on diffusers' nearest-neighbour downsampling."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    m = np.zeros((h, w))
    m[(x - 41.5) ** 2 + (y - 21.5) ** 2 < 13.3 ** 2] = 200
    ramp = (y >= 37) & (y < 51) & (x >= 3) & (x < 61)
    m[ramp] = 96 + (x[ramp] - 3) * (64 / 57)
    m[(y >= 53) & (y < 62) & (x >= 5) & (x < 29)] = 127
    m[(y >= 53) & (y < 62) & (x >= 35) & (x < 59)] = 128
    return np.clip(np.rint(m), 0, 255).astype(np.uint8)


INPUTS = {
    "start_64.png": lambda: (start_image(64, 64), "RGB"),
    "start_133x100.png": lambda: (start_image(133, 100), "RGB"),
    "mask_64.png": lambda: (mask_image(64, 64), "L"),
}

# --------------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------------

FP32 = "tiny-sd21-fp32"
INP9 = "tiny-sd21-inpaint-fp32"
DPM = "DPMSolverMultistepScheduler"
EULER = "EulerDiscreteScheduler"
P1 = "a watercolor painting of a lighthouse at dusk"
P2 = "a red circle on a blue background"
P3 = "two cats sleeping on a sofa!"

# name, task, model, image, mask, prompt, negative prompt, steps, guidance, seed, strength, scheduler
CASES = [
    ("i2i_dpm20_s0.75_g7.5_seed42", "img2img", FP32, "start_64.png", None, P1, None, 20, 7.5, 42, 0.75, DPM),
    ("i2i_dpm25_s0.3_g5_neg_seed7", "img2img", FP32, "start_64.png", None, P2, "blurry, low quality", 25, 5.0, 7,
     0.3, DPM),
    ("i2i_dpm10_s1.0_g6_seed3", "img2img", FP32, "start_64.png", None, P3, None, 10, 6.0, 3, 1.0, DPM),
    ("i2i_euler20_s0.75_g7.5_seed42", "img2img", FP32, "start_64.png", None, P1, None, 20, 7.5, 42, 0.75, EULER),
    ("i2i_euler12_s1.0_g4_seed5", "img2img", FP32, "start_64.png", None, P2, None, 12, 4.0, 5, 1.0, EULER),
    ("i2i_nocfg_g1_dpm15_s0.6_seed11", "img2img", FP32, "start_64.png", None, P2, "ignored without guidance", 15,
     1.0, 11, 0.6, DPM),
    ("i2i_133x100_dpm12_s0.75_g7.5_seed2024", "img2img", FP32, "start_133x100.png", None, P1, None, 12, 7.5, 2024,
     0.75, DPM),
    ("inp4_dpm20_s1.0_g7.5_seed11", "inpaint", FP32, "start_64.png", "mask_64.png", P2, None, 20, 7.5, 11, 1.0, DPM),
    ("inp4_dpm20_s0.6_g7.5_seed12", "inpaint", FP32, "start_64.png", "mask_64.png", P1, "low quality", 20, 7.5, 12,
     0.6, DPM),
    ("inp4_euler15_s0.8_g5_seed13", "inpaint", FP32, "start_64.png", "mask_64.png", P3, None, 15, 5.0, 13, 0.8,
     EULER),
    ("inp9_dpm20_s1.0_g7.5_seed11", "inpaint", INP9, "start_64.png", "mask_64.png", P2, None, 20, 7.5, 11, 1.0, DPM),
    ("inp9_dpm20_s0.75_g7.5_seed14", "inpaint", INP9, "start_64.png", "mask_64.png", P1, "low quality", 20, 7.5, 14,
     0.75, DPM),
    ("inp9_nocfg_g1_dpm10_s1.0_seed15", "inpaint", INP9, "start_64.png", "mask_64.png", P3, None, 10, 1.0, 15, 1.0,
     DPM),
    ("inp9_euler15_s1.0_g6_seed16", "inpaint", INP9, "start_64.png", "mask_64.png", P2, None, 15, 6.0, 16, 1.0,
     EULER),
]

TOLERANCES = {
    "image_max_abs": 2, "image_mean_abs": 0.05,
    "latents_max_abs_rel": 1e-4,
    "init_latents_max_abs_rel": 1e-4,
    "moments_max_abs_rel": 1e-4,
    "image_latents_max_abs_rel": 1e-4,
    "masked_image_latents_max_abs_rel": 1e-4,
    "mask_latent": "exact",
    "resized_input": "exact",
    "generator_draws": "exact (order, shapes and values: torch's CPU generator)",
    "note": "float32 everywhere. image: uint8 HWC, max |d| over all values and mean |d| over H*W*3. *_rel: max |d| "
            "<= tol * max|ref| over the array. The encoder's moments depend on the memory layout of its input "
            "(diffusers passes a channels-last view; a contiguous NCHW copy gives up to 1.8e-5 x max|ref|), see "
            "README.md",
}


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def stats(a):
    a = np.asarray(a, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "min": float(a.min()), "max": float(a.max())}


def f32(t):
    return t.detach().cpu().numpy().astype("<f4").tobytes()


class Runner:
    def __init__(self):
        from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler
        from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import \
            StableDiffusionImg2ImgPipeline
        from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint import \
            StableDiffusionInpaintPipeline
        self.sched_cls = {DPM: DPMSolverMultistepScheduler, EULER: EulerDiscreteScheduler}
        self.pipe_cls = {"img2img": StableDiffusionImg2ImgPipeline, "inpaint": StableDiffusionInpaintPipeline}
        self.models = {}
        self.pipes = {}

    def model(self, name):
        if name not in self.models:
            d = os.path.join(MODELS, name)
            unet, te, vae, man = make_stand_ins(d)
            self.models[name] = (d, unet, te, vae, man, Tokenizer(d),
                                 read_json(os.path.join(d, "scheduler", "scheduler_config.json")),
                                 read_json(os.path.join(d, "model_index.json")))
        return self.models[name]

    def pipe(self, task, model, scheduler):
        d, unet, te, vae, man, tok, sched_cfg, index = self.model(model)
        key = (task, model)
        if key not in self.pipes:
            self.pipes[key] = self.pipe_cls[task](vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
                                                  scheduler=self.sched_cls[scheduler].from_config(sched_cfg),
                                                  safety_checker=None, feature_extractor=None,
                                                  requires_safety_checker=False)
            self.pipes[key].set_progress_bar_config(disable=True)
        p = self.pipes[key]
        p.scheduler = self.sched_cls[scheduler].from_config(sched_cfg)  # a fresh scheduler for every call
        return p

    def call(self, case, output_type, inputs_dir, callback=None):
        """One pipeline call; returns (output, captured intermediates)."""
        from PIL import Image
        name, task, model, image, mask, prompt, neg, steps, g, seed, strength, scheduler = case
        p = self.pipe(task, model, scheduler)
        cap = {}

        def capture(fn, key):
            def f(*a, **k):
                out = fn(*a, **k)
                cap[key] = out
                return out
            return f
        p.prepare_latents = capture(type(p).prepare_latents.__get__(p), "prepare_latents")
        if task == "inpaint":
            p.prepare_mask_latents = capture(type(p).prepare_mask_latents.__get__(p), "prepare_mask_latents")
        REC.draws, REC.encodes, REC.unet = [], [], []
        if REC.perturb:  # the same perturbation in the three calls of a case
            REC.perturb = (REC.perturb[0], torch.Generator().manual_seed(20260101))
        kw = dict(prompt=prompt, negative_prompt=neg, num_inference_steps=steps, guidance_scale=g,
                  generator=torch.Generator().manual_seed(seed), strength=strength, output_type=output_type,
                  image=Image.open(os.path.join(inputs_dir, image)))
        if task == "inpaint":
            kw["mask_image"] = Image.open(os.path.join(inputs_dir, mask))
        if callback is not None:
            kw["callback_on_step_end"] = callback
        out = p(**kw).images
        cap.update(draws=REC.draws, encodes=REC.encodes, unet=REC.unet, scheduler=p.scheduler)
        del p.prepare_latents
        if task == "inpaint":
            del p.prepare_mask_latents
        return out, cap


def run_case(runner, case, inputs_dir):
    from PIL import Image
    name, task, model, image, mask, prompt, neg, steps, g, seed, strength, scheduler = case
    d, unet, te, vae, man, tok, sched_cfg, index = runner.model(model)
    # 1. output_type="latent": the final latents
    lat, cap_l = runner.call(case, "latent", inputs_dir)
    # 2. output_type="np" (float HWC in [0, 1]); the last step's latents captured to prove the runs agree
    last = {}

    def cb(pipe, i, t, kw):
        last["latents"] = kw["latents"].clone()
        return kw
    img_np, cap = runner.call(case, "np", inputs_dir, callback=cb)
    # 3. output_type="pil": what users get
    img_pil, cap_p = runner.call(case, "pil", inputs_dir)
    u8 = np.array(img_pil[0].convert("RGB"))
    assert torch.equal(lat, last["latents"]), name + ": latent and np runs differ"
    assert np.array_equal(u8, (img_np[0] * 255).round().astype(np.uint8)), name + ": pil != round(np * 255)"
    for c2 in (cap_l, cap_p):
        assert [x["first4"] for x in c2["draws"]] == [x["first4"] for x in cap["draws"]]
    sched = cap["scheduler"]
    cfg = g > 1.0
    pl = cap["prepare_latents"]
    init = pl[0] if isinstance(pl, tuple) else pl
    arrays = {"rgb_u8": u8.tobytes(), "latents_f32": f32(lat), "init_latents_f32": f32(init)}
    enc_inputs = []
    for k, e in enumerate(cap["encodes"]):
        x = e["input"]
        arrays["encode%d_moments_f32" % (k + 1)] = f32(e["moments"])
        enc_inputs.append({"shape": list(x.shape), "min": float(x.min()), "max": float(x.max()),
                           "moments_shape": list(e["moments"].shape),
                           "moments_first4": [float(v) for v in e["moments"].flatten()[:4]]})
    # which encoder call saw which image: img2img encodes the start image; inpainting encodes the start image
    # (4-channel unet, or strength < 1) and then the masked image
    src = Image.open(os.path.join(inputs_dir, image))
    n_enc = len(cap["encodes"])
    start_k = 0 if task == "img2img" or n_enc == 2 else None
    masked_k = n_enc - 1 if task == "inpaint" else None
    xk = cap["encodes"][start_k if start_k is not None else masked_k]["input"][0]
    H8, W8 = xk.shape[1:]
    expect = np.array(src if src.size == (W8, H8) else src.resize((W8, H8), resample=Image.LANCZOS))
    expect_x = torch.from_numpy(expect.astype(np.float32) / 255.0).permute(2, 0, 1) * 2.0 - 1.0
    fed_u8 = None
    if start_k is not None:
        # what diffusers fed the encoder: the (LANCZOS-resized) start image, exactly
        x0 = cap["encodes"][start_k]["input"][0]
        fed_u8 = np.rint(((x0.permute(1, 2, 0).numpy().astype(np.float64) + 1.0) / 2.0) * 255.0).astype(np.uint8)
        assert np.array_equal(fed_u8, expect), name + ": the encoder input is not the (resized) start image"
        assert torch.equal(x0, expect_x), name
    if masked_k is not None:
        # the masked image: start image in [-1, 1] times (binarized mask < 0.5); binarized = (L value / 255 >= 0.5)
        mv = np.array(Image.open(os.path.join(inputs_dir, mask)).convert("L")).astype(np.float32) / 255.0
        keep = torch.from_numpy((np.where(mv >= 0.5, 1.0, 0.0) < 0.5).astype(np.float32))
        assert torch.equal(cap["encodes"][masked_k]["input"][0], expect_x * keep), name + ": masked image"
    res = {
        "id": name, "task": task, "pipeline": runner.pipe_cls[task].__name__,
        "model": model, "model_index_class": index["_class_name"],
        "unet_in_channels": unet.config.in_channels,
        "prompt": prompt, "negative_prompt": neg, "num_inference_steps": steps, "guidance_scale": g,
        "do_classifier_free_guidance": cfg, "seed": seed, "strength": strength,
        "scheduler": scheduler, "scheduler_overrides": {},
        "scheduler_effective_config": {k: v for k, v in dict(sched.config).items() if k != "_use_default_values"},
        "init_noise_sigma": float(sched.init_noise_sigma),
        "all_timesteps": [float(t) if scheduler == EULER else int(t) for t in sched.timesteps],
        "sigmas": [float(s) for s in sched.sigmas],
        "begin_index": sched.begin_index,
        "timesteps_run": [u["t"] for u in cap["unet"]],
        "t_unet": [u["t_unet"] for u in cap["unet"]],
        "unet_sample_shape": cap["unet"][0]["sample_shape"],
        "unet_calls": len(cap["unet"]),
        "ids_prompt": tok(prompt, padding="max_length", max_length=77, truncation=True).input_ids[0].tolist(),
        "ids_negative": tok(neg or "", padding="max_length", max_length=77, truncation=True).input_ids[0].tolist()
        if cfg else None,
        "image": {"file": "inputs/" + image, "sha256": sha256_file(os.path.join(inputs_dir, image)),
                  "mode": src.mode, "width": src.size[0], "height": src.size[1],
                  "used_width": W8, "used_height": H8, "resized": src.size != (W8, H8)},
        "height": H8, "width": W8,
        "generator_draws": cap["draws"],
        "encodes": enc_inputs,
        "files": {"png": "cases/%s.png" % name, "rgb_u8": "cases/%s.rgb" % name,
                  "latents_f32": "cases/%s.latents.f32" % name, "init_latents_f32": "cases/%s.init.f32" % name},
        "sha256_u8": hashlib.sha256(u8.tobytes()).hexdigest(),
        "image_stats": stats(u8),
        "latents_stats": stats(lat.numpy()), "latents_first8": [float(v) for v in lat.flatten()[:8]],
        "init_latents_stats": stats(init.numpy()), "init_latents_first8": [float(v) for v in init.flatten()[:8]],
    }
    for k in range(len(cap["encodes"])):
        res["files"]["encode%d_moments_f32" % (k + 1)] = "cases/%s.encode%d.moments.f32" % (name, k + 1)
    if res["image"]["resized"]:
        assert fed_u8 is not None
        res["files"]["resized_png"] = "cases/%s.resized.png" % name
        arrays["resized_png"] = fed_u8
    if task == "inpaint":
        m_src = Image.open(os.path.join(inputs_dir, mask))
        mask_lat, masked_lat = cap["prepare_mask_latents"]
        mask_lat, masked_lat = mask_lat[:1], masked_lat[:1]  # [uncond, cond] copies are equal with CFG
        arrays["mask_latent_f32"] = f32(mask_lat)
        arrays["masked_image_latents_f32"] = f32(masked_lat)
        res["files"]["mask_latent_f32"] = "cases/%s.mask_latent.f32" % name
        res["files"]["masked_image_latents_f32"] = "cases/%s.masked_image_latents.f32" % name
        mv = np.array(m_src)
        res["mask"] = {"file": "inputs/" + mask, "sha256": sha256_file(os.path.join(inputs_dir, mask)),
                       "mode": m_src.mode, "width": m_src.size[0], "height": m_src.size[1],
                       "distinct_values": sorted(int(v) for v in np.unique(mv)),
                       "fraction_binarized_1": float((mv >= 128).mean()),
                       "latent_mask_values": sorted(float(v) for v in torch.unique(mask_lat)),
                       "latent_mask_rows": mask_lat[0, 0].int().tolist()}
        if isinstance(pl, tuple) and len(pl) == 3:
            arrays["image_latents_f32"] = f32(pl[2])
            res["files"]["image_latents_f32"] = "cases/%s.image_latents.f32" % name
    # the encoder calls, named
    if task == "img2img":
        names = ["start image"]
    elif len(cap["encodes"]) == 2:
        names = ["start image (image_latents)", "masked image (masked_image_latents)"]
    else:
        names = ["masked image (masked_image_latents)"]
    for e, n in zip(res["encodes"], names):
        e["what"] = n
    res["_arrays"] = arrays
    return res


def check_notes(runner, case, res, arrays, inputs_dir):
    """The README's NOTES restated in plain torch, from the input files, the seed, the TorchScript encoder and the
    scheduler's recorded sigmas, and compared with what diffusers computed (init latents, image / masked-image
    latents, latent mask). Returns {what: "bitwise" | max |d|}; raises if a value is off by more than 1e-6
    relative (the notes would then be wrong)."""
    from PIL import Image
    name, task, model, image, mask, prompt, neg, steps, g, seed, strength, scheduler = case
    d, unet, te, vae, man, tok, sched_cfg, index = runner.model(model)
    sf = vae.config.scaling_factor
    gen = torch.Generator().manual_seed(seed)
    # timesteps from strength (get_timesteps): double multiply, truncation
    init_timestep = min(int(steps * strength), steps)
    t_start = max(steps - init_timestep, 0)
    assert res["begin_index"] == t_start and res["timesteps_run"] == res["all_timesteps"][t_start:], name
    sigma = torch.tensor(res["sigmas"][t_start], dtype=torch.float32)
    # the start image: PIL -> floor to a multiple of 8 (img2img) or the unet's default size (inpaint) -> LANCZOS
    src = Image.open(os.path.join(inputs_dir, image))
    W8, H8 = (src.size[0] - src.size[0] % 8, src.size[1] - src.size[1] % 8) if task == "img2img" else \
        (unet.config.sample_size * 8, unet.config.sample_size * 8)
    px = np.array(src.resize((W8, H8), resample=Image.LANCZOS)).astype(np.float32)[None] / 255.0
    # [1,H,W,3] -> [1,3,H,W] as a view (diffusers' numpy_to_pt): the tensor keeps channels-last strides, and torch's
    # CPU convolutions then take their channels-last path (a contiguous copy gives ~1e-5 relative different moments)
    x = 2.0 * torch.from_numpy(px.transpose(0, 3, 1, 2)) - 1.0
    lat_shape = (1, 4, H8 // 8, W8 // 8)

    def encode(img):  # DiagonalGaussianDistribution(moments).sample(generator) * scaling_factor
        mom = vae.enc(img)["latent_parameters"]
        mean, logvar = torch.chunk(mom, 2, dim=1)
        std = torch.exp(0.5 * torch.clamp(logvar, -30.0, 20.0))
        return sf * (mean + std * torch.randn(mean.shape, generator=gen, dtype=torch.float32))

    def add_noise(x0, noise):
        if scheduler == EULER:
            return x0 + noise * sigma
        alpha_t = 1 / ((sigma ** 2 + 1) ** 0.5)
        return alpha_t * x0 + (sigma * alpha_t) * noise

    want = {}
    if task == "img2img":
        image_latents = encode(x)
        noise = torch.randn(lat_shape, generator=gen, dtype=torch.float32)
        want["init_latents_f32"] = add_noise(image_latents, noise)
    else:
        mv = np.array(Image.open(os.path.join(inputs_dir, mask)).resize((W8, H8), resample=Image.LANCZOS)
                      .convert("L")).astype(np.float32)[None, :, :, None] / 255.0
        mv[mv < 0.5] = 0
        mv[mv >= 0.5] = 1
        m = torch.from_numpy(mv.transpose(0, 3, 1, 2))
        nine = unet.config.in_channels == 9
        if not nine or strength != 1.0:
            image_latents = encode(x)
            if not nine:
                want["image_latents_f32"] = image_latents
        noise = torch.randn(lat_shape, generator=gen, dtype=torch.float32)
        if strength == 1.0:
            want["init_latents_f32"] = noise * res["init_noise_sigma"]
        else:
            want["init_latents_f32"] = add_noise(image_latents, noise)
        want["masked_image_latents_f32"] = encode(x * (m < 0.5))
        want["mask_latent_f32"] = m[:, :, ::8, ::8]  # F.interpolate(mode="nearest"): pixel (8i, 8j)
    out = {}
    for k, v in want.items():
        got = torch.from_numpy(np.frombuffer(arrays[k], "<f4").copy()).reshape(v.shape)
        if torch.equal(got, v.float()):
            out[k] = "bitwise"
        else:
            err = float((got - v).abs().max() / v.abs().max())
            assert err <= 1e-6, (name, k, err)
            out[k] = err
    return out


def write_png(path, arr, mode):
    from PIL import Image
    Image.fromarray(arr, mode=mode).save(path, format="PNG")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffusers-src", default=os.environ.get("DIFFUSERS_SRC", "/tmp/diffusers/src"),
                    help="the src/ folder of a diffusers checkout (default $DIFFUSERS_SRC or /tmp/diffusers/src)")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--check", action="store_true", help="recompute everything and compare with the files in --out")
    ap.add_argument("--perturb", type=float, nargs="?", const=1e-6, default=None,
                    help="tolerance headroom: rerun every case with relative noise of this size (default 1e-6) added "
                         "to each unet output and encoder output, and print the image/latent differences")
    ap.add_argument("--contiguous-encoder-input", action="store_true",
                    help="rerun every case with the encoder input made contiguous (NCHW) instead of diffusers' "
                         "channels-last view, and print the differences to the stored references")
    ap.add_argument("--only", help="run only the cases whose name contains this")
    args = ap.parse_args()
    torch.set_num_threads(1)
    dist = install_stubs(args.diffusers_src)
    work = tempfile.mkdtemp(prefix="task-refs-")
    try:
        import diffusers
        record_draws()
        runner = Runner()
        cases = [c for c in CASES if not args.only or args.only in c[0]]
        # every prompt: clip_reference ids == sd_sampler's independent tokenizer ids
        st = sd_sampler.ClipTokenizer(os.path.join(MODELS, FP32, "tokenizer"))
        for c in cases:
            for text in (c[5], c[6] or ""):
                ids = Tokenizer(os.path.join(MODELS, FP32))(text, padding="max_length", max_length=77,
                                                           truncation=True).input_ids[0].tolist()
                assert ids == st.input_ids_77(text), text
        inputs_dir = os.path.join(work, "inputs")
        os.makedirs(inputs_dir)
        for fn, make in INPUTS.items():
            arr, mode = make()
            write_png(os.path.join(inputs_dir, fn), arr, mode)
        if args.check:  # run on the stored inputs (and check they are what the script makes)
            bad = 0
            from PIL import Image
            for fn in INPUTS:
                same = np.array_equal(np.array(Image.open(os.path.join(args.out, "inputs", fn))),
                                      np.array(Image.open(os.path.join(inputs_dir, fn))))
                bad += not same
                print("%-45s %s" % ("inputs/" + fn, "identical pixels" if same else "DIFFERENT"))
            inputs_dir = os.path.join(args.out, "inputs")
        if args.perturb:
            REC.perturb = (args.perturb, None)
        REC.contiguous = args.contiguous_encoder_input
        results = []
        with torch.no_grad():
            for c in cases:
                r = run_case(runner, c, inputs_dir)
                if not args.perturb and not args.contiguous_encoder_input:
                    r["notes_check"] = check_notes(runner, c, r, r["_arrays"], inputs_dir)
                results.append(r)
                print("%-40s %s %dx%d steps %d/%d t0=%s draws %s img mean %.1f latents std %.3f" % (
                    r["id"], r["pipeline"].replace("StableDiffusion", "")[:14], r["width"], r["height"],
                    r["unet_calls"], r["num_inference_steps"], r["timesteps_run"][0],
                    [(d["by"].split(".")[-1], tuple(d["shape"])) for d in r["generator_draws"]],
                    r["image_stats"]["mean"], r["latents_stats"]["std"]), flush=True)
        meta = {
            "generator": "tools/reference/make_task_references.py: diffusers' own StableDiffusionImg2ImgPipeline / "
                         "StableDiffusionInpaintPipeline around the TorchScript artifacts (stand-ins documented in "
                         "the script and README.md), CPU, float32, torch.set_num_threads(1)",
            "diffusers_version": diffusers.__version__,
            "diffusers_commit": "58eb52c0803ea9af3abec60841c2a093bdf1f951",
            "torch": torch.__version__, "numpy": np.__version__,
            "pillow": __import__("PIL").__version__, "python": sys.version.split()[0],
            "stubs": STUB_NOTES,
            "tolerances": TOLERANCES,
            "files": {
                "inputs/*.png": "the start images (RGB) and the mask (8-bit grayscale, mode L) given to the pipelines "
                                "as PIL.Image.open(file)",
                "rgb_u8": "raw uint8, height*width*3 bytes, row-major HWC RGB = the output_type='pil' image; "
                          "sha256_u8 is over these bytes; png is the same pixels",
                "latents_f32": "raw little-endian float32 [1,4,h/8,w/8] C-order: the output_type='latent' result "
                               "(final latents, before / scaling_factor)",
                "init_latents_f32": "the latents entering the denoising loop (prepare_latents' result)",
                "encodeN_moments_f32": "the N-th vae_encoder.pt output (latent_parameters [1,8,h/8,w/8]) in call order; "
                                       "encodes[].what names the image",
                "mask_latent_f32": "inpainting: the mask as the unet / blending sees it, [1,1,h/8,w/8] (0.0 / 1.0)",
                "masked_image_latents_f32": "inpainting: scaling_factor * sample of the masked image's posterior, "
                                            "[1,4,h/8,w/8]",
                "image_latents_f32": "inpainting with a 4-channel unet: scaling_factor * sample of the start image's "
                                     "posterior",
                "resized_png": "the start image as diffusers fed it to the encoder (floored to a multiple of 8, PIL "
                               "LANCZOS), recovered exactly from the encoder input",
            },
            "model_root": "src/all/test/resources/models/<model>",
        }
        doc = {"meta": meta, "cases": [{k: v for k, v in r.items() if k != "_arrays"} for r in results]}
        if args.perturb or args.contiguous_encoder_input:
            report_perturbation(results, args.out)
            return
        if args.check:
            old = {c["id"]: c for c in read_json(os.path.join(args.out, "cases.json"))["cases"]}
            for r in results:
                o = old[r["id"]]
                for key, data in r["_arrays"].items():
                    path = os.path.join(args.out, o["files"][key])
                    if key == "resized_png":
                        same = np.array_equal(np.array(Image.open(path)), data)
                        msg = "identical pixels" if same else "DIFFERENT"
                    else:
                        with open(path, "rb") as f:
                            stored = f.read()
                        same = stored == data
                        msg = "identical" if same else "DIFFERENT " + diff_summary(key, stored, data)
                    bad += not same
                    print("%-40s %-26s %s" % (r["id"], key, msg))
                same = np.array_equal(np.array(Image.open(os.path.join(args.out, o["files"]["png"])).convert("RGB")),
                                      np.frombuffer(r["_arrays"]["rgb_u8"], np.uint8).reshape(r["height"],
                                                                                            r["width"], 3))
                bad += not same
                print("%-40s %-26s %s" % (r["id"], "png", "identical pixels" if same else "DIFFERENT"))
                for k in ("generator_draws", "timesteps_run", "ids_prompt", "ids_negative", "all_timesteps"):
                    same = o[k] == r[k]
                    bad += not same
                    print("%-40s %-26s %s" % (r["id"], k, "identical" if same else "DIFFERENT"))
            same = json.loads(json.dumps(doc["cases"])) == read_json(os.path.join(args.out, "cases.json"))["cases"]
            bad += not same
            print("%-67s %s" % ("cases.json: every recorded value", "identical" if same else "DIFFERENT"))
            print("check: %d differences" % bad)
            sys.exit(1 if bad else 0)
        # write
        os.makedirs(os.path.join(args.out, "cases"), exist_ok=True)
        os.makedirs(os.path.join(args.out, "inputs"), exist_ok=True)
        for fn in INPUTS:
            shutil.copyfile(os.path.join(inputs_dir, fn), os.path.join(args.out, "inputs", fn))
        for r in results:
            for key, data in r["_arrays"].items():
                path = os.path.join(args.out, r["files"][key])
                if key == "resized_png":
                    write_png(path, data, "RGB")
                else:
                    with open(path, "wb") as f:
                        f.write(data)
            write_png(os.path.join(args.out, r["files"]["png"]),
                      np.frombuffer(r["_arrays"]["rgb_u8"], np.uint8).reshape(r["height"], r["width"], 3), "RGB")
        with open(os.path.join(args.out, "cases.json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print("wrote", os.path.join(args.out, "cases.json"))
    finally:
        shutil.rmtree(dist, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def diff_summary(key, a, b):
    if key == "rgb_u8":
        x, y = np.frombuffer(a, np.uint8).astype(int), np.frombuffer(b, np.uint8).astype(int)
        if x.shape != y.shape:
            return "(sizes %d vs %d)" % (x.size, y.size)
        return "(max |d| %d, mean %.4g)" % (np.abs(x - y).max(), np.abs(x - y).mean())
    x, y = np.frombuffer(a, "<f4").astype(np.float64), np.frombuffer(b, "<f4").astype(np.float64)
    if x.shape != y.shape:
        return "(sizes %d vs %d)" % (x.size, y.size)
    return "(max |d| %.3g = %.3g x max|ref|)" % (np.abs(x - y).max(), np.abs(x - y).max() / np.abs(x).max())


def report_perturbation(results, out):
    """Compare the perturbed run with the stored references."""
    worst = {"image_max": 0, "image_mean": 0.0, "latents_rel": 0.0}
    for r in results:
        o = read_json(os.path.join(out, "cases.json"))
        c = {x["id"]: x for x in o["cases"]}[r["id"]]
        with open(os.path.join(out, c["files"]["rgb_u8"]), "rb") as f:
            ref = np.frombuffer(f.read(), np.uint8).astype(int)
        got = np.frombuffer(r["_arrays"]["rgb_u8"], np.uint8).astype(int)
        with open(os.path.join(out, c["files"]["latents_f32"]), "rb") as f:
            lref = np.frombuffer(f.read(), "<f4").astype(np.float64)
        lgot = np.frombuffer(r["_arrays"]["latents_f32"], "<f4").astype(np.float64)
        d = np.abs(ref - got)
        lr = np.abs(lref - lgot).max() / np.abs(lref).max()
        print("%-40s image max |d| %d mean %.4g  latents %.3g x max|ref|" % (r["id"], d.max(), d.mean(), lr))
        worst = {"image_max": max(worst["image_max"], int(d.max())),
                 "image_mean": max(worst["image_mean"], float(d.mean())), "latents_rel": max(worst["latents_rel"], lr)}
    print("worst:", worst)


if __name__ == "__main__":
    main()
