package dev.sdjvm.scheduler;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * diffusers' {@code UniPCMultistepScheduler} (UniPC: the UniP predictor with the UniC corrector, B(h) variants
 * bh1/bh2), reproducing diffusers 0.40 numerically in float32. Flow-matching options and {@code solver_p} are not
 * implemented and raise {@link SchedulerConfigException}.
 */
public final class UniPCMultistepScheduler extends IndexedSigmaScheduler {
    /** diffusers' class name. */
    public static final String NAME = "UniPCMultistepScheduler";

    static final Set<String> KEYS = ConfigValues.withTrainingKeys("solver_order", "prediction_type", "thresholding",
            "dynamic_thresholding_ratio", "sample_max_value", "predict_x0", "solver_type", "lower_order_final",
            "disable_corrector", "solver_p", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
            "use_flow_sigmas", "flow_shift", "timestep_spacing", "steps_offset", "final_sigmas_type",
            "rescale_betas_zero_snr", "use_dynamic_shifting", "time_shift_type", "sigma_min", "sigma_max",
            "shift_terminal");

    /**
     * The effective configuration, diffusers' keys camelCased.
     *
     * @param numTrainTimesteps        {@code num_train_timesteps}
     * @param betaStart                {@code beta_start}
     * @param betaEnd                  {@code beta_end}
     * @param betaSchedule             {@code beta_schedule}
     * @param trainedBetas             {@code trained_betas}, or null
     * @param solverOrder              {@code solver_order}
     * @param predictionType           {@code prediction_type}
     * @param thresholding             {@code thresholding}
     * @param dynamicThresholdingRatio {@code dynamic_thresholding_ratio}
     * @param sampleMaxValue           {@code sample_max_value}
     * @param predictX0                {@code predict_x0}
     * @param solverType               {@code solver_type}
     * @param lowerOrderFinal          {@code lower_order_final}
     * @param disableCorrector         {@code disable_corrector}: the steps without the corrector
     * @param useKarrasSigmas          {@code use_karras_sigmas}
     * @param useExponentialSigmas     {@code use_exponential_sigmas}
     * @param useBetaSigmas            {@code use_beta_sigmas}
     * @param useFlowSigmas            {@code use_flow_sigmas}
     * @param flowShift                {@code flow_shift}
     * @param timestepSpacing          {@code timestep_spacing}
     * @param stepsOffset              {@code steps_offset}
     * @param finalSigmasType          {@code final_sigmas_type}
     * @param rescaleBetasZeroSnr      {@code rescale_betas_zero_snr}
     * @param useDynamicShifting       {@code use_dynamic_shifting}
     * @param timeShiftType            {@code time_shift_type}
     * @param sigmaMin                 {@code sigma_min}, or null
     * @param sigmaMax                 {@code sigma_max}, or null
     */
    public record Config(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, int solverOrder, String predictionType, boolean thresholding,
            double dynamicThresholdingRatio, double sampleMaxValue, boolean predictX0, String solverType,
            boolean lowerOrderFinal, List<Integer> disableCorrector, boolean useKarrasSigmas,
            boolean useExponentialSigmas, boolean useBetaSigmas, boolean useFlowSigmas, double flowShift,
            String timestepSpacing, int stepsOffset, String finalSigmasType, boolean rescaleBetasZeroSnr,
            boolean useDynamicShifting, String timeShiftType, Double sigmaMin, Double sigmaMax)
            implements BetaScheduleConfig {

        /**
         * Validates like diffusers, plus the options this library does not implement.
         *
         * @param numTrainTimesteps        {@code num_train_timesteps}
         * @param betaStart                {@code beta_start}
         * @param betaEnd                  {@code beta_end}
         * @param betaSchedule             {@code beta_schedule}
         * @param trainedBetas             {@code trained_betas}, or null
         * @param solverOrder              {@code solver_order}
         * @param predictionType           {@code prediction_type}
         * @param thresholding             {@code thresholding}
         * @param dynamicThresholdingRatio {@code dynamic_thresholding_ratio}
         * @param sampleMaxValue           {@code sample_max_value}
         * @param predictX0                {@code predict_x0}
         * @param solverType               {@code solver_type}
         * @param lowerOrderFinal          {@code lower_order_final}
         * @param disableCorrector         {@code disable_corrector}: the steps without the corrector
         * @param useKarrasSigmas          {@code use_karras_sigmas}
         * @param useExponentialSigmas     {@code use_exponential_sigmas}
         * @param useBetaSigmas            {@code use_beta_sigmas}
         * @param useFlowSigmas            {@code use_flow_sigmas}
         * @param flowShift                {@code flow_shift}
         * @param timestepSpacing          {@code timestep_spacing}
         * @param stepsOffset              {@code steps_offset}
         * @param finalSigmasType          {@code final_sigmas_type}
         * @param rescaleBetasZeroSnr      {@code rescale_betas_zero_snr}
         * @param useDynamicShifting       {@code use_dynamic_shifting}
         * @param timeShiftType            {@code time_shift_type}
         * @param sigmaMin                 {@code sigma_min}, or null
         * @param sigmaMax                 {@code sigma_max}, or null
         * @throws SchedulerConfigException naming the first key diffusers would reject
         */
        public Config {
            ConfigChecks.trainingSchedule(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, stepsOffset,
                    NAME);
            if (solverOrder < 1 || solverOrder > 3) {
                throw new SchedulerConfigException("solver_order", "must be 1, 2 or 3 here, got " + solverOrder);
            }
            ConfigChecks.solverPredictionType(predictionType, NAME);
            ConfigChecks.oneOf("solver_type", solverType, List.of("bh1", "bh2"),
                    solverType + " is not implemented for " + NAME);
            KarrasSchedules.sigmaKind(useKarrasSigmas, useExponentialSigmas, useBetaSigmas);
            ConfigChecks.noFlowMatching(useFlowSigmas, useDynamicShifting, timeShiftType);
            ConfigChecks.timestepSpacing(timestepSpacing);
            ConfigChecks.finalSigmasType(finalSigmasType);
            ConfigChecks.thresholding(dynamicThresholdingRatio, sampleMaxValue);
            ConfigChecks.positive("flow_shift", flowShift);
            ConfigChecks.sigmaRange(sigmaMin, sigmaMax);
            // a step index per inference step at most, and steps never exceed num_train_timesteps
            if (disableCorrector.size() > ConfigChecks.MAX_TRAIN_TIMESTEPS) {
                throw new SchedulerConfigException("disable_corrector", "at most "
                        + ConfigChecks.MAX_TRAIN_TIMESTEPS + " step indices, got " + disableCorrector.size());
            }
            for (Integer step : disableCorrector) {
                if (step == null || step < 0) {
                    throw new SchedulerConfigException("disable_corrector", "step indices must be >= 0, got " + step);
                }
            }
            disableCorrector = List.copyOf(disableCorrector);
            trainedBetas = ConfigChecks.copy(trainedBetas);
        }

        @Override
        public double[] trainedBetas() {
            return ConfigChecks.copy(trainedBetas);
        }

        /**
         * {@code UniPCMultistepScheduler.from_config(config, **overrides)}: the configuration those give.
         *
         * @param config    a {@code scheduler_config.json} as a map (keys diffusers does not know are ignored)
         * @param overrides keys that replace the config's, or an empty map
         * @return the checked configuration
         * @throws SchedulerConfigException naming a key diffusers would reject
         */
        public static Config from(Map<String, ?> config, Map<String, ?> overrides) {
            ConfigValues v = ConfigValues.of(config, overrides, NAME, KEYS);
            if (v.has("solver_p")) {
                throw new SchedulerConfigException("solver_p", "a solver_p scheduler is not supported");
            }
            if (v.has("shift_terminal")) {
                throw new SchedulerConfigException("shift_terminal",
                        "`shift_terminal` is only supported when `use_flow_sigmas=True`.");
            }
            String solverType = v.getString("solver_type", "bh2");
            if (List.of("midpoint", "heun", "logrho").contains(solverType)) {
                solverType = "bh2"; // diffusers: register_to_config(solver_type="bh2")
            }
            double[] dc = v.getDoubleArray("disable_corrector");
            List<Integer> disable = new ArrayList<>();
            if (dc != null) {
                for (double d : dc) {
                    if (d != Math.rint(d) || d < 0 || d > Integer.MAX_VALUE) {
                        throw new SchedulerConfigException("disable_corrector",
                                "step indices must be integers >= 0, got " + d);
                    }
                    disable.add((int) d);
                }
            }
            return new Config(v.numTrainTimesteps(), v.betaStart(), v.betaEnd(), v.betaSchedule(), v.trainedBetas(),
                    v.getInt("solver_order", 2), v.predictionType(), v.thresholding(), v.dynamicThresholdingRatio(),
                    v.sampleMaxValue(), v.getBool("predict_x0", true), solverType, v.getBool("lower_order_final", true),
                    disable, v.getBool("use_karras_sigmas", false), v.getBool("use_exponential_sigmas", false),
                    v.getBool("use_beta_sigmas", false), v.getBool("use_flow_sigmas", false),
                    v.getDouble("flow_shift", 1.0), v.getString("timestep_spacing", "linspace"), v.stepsOffset(),
                    v.getString("final_sigmas_type", "zero"), v.rescaleBetasZeroSnr(),
                    v.getBool("use_dynamic_shifting", false), v.getString("time_shift_type", "exponential"),
                    v.getNullableDouble("sigma_min"), v.getNullableDouble("sigma_max"));
        }
    }

