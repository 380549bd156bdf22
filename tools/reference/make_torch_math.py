# Produces torch_exp_log_f32.bin: 6 x 4096 little-endian float32 = inputs x, torch.exp(x) (x in [-60, 60] and
# [-3, 3]), torch.log(|x| + tiny) style inputs and outputs, as computed by torch on this machine's CPU (ATen
# vectorized SLEEF kernels). Layout: xe[4096], exp(xe)[4096], xl[4096], log(xl)[4096], xm[4096], expm1(xm)[4096].
# Run with Debian's python3 (torch 1.13.0a0), from any directory (it writes into src/core/test/resources/scheduler/):
#   /usr/bin/python3 tools/reference/make_torch_math.py
import numpy as np
import torch
import os
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "core", "test", "resources", "scheduler",
                   "torch_exp_log_f32.bin")  # the test resource, wherever the script is run from

rng = np.random.default_rng(42)
xe = np.concatenate([rng.uniform(-3, 3, 2048), rng.uniform(-60, 60, 2048)]).astype(np.float32)
xl = np.concatenate([rng.uniform(1e-6, 2, 2048), np.exp(rng.uniform(-20, 5, 2048))]).astype(np.float32)
ye = torch.exp(torch.from_numpy(xe)).numpy()
yl = torch.log(torch.from_numpy(xl)).numpy()
xm = np.concatenate([rng.uniform(-3, 3, 2048), -np.exp(rng.uniform(-10, 3, 1024)),
                     np.exp(rng.uniform(-10, 3, 1024))]).astype(np.float32)
ym = torch.expm1(torch.from_numpy(xm)).numpy()
np.concatenate([xe, ye, xl, yl, xm, ym]).astype("<f4").tofile(OUT)
print(torch.__version__, int((np.exp(xe.astype(np.float64)).astype(np.float32) != ye).sum()), "exp values differ from correctly rounded")
