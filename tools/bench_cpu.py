#!/usr/bin/python3
"""CPU benchmark: the same model directory in Python torch and in the JVM (`bin/sd bench`), back to back, with ratios.

    /usr/bin/python3 tools/bench_cpu.py --model DIR   # DIR from make_tiny_sd.py --preset sd21-base --dtype bf16
    /usr/bin/python3 tools/bench_cpu.py --model DIR --repeat 2 --java-no-optimize   # also the unoptimized JVM

Each repetition runs, one after the other and never at the same time:
  1. Python (a child process of this script, Debian's python3-torch): torch.jit.load of the four artifacts, then
     timed calls: the text encoder, one UNet classifier-free-guidance step (batch 2: uncond + cond, as a pipeline
     calls it), the VAE decode (post_quant_conv + decoder). The timestep is fed like the AWS wrapper
     (t.float().expand(B).to(unet dtype)).
  2. the JVM: `bin/sd bench --model DIR --steps N --runs R --warmup W --concurrency 1`, which generates whole images
     (20 steps by default) and reports seconds per step (the UNet CFG step plus the scheduler), VAE decode, load
     time (with its warm-up) and peak RSS;
  3. optionally the JVM again with --no-optimize (LoadOptions.optimize false: the artifacts run as traced).
A 20-step image in Python is not run (on a CPU without bfloat16 instructions one bf16 UNet step takes minutes): it
is estimated as text encoder + steps x UNet step + VAE decode, and marked as an estimate.

Both sides use --threads intra-op threads (default: the number of CPUs). Prints a Markdown table per repetition and
a summary with the ratios (Python time / JVM time: >1 means the JVM is faster); --json writes everything.
This is a benchmark, not a test: run it on an idle machine and report the load average it prints.
"""
import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return float("nan")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# ------------------------------------------------------------------------------------------------ Python side (child)