    private final Config config;
    private int lowerOrderNums;
    private int thisOrder;
    private boolean hasLastSample;
    private float[][] outputs; // outputs[order-1] newest
    private float[] lastSample;
    private float[] converted;
    private float[] corrected;
    private float[] sortBuf;
    private final float[] rks = new float[3];
    private final float[] rhos = new float[3];

    /**
     * A scheduler with {@code config}.
     *
     * @param config the configuration
     */
    public UniPCMultistepScheduler(Config config) {
        super(NAME, config, config.rescaleBetasZeroSnr());
        this.config = config;
    }

    /**
     * {@code UniPCMultistepScheduler.from_config(config, **overrides)}.
     *
     * @param config    a {@code scheduler_config.json} as a map
     * @param overrides keys that replace the config's, or an empty map
     * @return the scheduler
     * @throws SchedulerConfigException naming a key diffusers would reject
     */
    public static UniPCMultistepScheduler fromConfig(Map<String, ?> config, Map<String, ?> overrides) {
        return new UniPCMultistepScheduler(Config.from(config, overrides));
    }

    /** {@return the effective configuration} */
    public Config config() {
        return config;
    }

    @Override
    public void setTimesteps(int n) {
        int nTrain = config.numTrainTimesteps();
        ConfigChecks.inferenceSteps(n, nTrain, NAME);
        DPMSolverMultistepScheduler.checkLeadingRatio(config.timestepSpacing(), nTrain, n, NAME);
        double[] ts = Timesteps.multistepTimesteps(config.timestepSpacing(), nTrain, nTrain, n,
                config.stepsOffset());
        ConfigChecks.timestepsInRange(ts, nTrain, config.stepsOffset(), NAME);
        String kind = KarrasSchedules.sigmaKind(config.useKarrasSigmas(), config.useExponentialSigmas(),
                config.useBetaSigmas());
        float[] s;
        if (kind != null) {
            double[] flipped = new double[trainSigmas.length];
            for (int i = 0; i < flipped.length; i++) {
                flipped[i] = trainSigmas[trainSigmas.length - 1 - i];
            }
            double[][] r = KarrasSchedules.remap(kind, flipped, config.sigmaMin(), config.sigmaMax(), n,
                    logTrainSigmas);
            ts = r[1];
            if (kind.equals("karras")) {
                for (int i = 0; i < ts.length; i++) {
                    ts[i] = Math.rint(ts[i]);
                }
            }
            double[] sig = r[0];
            float last = config.finalSigmasType().equals("sigma_min") ? (float) sig[sig.length - 1] : 0f;
            s = KarrasSchedules.withFinal(sig, last);
        } else {
            double[] sig = KarrasSchedules.interpSigmas(ts, trainSigmas);
            float last = config.finalSigmasType().equals("sigma_min")
                    ? (float) Math.sqrt((1f - alphasCumprod[0]) / alphasCumprod[0]) : 0f;
            s = KarrasSchedules.withFinal(sig, last);
        }
        for (int i = 0; i < ts.length; i++) {
            ts[i] = (double) (long) ts[i];
        }
        // repeated sigmas (linspace, n close to num_train_timesteps) make the solver divide by zero: dropped, as
        // diffusers' fix 953c9d14 did (see DPMSolverMultistepScheduler.dropRepeatedSigmas)
        int kept = DPMSolverMultistepScheduler.dropRepeatedSigmas(ts, s);
        setSchedule(java.util.Arrays.copyOf(ts, kept), java.util.Arrays.copyOf(s, kept + 1));
        this.lowerOrderNums = 0;
        this.hasLastSample = false;
    }

