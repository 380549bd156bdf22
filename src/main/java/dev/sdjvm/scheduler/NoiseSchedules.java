package dev.sdjvm.scheduler;

import java.util.List;

/**
 * The schedule tables of diffusers' schedulers, computed with the same float32/float64 steps as torch 1.13 / numpy
 * 1.24 on CPU: {@code torch.linspace} (its AVX2 kernel: vector bases with fused multiply-add), {@code torch.cumprod}
 * (double accumulator), numpy's {@code linspace}/{@code arange}/{@code interp}/{@code round} (half to even) and
 * diffusers' {@code _sigma_to_t} with numpy's value-based casting (float32 arrays stay float32).
 */
final class NoiseSchedules {
    static final List<String> BETA_SCHEDULES = List.of("linear", "scaled_linear", "squaredcos_cap_v2");
    static final List<String> TIMESTEP_SPACINGS = List.of("linspace", "leading", "trailing");

    private NoiseSchedules() {
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

    /**
     * The single-step schedulers' descending timesteps for {@code spacing} ({@code n} of them): linspace is
     * {@code np.linspace(0, numTrain - 1, n)[::-1]}, rounded ({@code roundLinspace}: DDIM, PNDM) or stored as float32
     * (Euler, Euler ancestral, LMS); leading {@code arange(0, n) * (numTrain // n) + steps_offset}; trailing
     * {@code round(arange(numTrain, 0, -numTrain / n)) - 1}.
     */
    static double[] spacedTimesteps(String spacing, int numTrain, int n, int stepsOffset, boolean roundLinspace) {
        return spacedTimesteps(spacing, numTrain, numTrain, n, n, stepsOffset, roundLinspace);
    }

    /**
     * The multistep solvers' (DPM-Solver, UniPC) descending timesteps: {@code n + 1} points over
     * {@code [0, lastTimestep)} of which the last (0) is dropped, linspace rounded ({@code lastTimestep} is below
     * {@code numTrain} when {@code lambda_min_clipped} clips the end of the schedule; trailing keeps the step
     * {@code numTrain / n}).
     */
    static double[] multistepTimesteps(String spacing, int numTrain, int lastTimestep, int n, int stepsOffset) {
        return spacedTimesteps(spacing, numTrain, lastTimestep, n, n + 1, stepsOffset, true);
    }

    /** The first {@code n} of {@code points} spaced timesteps over {@code [0, lastTimestep)}, descending. */
    private static double[] spacedTimesteps(String spacing, int numTrain, int lastTimestep, int n, int points,
            int stepsOffset, boolean roundLinspace) {
        double[] ts;
        switch (spacing) {
            case "linspace": {
                double[] lin = linspace(0, lastTimestep - 1, points);
                ts = new double[n];
                for (int k = 0; k < n; k++) {
                    double v = lin[points - 1 - k];
                    ts[k] = roundLinspace ? Math.rint(v) : (double) (float) v;
                }
                break;
            }
            case "leading": {
                int stepRatio = lastTimestep / points;
                ts = new double[n];
                for (int k = 0; k < n; k++) {
                    ts[k] = (double) (points - 1 - k) * stepRatio + stepsOffset;
                }
                break;
            }
            case "trailing":
                ts = trailingTimesteps(numTrain, lastTimestep, n);
                break;
            default:
                throw new SchedulerConfigException("timestep_spacing", spacing
                        + " is not supported. Please make sure to choose one of 'linspace', 'leading' or 'trailing'.");
        }
        return ts;
    }

    /** {@code np.round(np.arange(lastTimestep, 0, -numTrain / n)) - 1}. */
    private static double[] trailingTimesteps(int numTrain, int lastTimestep, int n) {
        double stepRatio = (double) numTrain / n;
        double[] ar = arange(lastTimestep, 0, -stepRatio);
        double[] ts = new double[ar.length];
        for (int k = 0; k < ar.length; k++) {
            ts[k] = Math.rint(ar[k]) - 1;
        }
        return ts;
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

    /** {@code np.log} of a float32 array (float32 result). */
    static float[] logF32(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) Math.log(x[i]);
        }
        return out;
    }

