package dev.sdjvm.backend.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.model.DType;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The decision logic of {@link RewriteTuner} with stub timings (no libtorch): a rewrite that measures slower, or not
 * faster by the margin, is never applied.
 */
class RewriteTunerTest {
    /**
     * A stub trial: the time of a variant is a base time times one factor per rewrite in it; a variant is wrong (error
     * 0.5) when {@code wrong} says so, else its error is 0.01. Records the calls.
     */
    private static final class Stub implements RewriteTuner.Trial {
        final double base;
        final Map<Rewrite, Double> factor;
        final java.util.function.Predicate<Set<Rewrite>> wrong;
        final List<Set<Rewrite>> calls = new ArrayList<>();

        Stub(double base, Map<Rewrite, Double> factor) {
            this(base, factor, v -> false);
        }

        Stub(double base, Map<Rewrite, Double> factor, java.util.function.Predicate<Set<Rewrite>> wrong) {
            this.base = base;
            this.factor = factor;
            this.wrong = wrong;
        }

        @Override
        public List<RewriteTuner.Measurement> measure(List<? extends Set<Rewrite>> variants) {
            List<RewriteTuner.Measurement> out = new ArrayList<>();
            for (Set<Rewrite> rewrites : variants) {
                EnumSet<Rewrite> v = EnumSet.noneOf(Rewrite.class);
                v.addAll(rewrites);
                calls.add(v);
                double t = base;
                for (Rewrite r : rewrites) {
                    t *= factor.getOrDefault(r, 1.0);
                }
                out.add(new RewriteTuner.Measurement(t, calls.size() == 1 ? 0 : wrong.test(v) ? 0.5 : 1e-4));
            }
            return out;
        }
    }

    @Test
    void aBf16CpuWhereFusedAttentionLosesKeepsTheTracedAttention() {
        // the Zen 4 case: fused attention 2x slower in bf16, channels-last a little faster
        Stub s = new Stub(6.7, Map.of(Rewrite.FUSED_ATTENTION, 2.0, Rewrite.FUSED_ATTENTION_FLOAT32, 1.3,
                Rewrite.CHANNELS_LAST, 0.9, Rewrite.FLOAT32_COMPUTE, 1.5));
        var d = RewriteTuner.decide(DType.BFLOAT16, RewriteTuner.Screen.BF16_USABLE, s);
        assertEquals(EnumSet.of(Rewrite.CHANNELS_LAST), d.rewrites(), d.toString());
        assertEquals(EnumSet.of(Rewrite.FLOAT32_COMPUTE), s.calls.get(0), "float32 compute is the reference");
        assertEquals(EnumSet.noneOf(Rewrite.class), s.calls.get(1), "then the graph as traced");
        assertTrue(d.timings().get("channels_last") < d.timings().get("none"));
        assertEquals(1 / 0.9, d.speedup(), 1e-9);
    }

    @Test
    void nothingSlowerIsEverKept() {
        Stub s = new Stub(1.0, Map.of(Rewrite.FUSED_ATTENTION, 1.2, Rewrite.CHANNELS_LAST, 1.01,
                Rewrite.LINEAR_AS_CONV, 3.0));
        var d = RewriteTuner.decide(DType.FLOAT32, RewriteTuner.Screen.NOT_APPLICABLE, s);
        assertEquals(Set.of(), d.rewrites(), d.toString());
        for (double t : d.timings().values()) {
            assertTrue(t >= d.timings().get("none"));
        }
    }

    @Test
    void aGainInsideTheMarginIsNoGain() {
        Stub s = new Stub(1.0, Map.of(Rewrite.CHANNELS_LAST, 0.97, Rewrite.FUSED_ATTENTION, 0.96));
        var d = RewriteTuner.decide(DType.FLOAT32, RewriteTuner.Screen.NOT_APPLICABLE, s);
        assertEquals(Set.of(), d.rewrites(), "3-4% is within the 5% margin: " + d);
    }

    @Test
    void gainsCombineGreedily() {
        Stub s = new Stub(10, Map.of(Rewrite.LINEAR_AS_CONV, 0.8, Rewrite.CHANNELS_LAST, 0.7, Rewrite.FUSED_ATTENTION, 0.5));
        var d = RewriteTuner.decide(DType.FLOAT32, RewriteTuner.Screen.NOT_APPLICABLE, s);
        assertEquals(EnumSet.of(Rewrite.LINEAR_AS_CONV, Rewrite.CHANNELS_LAST, Rewrite.FUSED_ATTENTION), d.rewrites());
        assertEquals(10 * 0.8 * 0.7 * 0.5, d.timings().get("linear_as_conv+channels_last+fused_attention"), 1e-9);
        assertFalse(d.rewrites().contains(Rewrite.FUSED_ATTENTION_FLOAT32), "not applicable to float32 graphs");
    }

    @Test
    void anEmulatedBf16CpuComputesInFloat32WithoutTimingTheTracedGraph() {
        Stub s = new Stub(700, Map.of(Rewrite.FLOAT32_COMPUTE, 0.02, Rewrite.LINEAR_AS_CONV, 0.9,
                Rewrite.FUSED_ATTENTION, 0.8));
        var d = RewriteTuner.decide(DType.BFLOAT16, RewriteTuner.Screen.BF16_EMULATED, s);
        assertTrue(d.rewrites().contains(Rewrite.FLOAT32_COMPUTE));
        assertTrue(d.rewrites().contains(Rewrite.LINEAR_AS_CONV), "linear layers compute in float32 there");
        assertFalse(s.calls.contains(EnumSet.noneOf(Rewrite.class)), "the minutes-long traced bf16 graph is not run");
        assertFalse(s.calls.stream().anyMatch(c -> c.contains(Rewrite.FUSED_ATTENTION_FLOAT32)),
                "with float32 compute both attention forms are the same");
    }