    /**
     * diffusers' {@code add_noise}: {@code alpha_t * original + sigma_t * noise} at the sigma of {@code timestep}.
     *
     * @param original the clean sample
     * @param noise    standard-normal noise, as long as {@code original}
     * @param timestep the timestep whose noise level is applied
     * @param out      where the noisy sample goes (may be {@code original})
     */
    @Override
    public void addNoise(float[] original, float[] noise, double timestep, float[] out) {
        addNoiseAtSigma(original, noise, timestep, out);
    }

    private void ensureBuffers(int len) {
        if (outputs == null || outputs[0].length != len) {
            outputs = new float[config.solverOrder()][len];
            lastSample = new float[len];
            converted = new float[len];
            corrected = new float[len];
            sortBuf = config.thresholding() ? new float[len] : null;
        }
    }

    @Override
    public void step(float[] modelOutput, double timestep, float[] sample, float[] out) {
        beginStep(modelOutput, timestep, sample, out);
        int len = sample.length;
        ensureBuffers(len);
        boolean useCorrector = stepIndex > 0 && !config.disableCorrector().contains(stepIndex - 1) && hasLastSample;
        convertModelOutput(modelOutput, sample, converted);
        float[] x = sample;
        if (useCorrector) {
            corrector(converted, lastSample, sample, thisOrder, corrected);
            x = corrected;
        }
        int order = config.solverOrder();
        float[] oldest = outputs[0];
        for (int i = 0; i < order - 1; i++) {
            outputs[i] = outputs[i + 1];
        }
        outputs[order - 1] = oldest;
        System.arraycopy(converted, 0, oldest, 0, len);
        int o = config.lowerOrderFinal() ? Math.min(order, timesteps.length - stepIndex) : order;
        thisOrder = Math.min(o, lowerOrderNums + 1);
        System.arraycopy(x, 0, lastSample, 0, len);
        hasLastSample = true;
        predictor(lastSample, thisOrder, out);
        if (lowerOrderNums < order) {
            lowerOrderNums++;
        }
        stepIndex++;
    }

