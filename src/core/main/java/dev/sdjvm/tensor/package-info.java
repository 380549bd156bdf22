/**
 * Tensor-level numeric utilities that must agree bit for bit with PyTorch on the CPU:
 * {@link dev.sdjvm.tensor.Bf16} (float32 &lt;-&gt; bfloat16 conversion with torch's rounding) and
 * {@link dev.sdjvm.tensor.TorchGenerator} (torch's CPU {@code manual_seed} + {@code randn}).
 */
package dev.sdjvm.tensor;
