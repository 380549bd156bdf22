package dev.sdjvm.backend.torch;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * One graph rewrite of {@link TorchOptimizer}. Each keeps what the graph computes up to floating-point rounding; which
 * of them make a given artifact faster depends on the CPU, so {@link RewriteTuner} applies only those that measured
 * faster on this machine.
 */
enum Rewrite {
    /**
     * Each convolution, linear and matmul of a bfloat16 artifact computes in float32 (inputs cast up, result cast
     * back): for CPUs whose bfloat16 kernels are scalar fallbacks.
     */
    FLOAT32_COMPUTE,
    /** {@code linear} as a 1x1 convolution over a channels-last view (oneDNN instead of OpenBLAS); float32 only. */
    LINEAR_AS_CONV,
    /** Channels-last convolution weights and inputs. */
    CHANNELS_LAST,
    /** The traced {@code softmax(q k^T) v} as {@code scaled_dot_product_attention} in the graph's dtype. */
    FUSED_ATTENTION,
    /** As {@link #FUSED_ATTENTION}, with q, k and v cast to float32 for the fused kernel (bfloat16 artifacts). */
    FUSED_ATTENTION_FLOAT32;

    /** The lower-case name used in logs, caches and the CLI ({@code fused_attention}). */
    String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    static Rewrite ofId(String id) {
        return valueOf(id.trim().toUpperCase(Locale.ROOT));
    }

    /** {@code a+b+c}, or {@code none}. */
    static String describe(Set<Rewrite> set) {
        return set.isEmpty() ? "none" : set.stream().sorted().map(Rewrite::id).collect(Collectors.joining("+"));
    }

    /** Parses {@link #describe}'s form. */
    static EnumSet<Rewrite> parse(String s) {
        EnumSet<Rewrite> out = EnumSet.noneOf(Rewrite.class);
        if (s == null || s.isBlank() || s.trim().equals("none")) {
            return out;
        }
        for (String p : s.split("\\+")) {
            out.add(ofId(p));
        }
        return out;
    }
}