    /** {@code np.linspace(start, stop, num)} in float64. */
    static double[] linspace(double start, double stop, int num) {
        double[] y = new double[num];
        if (num == 1) {
            y[0] = start;
            return y;
        }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) {
            y[i] = i * step + start;
        }
        if (num > 0) {
            y[num - 1] = stop;
        }
        return y;
    }

    /** {@code np.arange(start, stop, step)} in float64. */
    static double[] arange(double start, double stop, double step) {
        int len = (int) Math.max(0, Math.ceil((stop - start) / step));
        double[] y = new double[len];
        for (int i = 0; i < len; i++) {
            y[i] = start + i * step;
        }
        return y;
    }

    /** {@code np.interp(x, arange(len(fp)), fp)}. */
    static double interp(double x, float[] fp) {
        int n = fp.length;
        if (x <= 0) {
            return fp[0];
        }
        if (x >= n - 1) {
            return fp[n - 1];
        }
        int j = (int) Math.floor(x);
        double frac = x - j;
        double lo = fp[j];
        double hi = fp[j + 1];
        if (frac == 0) {
            return lo;
        }
        double slope = (hi - lo); // (fp[j+1]-fp[j]) / (xp[j+1]-xp[j]) with unit spacing
        return slope * frac + lo;
    }

    /**
     * diffusers' {@code _sigma_to_t(sigma, log_sigmas)} with numpy 1.24 casting: the float64 scalar meets the
     * float32 table in float32, the interpolation weight is float32, the result float64.
     */
    static double sigmaToT(double sigma, float[] logSigmas) {
        float ls = (float) Math.log(Math.max(sigma, 1e-10));
        int n = logSigmas.length;
        int lastNonNeg = 0; // argmax of cumsum(dists >= 0): the last index with dists >= 0 (0 if none)
        for (int i = 0; i < n; i++) {
            if (ls - logSigmas[i] >= 0f) {
                lastNonNeg = i;
            }
        }
        int lowIdx = Math.min(lastNonNeg, n - 2);
        int highIdx = lowIdx + 1;
        float low = logSigmas[lowIdx];
        float high = logSigmas[highIdx];
        float w = (low - ls) / (low - high);
        w = Math.max(0f, Math.min(1f, w));
        return (double) (1f - w) * lowIdx + (double) w * highIdx;
    }

    /** Karras et al. (2022) sigmas, rho = 7, float64. */
    static double[] karras(double sigmaMin, double sigmaMax, int n) {
        double rho = 7.0;
        double[] ramp = linspace(0, 1, n);
        double minInv = Math.pow(sigmaMin, 1 / rho);
        double maxInv = Math.pow(sigmaMax, 1 / rho);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = Math.pow(maxInv + ramp[i] * (minInv - maxInv), rho);
        }
        return out;
    }

    /** Exponential sigmas: {@code exp(linspace(log(sigma_max), log(sigma_min), n))}. */
    static double[] exponential(double sigmaMin, double sigmaMax, int n) {
        double[] l = linspace(Math.log(sigmaMax), Math.log(sigmaMin), n);
        for (int i = 0; i < n; i++) {
            l[i] = Math.exp(l[i]);
        }
        return l;
    }

    /** Beta-distribution sigmas (arXiv 2407.12173): {@code sigma_min + ppf(1 - linspace(0,1,n), a, b) * (max - min)}. */
    static double[] betaSigmas(double sigmaMin, double sigmaMax, int n, double alpha, double beta) {
        double[] ts = linspace(0, 1, n);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            double p = 1 - ts[i];
            out[i] = sigmaMin + betaPpf(p, alpha, beta) * (sigmaMax - sigmaMin);
        }
        return out;
    }

    /** Lu et al. uniform-logSNR lambdas (rho = 1) between {@code lambdaMax} and {@code lambdaMin}. */
    static double[] lu(double lambdaMin, double lambdaMax, int n) {
        double[] ramp = linspace(0, 1, n);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = lambdaMax + ramp[i] * (lambdaMin - lambdaMax);
        }
        return out;
    }

    // ---- beta distribution quantile (scipy.stats.beta.ppf), float64 ----

    /** Inverse of the regularized incomplete beta function, by bisection to full double precision. */
    static double betaPpf(double p, double a, double b) {
        if (p <= 0) {
            return 0;
        }
        if (p >= 1) {
            return 1;
        }
        double lo = 0;
        double hi = 1;
        for (int it = 0; it < 200; it++) {
            double mid = 0.5 * (lo + hi);
            if (mid == lo || mid == hi) {
                break;
            }
            if (regIncBeta(mid, a, b) < p) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return 0.5 * (lo + hi);
    }

    /** Regularized incomplete beta I_x(a, b) (continued fraction, Lentz). */
    static double regIncBeta(double x, double a, double b) {
        if (x <= 0) {
            return 0;
        }
        if (x >= 1) {
            return 1;
        }
        double lbt = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
        double bt = Math.exp(lbt);
        if (x < (a + 1) / (a + b + 2)) {
            return bt * betaCf(x, a, b) / a;
        }
        return 1 - bt * betaCf(1 - x, b, a) / b;
    }

    private static double betaCf(double x, double a, double b) {
        final double tiny = 1e-300;
        double qab = a + b;
        double qap = a + 1;
        double qam = a - 1;
        double c = 1;
        double d = 1 - qab * x / qap;
        if (Math.abs(d) < tiny) {
            d = tiny;
        }
        d = 1 / d;
        double h = d;
        for (int m = 1; m <= 10000; m++) {
            int m2 = 2 * m;
            double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1 + aa * d;
            if (Math.abs(d) < tiny) {
                d = tiny;
            }
            c = 1 + aa / c;
            if (Math.abs(c) < tiny) {
                c = tiny;
            }
            d = 1 / d;
            h *= d * c;
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1 + aa * d;
            if (Math.abs(d) < tiny) {
                d = tiny;
            }
            c = 1 + aa / c;
            if (Math.abs(c) < tiny) {
                c = tiny;
            }
            d = 1 / d;
            double del = d * c;
            h *= del;
            if (Math.abs(del - 1) < 1e-16) {
                break;
            }
        }
        return h;
    }

    /** log Gamma(x) for x > 0 (Lanczos, g = 7, n = 9), about 1e-15 relative. */
    static double logGamma(double x) {
        final double[] c = {0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7};
        if (x < 0.5) {
            return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
        }
        x -= 1;
        double a = c[0];
        double t = x + 7.5;
        for (int i = 1; i < 9; i++) {
            a += c[i] / (x + i);
        }
        return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
    }

    /** Index of {@code timestep} in {@code timesteps} as diffusers' {@code index_for_timestep}: the second match if
     *  there are several, the last index if none. */
    static int indexForTimestep(double[] timesteps, double timestep) {
        int first = -1;
        for (int i = 0; i < timesteps.length; i++) {
            if (timesteps[i] == timestep) {
                if (first >= 0) {
                    return i;
                }
                first = i;
            }
        }
        return first >= 0 ? first : timesteps.length - 1;
    }

    /** Rejects a non-positive step count (diffusers would fail later with an index error). */
    static void checkSteps(int numInferenceSteps, String className) {
        if (numInferenceSteps < 1) {
            throw new dev.sdjvm.InvalidRequestException("num_inference_steps",
                    "must be at least 1, got " + numInferenceSteps + " (" + className + ")");
        }
    }

    /** diffusers' DDIM/Euler check: no more inference steps than training timesteps. */
    static void checkNotAboveTrain(int numInferenceSteps, int numTrainTimesteps, String className) {
        if (numInferenceSteps > numTrainTimesteps) {
            throw new dev.sdjvm.InvalidRequestException("num_inference_steps", "`num_inference_steps`: "
                    + numInferenceSteps + " cannot be larger than `num_train_timesteps`: " + numTrainTimesteps
                    + " as the unet model trained with this scheduler can only handle maximal " + numTrainTimesteps
                    + " timesteps (" + className + ")");
        }
    }

    /**
     * diffusers' {@code _threshold_sample}, in place: per sample, s = clamp(quantile(|x|, ratio), 1, maxValue)
     * (torch.quantile's linear interpolation in float32), then x = clamp(x, -s, s) / s. {@code sortBuf} holds at
     * least one sample.
     */
    static void threshold(float[] x, int batchSize, float ratio, float maxValue, float[] sortBuf) {
        int len = x.length;
        if (len % batchSize != 0) {
            throw new IllegalArgumentException("sample length " + len + " is not a multiple of batch size " + batchSize);
        }
        int per = len / batchSize;
        for (int b = 0; b < batchSize; b++) {
            int off = b * per;
            for (int i = 0; i < per; i++) {
                sortBuf[i] = Math.abs(x[off + i]);
            }
            java.util.Arrays.sort(sortBuf, 0, per);
            float rank = ratio * (float) (per - 1);
            int below = (int) rank;
            int above = (int) Math.ceil(rank);
            float w = rank - below;
            float lo = sortBuf[below];
            float hi = sortBuf[above];
            float s = w < 0.5f ? lo + w * (hi - lo) : hi - (hi - lo) * (1f - w);
            s = Math.min(Math.max(s, 1f), maxValue);
            for (int i = 0; i < per; i++) {
                float v = x[off + i];
                v = Math.min(Math.max(v, -s), s);
                x[off + i] = v / s;
            }
        }
    }
}