    @Test
    void bf16ComputeIsKeptOnlyWhenClearlyFaster() {
        Stub slower = new Stub(5, Map.of(Rewrite.FLOAT32_COMPUTE, 0.97));
        var d = RewriteTuner.decide(DType.BFLOAT16, RewriteTuner.Screen.BF16_USABLE, slower);
        assertTrue(d.rewrites().contains(Rewrite.FLOAT32_COMPUTE), "bf16 only 3% faster: " + d);
        assertTrue(slower.calls.stream().anyMatch(c -> c.contains(Rewrite.LINEAR_AS_CONV)),
                "linear layers compute in float32: linear as convolution is tried");
        Stub faster = new Stub(5, Map.of(Rewrite.FLOAT32_COMPUTE, 1.6));
        var d2 = RewriteTuner.decide(DType.BFLOAT16, RewriteTuner.Screen.BF16_USABLE, faster);
        assertFalse(d2.rewrites().contains(Rewrite.FLOAT32_COMPUTE), d2.toString());
        assertFalse(faster.calls.stream().anyMatch(c -> c.contains(Rewrite.LINEAR_AS_CONV)),
                "linear as convolution is only tried where linear layers compute in float32");
    }

    @Test
    void aWrongVariantIsRejectedHoweverFast() {
        // the Zen 5 case: the traced bf16 graph is fast but wrong (its bf16 conv_out), channels-last makes it right
        Stub s = new Stub(3, Map.of(Rewrite.FLOAT32_COMPUTE, 1.5, Rewrite.CHANNELS_LAST, 1.02,
                Rewrite.FUSED_ATTENTION, 0.5), v -> !v.contains(Rewrite.FLOAT32_COMPUTE) && !v.contains(Rewrite.CHANNELS_LAST));
        var d = RewriteTuner.decide(DType.BFLOAT16, RewriteTuner.Screen.BF16_USABLE, s);
        assertEquals(EnumSet.of(Rewrite.CHANNELS_LAST, Rewrite.FUSED_ATTENTION), d.rewrites(), d.toString());
        assertTrue(d.rejected().containsKey("none"), d.toString());
        assertFalse(d.rejected().containsKey("channels_last"));
        // and when every low-precision form is wrong, float32 compute stays
        Stub all = new Stub(3, Map.of(Rewrite.FLOAT32_COMPUTE, 1.5), v -> !v.contains(Rewrite.FLOAT32_COMPUTE));
        var d2 = RewriteTuner.decide(DType.BFLOAT16, RewriteTuner.Screen.BF16_USABLE, all);
        assertTrue(d2.rewrites().contains(Rewrite.FLOAT32_COMPUTE), d2.toString());
        // a wrong rewrite of a float32 graph is not kept either
        Stub f32 = new Stub(3, Map.of(Rewrite.FUSED_ATTENTION, 0.5), v -> v.contains(Rewrite.FUSED_ATTENTION));
        assertFalse(RewriteTuner.decide(DType.FLOAT32, RewriteTuner.Screen.NOT_APPLICABLE, f32).rewrites()
                .contains(Rewrite.FUSED_ATTENTION));
    }

    @Test
    void theFastestAttentionFormWins() {
        Stub s = new Stub(4, Map.of(Rewrite.FUSED_ATTENTION, 0.9, Rewrite.FUSED_ATTENTION_FLOAT32, 0.7,
                Rewrite.FLOAT32_COMPUTE, 2.0));
        var d = RewriteTuner.decide(DType.BFLOAT16, RewriteTuner.Screen.BF16_USABLE, s);
        assertEquals(EnumSet.of(Rewrite.FUSED_ATTENTION_FLOAT32), d.rewrites(), d.toString());
    }

    @Test
    void theScreenNeedsAClearRatio() {
        assertEquals(RewriteTuner.Screen.BF16_EMULATED, RewriteTuner.screen(0.30, 0.002));  // Zen 3: ~150x
        assertEquals(RewriteTuner.Screen.BF16_USABLE, RewriteTuner.screen(0.001, 0.004));
        assertEquals(RewriteTuner.Screen.BF16_USABLE, RewriteTuner.screen(0.005, 0.002));
    }

    @Test
    void relativeErrorCatchesNonFiniteAndShapeChanges() {
        assertEquals(0.5, CpuTuning.relativeError(new float[] {1, 1.5f}, new float[] {1, 1}), 1e-12);
        assertEquals(Double.POSITIVE_INFINITY, CpuTuning.relativeError(new float[] {Float.NaN, 1}, new float[] {1, 1}));
        assertEquals(Double.POSITIVE_INFINITY, CpuTuning.relativeError(new float[] {1}, new float[] {1, 1}));
    }

    @Test
    void rewriteSetsRoundTripThroughTheirCachedForm() {
        var s = EnumSet.of(Rewrite.CHANNELS_LAST, Rewrite.FUSED_ATTENTION_FLOAT32);
        assertEquals("channels_last+fused_attention_float32", Rewrite.describe(s));
        assertEquals(s, Rewrite.parse(Rewrite.describe(s)));
        assertEquals(Set.of(), Rewrite.parse("none"));
    }
}