    private void convertModelOutput(float[] mo, float[] sample, float[] dst) {
        float sigma = sigmas[stepIndex];
        float alphaT = LambdaStep.alphaOf(sigma);
        float sigmaT = sigma * alphaT;
        String pt = config.predictionType();
        int len = mo.length;
        if (config.predictX0()) {
            Predictions.toX0(pt, mo, sample, alphaT, sigmaT, dst, len);
        } else {
            Predictions.toEpsilon(pt, mo, sample, alphaT, sigmaT, dst, len);
        }
        if (config.predictX0() && config.thresholding()) {
            Thresholding.threshold(dst, batchSize, (float) config.dynamicThresholdingRatio(),
                    (float) config.sampleMaxValue(), sortBuf);
        }
    }

    private final float[] hv = new float[3];
    private final float[][] mat = new float[3][4];

    /** Fills {@code b[0..order-1]} (the B(h) right-hand side) and returns {hh, hPhi1, bH} (a reused array). */
    private float[] bVector(float h, int order, float[] b) {
        float hh = config.predictX0() ? -h : h;
        float hPhi1 = TorchMath.expm1(hh);
        float hPhiK = hPhi1 / hh - 1f;
        long factorial = 1;
        float bH = config.solverType().equals("bh1") ? hh : TorchMath.expm1(hh);
        for (int i = 1; i <= order; i++) {
            b[i - 1] = hPhiK * (float) factorial / bH;
            factorial *= i + 1;
            hPhiK = hPhiK / hh - (float) (1.0 / factorial);
        }
        hv[0] = hh;
        hv[1] = hPhi1;
        hv[2] = bH;
        return hv;
    }

