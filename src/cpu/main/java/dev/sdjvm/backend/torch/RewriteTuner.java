package dev.sdjvm.backend.torch;

import dev.sdjvm.model.DType;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Chooses the rewrites of one artifact by measurement: every rewrite must earn its place on the CPU it runs on, and
 * every variant must compute what the artifact computes.
 *
 * <p>Variants are timed side by side by a {@link Trial} (each a load with those rewrites, one warm call, then calls of
 * the variants interleaved on the artifact's real input shapes, the fastest of each counted), and each output is
 * compared with a reference variant's. The reference is
 * the graph as traced for a float32 artifact and float32 compute ({@link Rewrite#FLOAT32_COMPUTE}) for a bfloat16 or
 * float16 one: libtorch's low-precision kernels are not always right (measured with libtorch 2.10 on an AMD Zen 5:
 * a bfloat16 convolution with fewer than 16 output channels in the default layout is off by 20-90%, as SD's
 * {@code conv_out} is; the channels-last kernel is right). A variant whose output is further from the reference than
 * {@link #tolerance} is rejected, however fast.
 *
 * <p>For a low-precision artifact the compute dtype is chosen first: float32 compute (the reference) against the
 * graph as traced, or, where that is wrong, as traced with channels-last convolutions. Then, greedily, each remaining
 * candidate is added to the best set so far, measured side by side with it, and kept only if it is faster by more than
 * {@link #MARGIN}: linear as convolution (where linear layers compute in float32), channels-last, fused attention, and
 * for low-precision compute fused attention in float32. Ties keep the incumbent, so the result is never slower than
 * the graph it started from by more than the measurement's noise.
 *
 * <p>A bfloat16 artifact first goes through a kernel screen ({@link Screen}): where libtorch's bfloat16 convolution and
 * matmul are many times slower than their float32 form (scalar fallbacks on CPUs without bfloat16 instructions),
 * timing the traced graph would take minutes, and only float32-compute variants are timed.
 */
final class RewriteTuner {
    /** A rewrite is kept only if it makes the module at least this much faster (5%). */
    static final double MARGIN = 0.05;

    /**
     * What one variant measured.
     *
     * @param seconds seconds per call
     * @param error   max |output - reference| / max |reference|
     * @param inert   a rewrite of the variant found nothing to change in this graph (such a variant is never chosen:
     *                its timing is noise)
     */
    record Measurement(double seconds, double error, boolean inert) {
        Measurement(double seconds, double error) {
            this(seconds, error, false);
        }
    }

    /**
     * Times variants side by side and compares their outputs with the reference's. The first variant of the first
     * round a {@link #decide} measures is the reference (its error is 0).
     */
    interface Trial {
        /**
         * Measures the variants in one round: calls interleaved, so that they are timed under the same conditions.
         *
         * @return per variant: seconds per call, and max |output - reference| / max |reference|
         */
        List<Measurement> measure(List<? extends Set<Rewrite>> variants);

        /** A hint: only {@code keep} will be measured again (other loaded variants may be freed). */
        default void retain(Set<Rewrite> keep) {
        }
    }

    /** What the kernel screen found about bfloat16 on this CPU. */
    enum Screen {
        /** bfloat16 kernels are many times slower than float32 ones: compute in float32, don't time the traced graph. */
        BF16_EMULATED,
        /** bfloat16 kernels are not many times slower: low-precision compute is timed on the module. */
        BF16_USABLE,
        /** Not a bfloat16/float16 module (nothing to screen). */
        NOT_APPLICABLE
    }

    /**
     * The chosen rewrites and every measurement taken.
     *
     * @param rewrites the rewrites to make
     * @param timings  seconds per call of each variant timed, keyed by {@link Rewrite#describe}, in the order measured
     * @param errors   each variant's relative error against the reference (max |out - ref| / max |ref|)
     * @param rejected variants rejected as wrong (error above {@link #tolerance}), with their error
     * @param how      "measured", "cached", or "all" (unmeasured)
     * @param rounds   the side-by-side rounds, one line each ({@code none 3.35 s | channels_last 3.10 s})
     */
    record Decision(Set<Rewrite> rewrites, Map<String, Double> timings, Map<String, Double> errors,
                    Map<String, Double> rejected, String how, List<String> rounds) {
        Decision {
            rounds = List.copyOf(rounds);
            rewrites = Collections.unmodifiableSet(rewrites.isEmpty() ? EnumSet.noneOf(Rewrite.class)
                    : EnumSet.copyOf(rewrites));
            timings = Collections.unmodifiableMap(new LinkedHashMap<>(timings));
            errors = Collections.unmodifiableMap(new LinkedHashMap<>(errors));
            rejected = Collections.unmodifiableMap(new LinkedHashMap<>(rejected));
        }

        /** {@return the speed-up of the chosen variant over the graph as traced (or the first variant timed), or NaN} */
        double speedup() {
            if (timings.isEmpty()) {
                return Double.NaN;
            }
            Double base = timings.get("none");
            double first = base != null ? base : timings.values().iterator().next();
            Double chosen = timings.get(Rewrite.describe(rewrites));
            return chosen == null ? Double.NaN : first / chosen;
        }

        @Override
        public String toString() {
            StringBuilder sb = new StringBuilder(Rewrite.describe(rewrites)).append(" (").append(how);
            if (!rounds.isEmpty()) {
                sb.append(": ").append(String.join("; ", rounds));
            }
            return sb.append(")").toString();
        }
    }

    private RewriteTuner() {
    }

    /** The largest relative error against the reference that a variant may have. */
    static double tolerance(DType dtype) {
        // bfloat16 keeps 8 bits of mantissa: a whole module in bf16 against float32 compute measured 0.4-2% on the
        // fixtures and SD 2.1-base; the wrong kernels seen give 20-90%. float32 rewrites differ by summation order.
        return dtype == DType.FLOAT32 ? 1e-3 : 0.08;
    }

    /**
     * Decides the rewrites of a module of this dtype.
     *
     * @param dtype  the module's floating-point dtype
     * @param screen the kernel screen's verdict (bfloat16/float16 modules), else {@link Screen#NOT_APPLICABLE}
     * @param trial  measures a variant; the first one asked for is the reference
     */
    static Decision decide(DType dtype, Screen screen, Trial trial) {
        Set<Rewrite> applicable = TorchOptimizer.applicable(dtype);
        Run run = new Run(trial, tolerance(dtype));
        boolean lowPrecision = dtype == DType.BFLOAT16 || dtype == DType.FLOAT16;
        EnumSet<Rewrite> none = EnumSet.noneOf(Rewrite.class);
        EnumSet<Rewrite> best;
        if (lowPrecision) {
            EnumSet<Rewrite> reference = EnumSet.of(Rewrite.FLOAT32_COMPUTE);
            best = reference;
            if (screen == Screen.BF16_EMULATED) {
                run.round(List.of(reference));
            } else {
                // the low-precision graph: as traced, or with channels-last where the traced one is wrong
                double[] t = run.round(List.of(reference, none));
                EnumSet<Rewrite> low = none;
                if (Double.isInfinite(t[1])) {
                    low = EnumSet.of(Rewrite.CHANNELS_LAST);
                    t = run.round(List.of(reference, low));
                }
                if (t[1] < t[0] * (1 - MARGIN)) {
                    best = low;
                }
            }
        } else {
            best = none;
            run.round(List.of(none));  // the reference: as traced
        }
        trial.retain(best);
        boolean float32Linear = dtype == DType.FLOAT32 || best.contains(Rewrite.FLOAT32_COMPUTE);
        if (float32Linear && applicable.contains(Rewrite.LINEAR_AS_CONV)) {
            best = run.challenge(best, Rewrite.LINEAR_AS_CONV);
        }
        if (!best.contains(Rewrite.CHANNELS_LAST)) {
            best = run.challenge(best, Rewrite.CHANNELS_LAST);
        }
        best = run.challenge(best, Rewrite.FUSED_ATTENTION);
        if (lowPrecision && !best.contains(Rewrite.FLOAT32_COMPUTE)) {
            // with float32 compute both forms are the same; else the float32 form challenges (or replaces) the other
            best = run.challenge(best, Rewrite.FUSED_ATTENTION_FLOAT32);
        }
        trial.retain(Set.of());
        return new Decision(best, run.timings, run.errors, run.rejected, "measured", run.rounds);
    }

    /** The measurements of one decision. */
    private static final class Run {
        final Trial trial;
        final double tolerance;
        final Map<String, Double> timings = new LinkedHashMap<>();
        final Map<String, Double> errors = new LinkedHashMap<>();
        final Map<String, Double> rejected = new LinkedHashMap<>();
        final List<String> rounds = new ArrayList<>();

        Run(Trial trial, double tolerance) {
            this.trial = trial;
            this.tolerance = tolerance;
        }

        /**
         * Measures the variants together (interleaved, so that a change of machine load hits all alike); returns each
         * one's seconds per call, +infinity for a wrong or inert one.
         */
        double[] round(List<? extends Set<Rewrite>> variants) {
            List<Measurement> ms = trial.measure(variants);
            double[] out = new double[variants.size()];
            for (int i = 0; i < out.length; i++) {
                Measurement m = ms.get(i);
                double t = m.seconds();
                if (!(t >= 0) || Double.isInfinite(t)) {
                    throw new IllegalStateException("trial of " + Rewrite.describe(variants.get(i)) + " gave " + t + " s");
                }
                String k = Rewrite.describe(variants.get(i));
                timings.put(k, t);
                errors.put(k, m.error());
                if (m.inert()) {
                    out[i] = Double.POSITIVE_INFINITY;
                } else if (!(m.error() <= tolerance)) {  // NaN too
                    rejected.put(k, m.error());
                    out[i] = Double.POSITIVE_INFINITY;
                } else {
                    out[i] = t;
                }
            }
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < out.length; i++) {
                String k = Rewrite.describe(variants.get(i));
                line.append(i == 0 ? "" : " | ").append(String.format("%s %.3f s", k, ms.get(i).seconds()));
                if (ms.get(i).inert()) {
                    line.append(" [changes nothing]");
                } else if (rejected.containsKey(k)) {
                    line.append(String.format(" [wrong: error %.2g]", rejected.get(k)));
                } else if (ms.get(i).error() > 0) {
                    line.append(String.format(" [error %.2g]", ms.get(i).error()));
                }
            }
            rounds.add(line.toString());
            return out;
        }

        /** {@code best} with {@code r} added if that is right and faster by the margin, measured side by side. */
        EnumSet<Rewrite> challenge(EnumSet<Rewrite> best, Rewrite r) {
            EnumSet<Rewrite> v = EnumSet.noneOf(Rewrite.class);
            v.addAll(best);
            if (r == Rewrite.FUSED_ATTENTION_FLOAT32) {
                v.remove(Rewrite.FUSED_ATTENTION);  // one attention form at a time
            }
            v.add(r);
            double[] t = round(List.of(best, v));
            EnumSet<Rewrite> winner = t[1] < t[0] * (1 - MARGIN) ? v : best;
            trial.retain(winner);
            return winner;
        }
    }

    /** Every applicable rewrite, unmeasured (as the optimizer did before it measured). */
    static Decision all(DType dtype, boolean float32Compute) {
        EnumSet<Rewrite> s = EnumSet.noneOf(Rewrite.class);
        s.addAll(TorchOptimizer.applicable(dtype));
        s.remove(Rewrite.FUSED_ATTENTION_FLOAT32);
        if (!float32Compute) {
            s.remove(Rewrite.FLOAT32_COMPUTE);
        }
        return new Decision(s, Map.of(), Map.of(), Map.of(), "all", List.of());
    }

    /**
     * The screen's verdict from the time of the same kernels in bfloat16 and in float32 compute.
     *
     * @param bf16    seconds for the bfloat16 kernels
     * @param float32 seconds for the same kernels computed in float32 (with the casts)
     */
    static Screen screen(double bf16, double float32) {
        return bf16 / float32 > 3 ? Screen.BF16_EMULATED : Screen.BF16_USABLE;
    }
}