def python_child(args):
    import torch

    torch.set_num_threads(args.threads)
    cm = os.path.join(args.model, "compiled_models")
    with open(os.path.join(args.model, "unet", "config.json")) as f:
        unet_cfg = json.load(f)
    with open(os.path.join(args.model, "text_encoder", "config.json")) as f:
        hidden = json.load(f)["hidden_size"]
    size = unet_cfg["sample_size"]
    lh = (args.height // 8) if args.height else size
    lw = (args.width // 8) if args.width else size
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "latents": [4, lh, lw]}

    t0 = time.perf_counter()
    te = torch.jit.load(os.path.join(cm, "text_encoder.pt")).eval()
    unet = torch.jit.load(os.path.join(cm, "unet.pt")).eval()
    pqc = torch.jit.load(os.path.join(cm, "vae_post_quant_conv.pt")).eval()
    dec = torch.jit.load(os.path.join(cm, "vae_decoder.pt")).eval()
    out["load_s"] = time.perf_counter() - t0
    udt = next(unet.parameters()).dtype
    vdt = next(dec.parameters()).dtype
    out["unet_dtype"] = str(udt).replace("torch.", "")

    g = torch.Generator().manual_seed(0)
    ids = torch.zeros(1, 77, dtype=torch.int64)
    ids[0, :3] = torch.tensor([49406, 320, 49407])
    sample = torch.randn(2, 4, lh, lw, generator=g).to(udt)
    timestep = torch.tensor(999.0).float().expand((2,)).to(udt)
    ehs = torch.randn(2, 77, hidden, generator=g).to(udt)
    z = torch.randn(1, 4, lh, lw, generator=g).to(vdt) / 0.18215

    def timed(fn, runs):
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return ts

    with torch.inference_mode():
        # warm-up at a small size: library and kernel initialisation, not the full-size work
        unet(sample[:, :, :8, :8].contiguous(), timestep, ehs)
        dec(pqc(z[:, :, :8, :8].contiguous()))
        out["text_encoder_s"] = timed(lambda: te(ids), 2)
        out["unet_step_s"] = timed(lambda: unet(sample, timestep, ehs), args.python_unet_runs)
        out["vae_decode_s"] = timed(lambda: dec(pqc(z)), args.python_vae_runs)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------------ driver

def run_python(args):
    cmd = [sys.executable, os.path.abspath(__file__), "--python-child", "--model", args.model,
           "--threads", str(args.threads), "--python-unet-runs", str(args.python_unet_runs),
           "--python-vae-runs", str(args.python_vae_runs)]
    if args.height:
        cmd += ["--height", str(args.height), "--width", str(args.width)]
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("python side failed:\n" + p.stderr[-4000:])
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["wall_s"] = time.perf_counter() - t
    return r


def run_java(args, optimize):
    fd, js = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    steps = args.steps if optimize or not args.no_optimize_steps else args.no_optimize_steps
    cmd = [args.sd or os.path.join(REPO, "bin", "sd"), "bench", "--model", args.model, "--steps", str(steps),
           "--runs", str(args.java_runs), "--warmup", str(args.java_warmup), "--concurrency", "1",
           "--threads", str(args.threads), "--json", js]
    if args.height:
        cmd += ["--height", str(args.height), "--width", str(args.width)]
    if not optimize:
        cmd.append("--no-optimize")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("bin/sd bench failed:\n" + p.stderr[-4000:])
    with open(js) as f:
        r = json.load(f)
    os.remove(js)
    row = r["rows"][0]
    return {"s_per_step": row["secondsPerStep"], "image_s": row["p50Ms"] / 1000, "vae_decode_s": row["decodeSeconds"],
            "load_s": row["loadSeconds"], "peak_rss_bytes": row["peakRssBytes"], "weight_bytes": row["weightBytes"],
            "precision": row["precision"], "runs": row["runs"]}


def mib(b):
    return b / 1048576.0


def table(py, javas, steps):
    te = min(py["text_encoder_s"])
    unet = min(py["unet_step_s"])
    vae = min(py["vae_decode_s"])
    py_image = te + steps * unet + vae
    weights = javas[0][1]["weight_bytes"]
    head = "| | Python torch %s |" % py["torch"] + "".join(" JVM %s | ratio |" % n for n, _ in javas)
    lines = [head, "|---|---:|" + "---:|---:|" * len(javas)]

    def row(label, pv, key, fmt="%.2f", ratio=True):
        s = "| %s | %s |" % (label, fmt % pv if pv is not None else "-")
        for _, j in javas:
            v = j[key]
            s += " %s | %s |" % (fmt % v, ("%.2fx" % (pv / v)) if ratio and pv and v else "")
        lines.append(s)

    row("UNet CFG step (batch 2), s", unet, "s_per_step")
    row("VAE decode, s", vae, "vae_decode_s")
    row("%d-step image, s (Python: estimate)" % steps, py_image, "image_s")
    row("load, s", py["load_s"], "load_s")
    row("peak RSS, MiB", mib(py["peak_rss_bytes"]), "peak_rss_mib", "%.0f", ratio=False)
    lines.append("| peak RSS / weights (%.0f MiB) | %.2f |" % (mib(weights), py["peak_rss_bytes"] / weights)
                 + "".join(" %.2f | |" % (j["peak_rss_bytes"] / weights) for _, j in javas))
    return "\n".join(lines), {"python_image_estimate_s": py_image}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory (AWS sd2_512_root layout, CPU-traced)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads on both sides")
    ap.add_argument("--steps", type=int, default=20, help="steps of the JVM's image (default %(default)s)")
    ap.add_argument("--height", type=int, help="image height (default: the model's)")
    ap.add_argument("--width", type=int, help="image width (default: the model's)")
    ap.add_argument("--repeat", type=int, default=1, help="repetitions of the Python/JVM pair")
    ap.add_argument("--python-unet-runs", type=int, default=1, help="timed UNet CFG steps in Python")
    ap.add_argument("--python-vae-runs", type=int, default=1, help="timed VAE decodes in Python")
    ap.add_argument("--java-runs", type=int, default=1, help="bin/sd bench --runs")
    ap.add_argument("--java-warmup", type=int, default=0, help="bin/sd bench --warmup (load already warms up)")
    ap.add_argument("--java-no-optimize", action="store_true", help="also run the JVM with --no-optimize")
    ap.add_argument("--no-optimize-steps", type=int, help="steps of the --no-optimize JVM run (default: --steps; "
                    "bf16 as traced on a CPU without bf16 instructions takes minutes per step)")
    ap.add_argument("--sd", help="the sd launcher to run (default: bin/sd of this checkout)")
    ap.add_argument("--skip-python", action="store_true", help="JVM only (no ratios)")
    ap.add_argument("--skip-java", action="store_true", help="Python only (no ratios)")
    ap.add_argument("--json", help="write all results to this file")
    ap.add_argument("--python-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.python_child:
        python_child(args)
        return
    if (args.height is None) != (args.width is None):
        sys.exit("give both --height and --width, or neither")
    if not shutil.which("java"):
        sys.exit("java not found on PATH")
    flags = cpu_flags()
    hw = {"cpu": cpu_model(), "cpus": os.cpu_count(),
          "bf16_instructions": sorted(flags & {"avx512_bf16", "amx_bf16"}),
          "avx512": "avx512f" in flags, "avx2": "avx2" in flags, "python": platform.python_version()}
    print("Hardware: %(cpu)s, %(cpus)d CPUs, AVX2 %(avx2)s, AVX-512 %(avx512)s, bf16 instructions %(bf16_instructions)s"
          % hw, flush=True)
    results = []
    for rep in range(args.repeat):
        entry = {"repetition": rep + 1}
        if not args.skip_python:
            entry["load_before_python"] = loadavg()
            print("[%d] Python torch (load average %.2f) ..." % (rep + 1, entry["load_before_python"]), flush=True)
            entry["python"] = run_python(args)
        javas = []
        for optimize in [] if args.skip_java else ([True, False] if args.java_no_optimize else [True]):
            name = "optimized" if optimize else "--no-optimize"
            key = "load_before_java_" + ("opt" if optimize else "noopt")
            entry[key] = loadavg()
            print("[%d] JVM %s (load average %.2f) ..." % (rep + 1, name, entry[key]), flush=True)
            j = run_java(args, optimize)
            j["peak_rss_mib"] = mib(j["peak_rss_bytes"])
            entry["java_" + ("opt" if optimize else "noopt")] = j
            javas.append((name, j))
        entry["load_after"] = loadavg()
        if "python" in entry and not javas:
            print(json.dumps(entry["python"], indent=1), flush=True)
        elif "python" in entry:
            text, extra = table(entry["python"], javas, args.steps)
            entry.update(extra)
            print("\nRepetition %d (threads %d, load average before Python %.2f, after %.2f):\n%s\n"
                  % (rep + 1, args.threads, entry["load_before_python"], entry["load_after"], text), flush=True)
        else:
            print(json.dumps(javas, indent=1), flush=True)
        results.append(entry)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"hardware": hw, "args": vars(args), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
