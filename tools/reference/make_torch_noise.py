# Produces torch_randn_seed0_10x4x3x8x8.f32: the noise diffusers' EulerAncestralDiscreteSchedulerTest.full_loop
# draws on CPU (generator = torch.manual_seed(0); each step randn_tensor((4,3,8,8), generator=generator,
# dtype=float32) = torch.randn(shape, generator=generator)), 10 steps, little-endian float32, row-major.
# Run with Debian's python3 (torch 1.13.0a0), from any directory (it writes into src/core/test/resources/scheduler/):
#   /usr/bin/python3 tools/reference/make_torch_noise.py
import numpy as np
import torch
import os
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "core", "test", "resources", "scheduler",
                   "torch_randn_seed0_10x4x3x8x8.f32")  # the test resource, wherever the script is run from

g = torch.manual_seed(0)
draws = [torch.randn((4, 3, 8, 8), generator=g, dtype=torch.float32) for _ in range(10)]
np.concatenate([d.numpy().reshape(-1) for d in draws]).astype("<f4").tofile(OUT)
print(torch.__version__, draws[0].reshape(-1)[:4].tolist())