    /** Solves R rho = b for R[i][k] = rks[k]^i (i, k < n), by Gaussian elimination with partial pivoting. */
    private void solve(int n, float[] b, float[] out) {
        float[][] a = mat;
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < n; k++) {
                a[i][k] = i == 0 ? 1f : i == 1 ? rks[k] : rks[k] * rks[k];
            }
            a[i][n] = b[i];
        }
        for (int c = 0; c < n; c++) {
            int p = c;
            for (int r = c + 1; r < n; r++) {
                if (Math.abs(a[r][c]) > Math.abs(a[p][c])) {
                    p = r;
                }
            }
            float[] tmp = a[c];
            a[c] = a[p];
            a[p] = tmp;
            for (int r = c + 1; r < n; r++) {
                float f = a[r][c] / a[c][c];
                for (int k = c; k <= n; k++) {
                    a[r][k] -= f * a[c][k];
                }
            }
        }
        for (int r = n - 1; r >= 0; r--) {
            float s = a[r][n];
            for (int k = r + 1; k < n; k++) {
                s -= a[r][k] * out[k];
            }
            out[r] = s / a[r][r];
        }
    }

    private final float[] bBuf = new float[3];
    private final LambdaStep transition = new LambdaStep();
    private float coefA;
    private float coefC;
    private float coefD;

    /**
     * The B(h) update from {@code sigmas[s0]} to {@code sigmas[s0 + 1]} of {@code order}: fills {@code rks}
     * ({@code (lambda(sigmas[s0 - k]) - lambda_s0) / h}, then 1), the right-hand side {@code bBuf}, and the
     * coefficients of {@code x_t = coefA * x - coefC * m0 - coefD * (D1 terms)}.
     */
    private void prepareUpdate(int s0, int order) {
        LambdaStep st = transition.set(sigmas[s0], sigmas[s0 + 1]);
        for (int i = 1; i < order; i++) {
            rks[i - 1] = (LambdaStep.lambdaOf(sigmas[s0 - i]) - st.lambdaS) / st.h;
        }
        rks[order - 1] = 1f;
        float[] hv = bVector(st.h, order, bBuf);
        float hPhi1 = hv[1];
        float bH = hv[2];
        if (config.predictX0()) {
            coefA = st.sigmaT / st.sigmaS;
            coefC = st.alphaT * hPhi1;
            coefD = st.alphaT * bH;
        } else {
            coefA = st.alphaT / st.alphaS;
            coefC = st.sigmaT * hPhi1;
            coefD = st.sigmaT * bH;
        }
    }

    /** UniP (B(h)): predicts the sample at step_index + 1 from {@code x} and the stored outputs. */
    private void predictor(float[] x, int order, float[] out) {
        int len = x.length;
        int ord = config.solverOrder();
        float[] m0 = outputs[ord - 1];
        prepareUpdate(stepIndex, order);
        int k = order - 1; // number of D1 terms
        if (k == 1) {
            rhos[0] = 0.5f;
        } else if (k > 1) {
            solve(k, bBuf, rhos);
        }
        float a = coefA;
        float c = coefC;
        float d = coefD;
        float[] m1 = k >= 1 ? outputs[ord - 2] : null;
        float[] m2 = k >= 2 ? outputs[ord - 3] : null;
        float rho0 = rhos[0];
        float rho1 = rhos[1];
        float rk0 = rks[0];
        float rk1 = rks[1];
        if (k == 0) {
            for (int i = 0; i < len; i++) {
                out[i] = a * x[i] - c * m0[i];
            }
        } else if (k == 1) {
            for (int i = 0; i < len; i++) {
                float res = rho0 * ((m1[i] - m0[i]) / rk0);
                out[i] = (a * x[i] - c * m0[i]) - d * res;
            }
        } else {
            for (int i = 0; i < len; i++) {
                float res = rho0 * ((m1[i] - m0[i]) / rk0) + rho1 * ((m2[i] - m0[i]) / rk1);
                out[i] = (a * x[i] - c * m0[i]) - d * res;
            }
        }
    }

    /** UniC (B(h)): corrects {@code thisSample} (at step_index) using the new converted output. */
    private void corrector(float[] modelT, float[] last, float[] thisSample, int order, float[] out) {
        int len = last.length;
        int ord = config.solverOrder();
        float[] m0 = outputs[ord - 1];
        prepareUpdate(stepIndex - 1, order);
        if (order == 1) {
            rhos[0] = 0.5f;
        } else {
            solve(order, bBuf, rhos);
        }
        int k = order - 1;
        float a = coefA;
        float c = coefC;
        float d = coefD;
        float rhoLast = rhos[order - 1];
        float[] m1 = k >= 1 ? outputs[ord - 2] : null;
        float[] m2 = k >= 2 ? outputs[ord - 3] : null;
        float rho0 = rhos[0];
        float rho1 = rhos[1];
        float rk0 = rks[0];
        float rk1 = rks[1];
        if (k == 0) {
            for (int i = 0; i < len; i++) {
                float corr = rhoLast * (modelT[i] - m0[i]);
                out[i] = (a * last[i] - c * m0[i]) - d * corr;
            }
        } else if (k == 1) {
            for (int i = 0; i < len; i++) {
                float res = rho0 * ((m1[i] - m0[i]) / rk0);
                float corr = res + rhoLast * (modelT[i] - m0[i]);
                out[i] = (a * last[i] - c * m0[i]) - d * corr;
            }
        } else {
            for (int i = 0; i < len; i++) {
                float res = rho0 * ((m1[i] - m0[i]) / rk0) + rho1 * ((m2[i] - m0[i]) / rk1);
                float corr = res + rhoLast * (modelT[i] - m0[i]);
                out[i] = (a * last[i] - c * m0[i]) - d * corr;
            }
        }
    }
}
