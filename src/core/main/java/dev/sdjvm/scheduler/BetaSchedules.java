package dev.sdjvm.scheduler;

import java.util.List;

/**
 * The training noise schedule of diffusers' schedulers: {@code betas} for a {@code beta_schedule} (or
 * {@code trained_betas}), {@code alphas_cumprod} and the training sigmas, computed with the same float32/float64 steps
 * as torch 1.13 on CPU: {@code torch.linspace} (its AVX2 kernel: vector bases with fused multiply-add) and
 * {@code torch.cumprod} (double accumulator).
 */
final class BetaSchedules {
    static final List<String> BETA_SCHEDULES = List.of("linear", "scaled_linear", "squaredcos_cap_v2");

    private BetaSchedules() {
    }

    /** {@code torch.linspace(start, end, n, dtype=torch.float32)} as the CPU AVX2 kernel computes it. */
    static float[] torchLinspaceF32(double start, double end, int n) {
        float[] out = new float[n];
        if (n == 0) {
            return out;
        }
        float s = (float) start;
        float e = (float) end;
        if (n == 1) {
            out[0] = s;
            return out;
        }
        float step = (e - s) / (float) (n - 1);
        int halfway = n / 2;
        final int vec = 8; // Vectorized<float>::size() for AVX2
        int i = 0;
        // cpu_serial_kernel_vec: pairs of vectors, then a scalar tail
        for (; i + 2 * vec <= n; i += 2 * vec) {
            for (int c = 0; c < 2; c++) {
                int idx = i + c * vec;
                float base = idx < halfway ? Math.fma(step, (float) idx, s) : Math.fma(-step, (float) (n - idx - 1), e);
                for (int k = 0; k < vec; k++) {
                    out[idx + k] = base + (float) k * step;
                }
            }
        }
        for (; i < n; i++) {
            out[i] = i < halfway ? Math.fma(step, (float) i, s) : Math.fma(-step, (float) (n - i - 1), e);
        }
        return out;
    }

    /** diffusers' betas for {@code beta_schedule} (or {@code trained_betas}), float32. */
    static float[] betas(String schedule, double betaStart, double betaEnd, int numTrainTimesteps, double[] trainedBetas,
            String className) {
        if (trainedBetas != null) {
            float[] b = new float[trainedBetas.length];
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) trainedBetas[i];
            }
            return b;
        }
        switch (schedule) {
            case "linear":
                return torchLinspaceF32(betaStart, betaEnd, numTrainTimesteps);
            case "scaled_linear": {
                float[] b = torchLinspaceF32(Math.sqrt(betaStart), Math.sqrt(betaEnd), numTrainTimesteps);
                for (int i = 0; i < b.length; i++) {
                    b[i] = b[i] * b[i];
                }
                return b;
            }
            case "squaredcos_cap_v2":
                return betasForAlphaBarCosine(numTrainTimesteps, 0.999);
            default:
                throw new SchedulerConfigException("beta_schedule",
                        "'" + schedule + "' is not implemented for " + className + "; use one of " + BETA_SCHEDULES);
        }
    }

    /** {@code betas_for_alpha_bar(n, max_beta, "cosine")}: computed in float64, stored as float32. */
    static float[] betasForAlphaBarCosine(int n, double maxBeta) {
        float[] b = new float[n];
        for (int i = 0; i < n; i++) {
            double t1 = (double) i / n;
            double t2 = (double) (i + 1) / n;
            b[i] = (float) Math.min(1 - alphaBarCos(t2) / alphaBarCos(t1), maxBeta);
        }
        return b;
    }

    private static double alphaBarCos(double t) {
        double c = Math.cos((t + 0.008) / 1.008 * Math.PI / 2);
        return c * c;
    }

    /** {@code torch.cumprod(1 - betas)} in float32 with torch's double accumulator. */
    static float[] alphasCumprod(float[] betas) {
        float[] ac = new float[betas.length];
        double acc = 1.0;
        for (int i = 0; i < betas.length; i++) {
            acc *= (double) (1.0f - betas[i]);
            ac[i] = (float) acc;
        }
        return ac;
    }

    /**
     * The float32 training {@code alphas_cumprod} of a config's beta schedule (or {@code trained_betas}), with
     * {@code rescale_zero_terminal_snr} applied to the betas first when {@code rescaleZeroSnr}.
     */
    static float[] trainingAlphasCumprod(BetaScheduleConfig c, boolean rescaleZeroSnr, String className) {
        float[] betas = betas(c.betaSchedule(), c.betaStart(), c.betaEnd(), c.numTrainTimesteps(), c.trainedBetas(),
                className);
        if (rescaleZeroSnr) {
            betas = rescaleZeroTerminalSnr(betas);
        }
        return alphasCumprod(betas);
    }

    /** {@code rescale_zero_terminal_snr(betas)} (arXiv 2305.08891 Algorithm 1) in float32 torch ops. */
    static float[] rescaleZeroTerminalSnr(float[] betas) {
        int n = betas.length;
        float[] ac = alphasCumprod(betas);
        float[] sqrt = new float[n];
        for (int i = 0; i < n; i++) {
            sqrt[i] = (float) Math.sqrt(ac[i]);
        }
        float a0 = sqrt[0];
        float aT = sqrt[n - 1];
        float scale = a0 / (a0 - aT);
        float[] bar = new float[n];
        for (int i = 0; i < n; i++) {
            float v = (sqrt[i] - aT) * scale;
            bar[i] = v * v;
        }
        float[] out = new float[n];
        out[0] = 1.0f - bar[0];
        for (int i = 1; i < n; i++) {
            out[i] = 1.0f - bar[i] / bar[i - 1];
        }
        return out;
    }

    /** {@code ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5} in float32. */
    static float[] sigmasFromAlphasCumprod(float[] ac) {
        float[] s = new float[ac.length];
        for (int i = 0; i < ac.length; i++) {
            s[i] = (float) Math.sqrt((1.0f - ac[i]) / ac[i]);
        }
        return s;
    }
}
