package dev.sdjvm.scheduler;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * diffusers' {@code DPMSolverMultistepScheduler} (DPM-Solver / DPM-Solver++, orders 1-3, ODE and SDE variants),
 * reproducing diffusers 0.40 (commit 58eb52c0) numerically: schedule tables as torch/numpy compute them and each
 * step in float32 in torch's evaluation order.
 *
 * <p>Every key of diffusers' config is honoured; values diffusers rejects, and the flow-matching options
 * ({@code use_flow_sigmas}, {@code use_dynamic_shifting}, {@code prediction_type=flow_prediction}) which this
 * library does not implement, raise {@link SchedulerConfigException} naming the key. The SDE variants draw one
 * noise array per step from the {@link NoiseSource}.
 */
public final class DPMSolverMultistepScheduler extends IndexedSigmaScheduler {
    /** diffusers' class name. */
    public static final String NAME = "DPMSolverMultistepScheduler";

    /** The keys of diffusers' {@code DPMSolverMultistepScheduler.__init__}. */
    static final Set<String> KEYS = ConfigValues.withTrainingKeys("solver_order", "prediction_type", "thresholding",
            "dynamic_thresholding_ratio", "sample_max_value", "algorithm_type", "solver_type", "lower_order_final",
            "euler_at_final", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas",
            "use_flow_sigmas", "flow_shift", "final_sigmas_type", "lambda_min_clipped", "variance_type",
            "timestep_spacing", "steps_offset", "rescale_betas_zero_snr", "use_dynamic_shifting", "time_shift_type");

    /**
     * The effective configuration, diffusers' keys camelCased (defaults are diffusers' defaults).
     *
     * @param numTrainTimesteps        {@code num_train_timesteps}
     * @param betaStart                {@code beta_start}
     * @param betaEnd                  {@code beta_end}
     * @param betaSchedule             {@code beta_schedule}
     * @param trainedBetas             {@code trained_betas}: explicit betas, or null
     * @param solverOrder              {@code solver_order}
     * @param predictionType           {@code prediction_type}
     * @param thresholding             {@code thresholding}
     * @param dynamicThresholdingRatio {@code dynamic_thresholding_ratio}
     * @param sampleMaxValue           {@code sample_max_value}
     * @param algorithmType            {@code algorithm_type}
     * @param solverType               {@code solver_type}
     * @param lowerOrderFinal          {@code lower_order_final}
     * @param eulerAtFinal             {@code euler_at_final}
     * @param useKarrasSigmas          {@code use_karras_sigmas}
     * @param useExponentialSigmas     {@code use_exponential_sigmas}
     * @param useBetaSigmas            {@code use_beta_sigmas}
     * @param useLuLambdas             {@code use_lu_lambdas}
     * @param useFlowSigmas            {@code use_flow_sigmas}
     * @param flowShift                {@code flow_shift}
     * @param finalSigmasType          {@code final_sigmas_type}
     * @param lambdaMinClipped         {@code lambda_min_clipped}
     * @param varianceType             {@code variance_type}: null, {@code learned} or {@code learned_range}
     * @param timestepSpacing          {@code timestep_spacing}
     * @param stepsOffset              {@code steps_offset}
     * @param rescaleBetasZeroSnr      {@code rescale_betas_zero_snr}
     * @param useDynamicShifting       {@code use_dynamic_shifting}
     * @param timeShiftType            {@code time_shift_type}
     */
    public record Config(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, int solverOrder, String predictionType, boolean thresholding,
            double dynamicThresholdingRatio, double sampleMaxValue, String algorithmType, String solverType,
            boolean lowerOrderFinal, boolean eulerAtFinal, boolean useKarrasSigmas, boolean useExponentialSigmas,
            boolean useBetaSigmas, boolean useLuLambdas, boolean useFlowSigmas, double flowShift,
            String finalSigmasType, double lambdaMinClipped, String varianceType, String timestepSpacing,
            int stepsOffset, boolean rescaleBetasZeroSnr, boolean useDynamicShifting, String timeShiftType)
            implements BetaScheduleConfig {

        /**
         * Validates like diffusers' constructor, plus the options this library does not implement.
         *
         * @param numTrainTimesteps        {@code num_train_timesteps}
         * @param betaStart                {@code beta_start}
         * @param betaEnd                  {@code beta_end}
         * @param betaSchedule             {@code beta_schedule}
         * @param trainedBetas             {@code trained_betas}: explicit betas, or null
         * @param solverOrder              {@code solver_order}
         * @param predictionType           {@code prediction_type}
         * @param thresholding             {@code thresholding}
         * @param dynamicThresholdingRatio {@code dynamic_thresholding_ratio}
         * @param sampleMaxValue           {@code sample_max_value}
         * @param algorithmType            {@code algorithm_type}
         * @param solverType               {@code solver_type}
         * @param lowerOrderFinal          {@code lower_order_final}
         * @param eulerAtFinal             {@code euler_at_final}
         * @param useKarrasSigmas          {@code use_karras_sigmas}
         * @param useExponentialSigmas     {@code use_exponential_sigmas}
         * @param useBetaSigmas            {@code use_beta_sigmas}
         * @param useLuLambdas             {@code use_lu_lambdas}
         * @param useFlowSigmas            {@code use_flow_sigmas}
         * @param flowShift                {@code flow_shift}
         * @param finalSigmasType          {@code final_sigmas_type}
         * @param lambdaMinClipped         {@code lambda_min_clipped}
         * @param varianceType             {@code variance_type}: null, {@code learned} or {@code learned_range}
         * @param timestepSpacing          {@code timestep_spacing}
         * @param stepsOffset              {@code steps_offset}
         * @param rescaleBetasZeroSnr      {@code rescale_betas_zero_snr}
         * @param useDynamicShifting       {@code use_dynamic_shifting}
         * @param timeShiftType            {@code time_shift_type}
         * @throws SchedulerConfigException naming the first key diffusers would reject
         */
        public Config {
            ConfigChecks.trainingSchedule(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, stepsOffset,
                    NAME);
            if (solverOrder < 1 || solverOrder > 3) {
                throw new SchedulerConfigException("solver_order", "must be 1, 2 or 3, got " + solverOrder);
            }
            ConfigChecks.solverPredictionType(predictionType, NAME);
            ConfigChecks.oneOf("algorithm_type", algorithmType,
                    List.of("dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++"),
                    "'" + algorithmType + "' is not implemented for " + NAME
                    + "; use dpmsolver++, sde-dpmsolver++, dpmsolver or sde-dpmsolver");
            ConfigChecks.oneOf("solver_type", solverType, List.of("midpoint", "heun"),
                    "'" + solverType + "' is not implemented for " + NAME + "; use midpoint or heun");
            ConfigChecks.oneOf("final_sigmas_type", finalSigmasType, List.of("zero", "sigma_min"),
                    "must be one of 'zero' or 'sigma_min', got '" + finalSigmasType + "'");
            if (!algorithmType.endsWith("dpmsolver++") && finalSigmasType.equals("zero")) {
                throw new SchedulerConfigException("final_sigmas_type", "`final_sigmas_type` zero is not supported "
                        + "for `algorithm_type` " + algorithmType + ". Please choose `sigma_min` instead.");
            }
            if (algorithmType.equals("sde-dpmsolver") && solverOrder == 3) {
                throw new SchedulerConfigException("solver_order", "diffusers has no third-order update for "
                        + "algorithm_type sde-dpmsolver (it fails at the third step); use solver_order 1 or 2");
            }
            int sigmaOptions = (useKarrasSigmas ? 1 : 0) + (useExponentialSigmas ? 1 : 0) + (useBetaSigmas ? 1 : 0);
            if (sigmaOptions > 1) {
                throw new SchedulerConfigException("use_karras_sigmas", "Only one of `config.use_beta_sigmas`, "
                        + "`config.use_exponential_sigmas`, `config.use_karras_sigmas` can be used.");
            }
            if (useLuLambdas && sigmaOptions > 0) {
                throw new SchedulerConfigException("use_lu_lambdas", "cannot be combined with use_karras_sigmas, "
                        + "use_exponential_sigmas or use_beta_sigmas (diffusers would silently ignore one of them)");
            }
            ConfigChecks.noFlowMatching(useFlowSigmas, useDynamicShifting, timeShiftType);
            if (varianceType != null && !List.of("learned", "learned_range").contains(varianceType)) {
                throw new SchedulerConfigException("variance_type",
                        "must be null, 'learned' or 'learned_range', got '" + varianceType + "'");
            }
            ConfigChecks.timestepSpacing(timestepSpacing);
            if (Double.isNaN(lambdaMinClipped)) {
                throw new SchedulerConfigException("lambda_min_clipped", "must be a number or -inf");
            }
            if (lambdaMinClipped == Double.POSITIVE_INFINITY) {
                throw new SchedulerConfigException("lambda_min_clipped", "must be a number or -inf, got +inf (it "
                        + "would clip every training timestep)");
            }
            ConfigChecks.thresholding(dynamicThresholdingRatio, sampleMaxValue);
            ConfigChecks.positive("flow_shift", flowShift);
            trainedBetas = ConfigChecks.copy(trainedBetas);
        }

        @Override
        public double[] trainedBetas() {
            return ConfigChecks.copy(trainedBetas);
        }

        /** {@return diffusers' defaults} */
        public static Config defaults() {
            return from(Map.of(), Map.of());
        }

        /**
         * {@code DPMSolverMultistepScheduler.from_config(config, **overrides)}: the configuration those give.
         *
         * @param config    a {@code scheduler_config.json} as a map (keys diffusers does not know are ignored)
         * @param overrides keys that replace the config's, or an empty map
         * @return the checked configuration
         * @throws SchedulerConfigException naming a key diffusers would reject
         */
        public static Config from(Map<String, ?> config, Map<String, ?> overrides) {
            ConfigValues v = ConfigValues.of(config, overrides, NAME, KEYS);
            String algorithm = v.getString("algorithm_type", "dpmsolver++");
            if ("deis".equals(algorithm)) {
                algorithm = "dpmsolver++"; // diffusers: register_to_config(algorithm_type="dpmsolver++")
            }
            String solverType = v.getString("solver_type", "midpoint");
            if (List.of("logrho", "bh1", "bh2").contains(solverType)) {
                solverType = "midpoint"; // diffusers maps DEIS/UniPC solver types to midpoint
            }
            return new Config(v.numTrainTimesteps(), v.betaStart(), v.betaEnd(), v.betaSchedule(), v.trainedBetas(),
                    v.getInt("solver_order", 2), v.predictionType(), v.thresholding(), v.dynamicThresholdingRatio(),
                    v.sampleMaxValue(), algorithm, solverType, v.getBool("lower_order_final", true),
                    v.getBool("euler_at_final", false), v.getBool("use_karras_sigmas", false),
                    v.getBool("use_exponential_sigmas", false), v.getBool("use_beta_sigmas", false),
                    v.getBool("use_lu_lambdas", false), v.getBool("use_flow_sigmas", false),
                    v.getDouble("flow_shift", 1.0), v.getString("final_sigmas_type", "zero"),
                    v.getDouble("lambda_min_clipped", Double.NEGATIVE_INFINITY), v.getString("variance_type", null),
                    v.getString("timestep_spacing", "linspace"), v.stepsOffset(), v.rescaleBetasZeroSnr(),
                    v.getBool("use_dynamic_shifting", false), v.getString("time_shift_type", "exponential"));
        }
    }

    private final Config config;
    private final boolean plusPlus;
    private final boolean sde;
    private final float[] lambdaT;

    private int lowerOrderNums;

    // per-sample buffers, allocated on the first step for a given length
    private float[][] history; // history[order-1] = newest converted output (diffusers' model_outputs[-1])
    private float[] noiseBuf;
    private float[] sortBuf;
    private final LambdaStep transition = new LambdaStep();

    /**
     * A scheduler with {@code config}; call {@link #setTimesteps} before stepping.
     *
     * @param config the configuration
     */
    public DPMSolverMultistepScheduler(Config config) {
        super(NAME, config, config.rescaleBetasZeroSnr());
        this.config = config;
        this.plusPlus = config.algorithmType().endsWith("dpmsolver++");
        this.sde = config.algorithmType().startsWith("sde-");
        int n = alphasCumprod.length;
        lambdaT = new float[n];
        for (int i = 0; i < n; i++) {
            float a = (float) Math.sqrt(alphasCumprod[i]);
            float s = (float) Math.sqrt(1f - alphasCumprod[i]);
            lambdaT[i] = TorchMath.log(a) - TorchMath.log(s);
        }
        if (!(lambdaT[0] >= (float) config.lambdaMinClipped())) {
            throw new SchedulerConfigException("lambda_min_clipped", config.lambdaMinClipped() + " clips every "
                    + "training timestep (the largest lambda(t) is " + lambdaT[0] + ")");
        }
    }

    /**
     * {@code DPMSolverMultistepScheduler.from_config(config, **overrides)}.
     *
     * @param config    a {@code scheduler_config.json} as a map
     * @param overrides keys that replace the config's, or an empty map
     * @return the scheduler
     * @throws SchedulerConfigException naming a key diffusers would reject
     */
    public static DPMSolverMultistepScheduler fromConfig(Map<String, ?> config, Map<String, ?> overrides) {
        return new DPMSolverMultistepScheduler(Config.from(config, overrides));
    }

    /** {@return the effective configuration} */
    public Config config() {
        return config;
    }

    /** {@return float32 {@code alphas_cumprod} of the training schedule (a copy)} */
    public float[] alphasCumprod() {
        return alphasCumprod.clone();
    }

    @Override
    public void setTimesteps(int numInferenceSteps) {
        int nTrain = config.numTrainTimesteps();
        ConfigChecks.inferenceSteps(numInferenceSteps, nTrain, NAME);
        // clipped_idx = searchsorted(flip(lambda_t), lambda_min_clipped)
        float clip = (float) config.lambdaMinClipped();
        int clippedIdx = 0;
        for (int i = nTrain - 1; i >= 0; i--) {
            if (lambdaT[i] < clip) {
                clippedIdx++;
            } else {
                break;
            }
        }
        int lastTimestep = nTrain - clippedIdx;
        int n = numInferenceSteps;
        checkLeadingRatio(config.timestepSpacing(), lastTimestep, n, NAME);
        double[] ts = Timesteps.multistepTimesteps(config.timestepSpacing(), nTrain, lastTimestep, n,
                config.stepsOffset());
        ConfigChecks.timestepsInRange(ts, nTrain, config.stepsOffset(), NAME);
        boolean roundT = !config.betaSchedule().equals("squaredcos_cap_v2");
        double[] sig;
        double sigMin = trainSigmas[0];
        double sigMax = trainSigmas[nTrain - 1];
        if (config.useKarrasSigmas()) {
            sig = SigmaSchedules.karras(sigMin, sigMax, n);
            ts = sigmasToTimesteps(sig, roundT);
        } else if (config.useLuLambdas()) {
            double[] lambdas = SigmaSchedules.lu(logTrainSigmas[0], logTrainSigmas[nTrain - 1], n);
            sig = new double[n];
            for (int i = 0; i < n; i++) {
                sig[i] = Math.exp(lambdas[i]);
            }
            ts = sigmasToTimesteps(sig, roundT);
        } else if (config.useExponentialSigmas()) {
            sig = SigmaSchedules.exponential(sigMin, sigMax, n);
            ts = sigmasToTimesteps(sig, false);
        } else if (config.useBetaSigmas()) {
            sig = SigmaSchedules.betaSigmas(sigMin, sigMax, n, 0.6, 0.6);
            ts = sigmasToTimesteps(sig, false);
        } else {
            sig = new double[ts.length];
            for (int i = 0; i < ts.length; i++) {
                sig[i] = NumpyMath.interp(ts[i], trainSigmas);
            }
        }
        float sigmaLast = config.finalSigmasType().equals("sigma_min")
                ? (float) Math.sqrt((1f - alphasCumprod[0]) / alphasCumprod[0]) : 0f;
        float[] s = new float[sig.length + 1];
        for (int i = 0; i < sig.length; i++) {
            s[i] = (float) sig[i];
        }
        s[sig.length] = sigmaLast;
        for (int i = 0; i < ts.length; i++) {
            ts[i] = (double) (long) ts[i]; // .to(torch.int64) truncates
        }
        int kept = dropRepeatedSigmas(ts, s);
        setSchedule(Arrays.copyOf(ts, kept), Arrays.copyOf(s, kept + 1));
        this.lowerOrderNums = 0;
        if (history != null) {
            for (float[] h : history) {
                Arrays.fill(h, 0f);
            }
        }
    }

    /**
     * With leading spacing diffusers' multistep step ratio is {@code lastTimestep // (n + 1)}: at 0 every timestep is
     * the same (1000 steps over 1000 training timesteps), which the solver turns into NaN.
     */
    static void checkLeadingRatio(String spacing, int lastTimestep, int n, String className) {
        if ("leading".equals(spacing) && lastTimestep / (n + 1) == 0) {
            throw new dev.sdjvm.errors.InvalidRequestException("num_inference_steps", "with timestep_spacing 'leading' "
                    + className + " takes at most " + (lastTimestep - 1) + " steps over " + lastTimestep
                    + " training timesteps, got " + n);
        }
    }

    /**
     * Drops the steps whose sigma repeats the previous one, in place; returns how many timesteps are kept (the
     * sigmas keep one more, the final sigma). With linspace spacing, {@code n} steps over {@code N <= n + 1}
     * training timesteps round two timesteps to the same value (1000 steps over 1000: timestep 500 twice); the
     * multistep solvers then divide by a zero lambda step ({@code r0 = h_0 / h}) and every latent becomes NaN: an
     * all-black image. diffusers at commit 58eb52c0 does exactly that (checked by running its unmodified
     * {@code set_timesteps}/{@code step} at 999 and 1000 steps); its own earlier fix (commit 953c9d14, "dpm
     * multistep solver duplicate timesteps", removed again by the sigma refactor #4986) dropped the repeated
     * timesteps, which is what this does: 1000 steps run the 999 distinct timesteps.
     */
    static int dropRepeatedSigmas(double[] ts, float[] s) {
        int kept = 0;
        for (int i = 0; i < ts.length; i++) {
            if (kept > 0 && s[i] == s[kept - 1]) {
                continue;
            }
            ts[kept] = ts[i];
            s[kept] = s[i];
            kept++;
        }
        s[kept] = s[ts.length];
        return kept;
    }

    private double[] sigmasToTimesteps(double[] sig, boolean round) {
        double[] t = new double[sig.length];
        for (int i = 0; i < sig.length; i++) {
            double v = SigmaSchedules.sigmaToT(sig[i], logTrainSigmas);
            t[i] = round ? Math.rint(v) : v;
        }
        return t;
    }

    /** {@return the index of the next step (diffusers' {@code step_index}), or -1 before the first step} */
    public int stepIndex() {
        return stepIndex;
    }

    /**
     * diffusers' {@code add_noise(original, noise, t)}: {@code alpha_t * original + sigma_t * noise} at the sigma of
     * {@code timestep} in the current schedule (img2img / inpainting), written into {@code out}.
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
        if (history == null || history[0].length != len) {
            history = new float[config.solverOrder()][len];
            noiseBuf = sde ? new float[len] : null;
            sortBuf = config.thresholding() ? new float[len] : null;
        }
    }

    private static float expf(float x) {
        return TorchMath.exp(x);
    }

    private static float sqrtf(float x) {
        return (float) Math.sqrt(x);
    }

    @Override
    public void step(float[] modelOutput, double timestep, float[] sample, float[] out) {
        checkSet(timesteps);
        checkSameLength(out, sample, "out");
        int len = sample.length;
        initStepIndex(timestep);
        if (stepIndex >= timesteps.length) {
            throw new IllegalStateException(NAME + ": all " + timesteps.length + " steps are done; call setTimesteps");
        }
        int n = timesteps.length;
        boolean lowerOrderFinal = stepIndex == n - 1 && (config.eulerAtFinal()
                || (config.lowerOrderFinal() && n < 15) || config.finalSigmasType().equals("zero"));
        boolean lowerOrderSecond = stepIndex == n - 2 && config.lowerOrderFinal() && n < 15;
        ensureBuffers(len);
        int order = config.solverOrder();
        float[] oldest = history[0];
        for (int i = 0; i < order - 1; i++) {
            history[i] = history[i + 1];
        }
        history[order - 1] = oldest;
        convertModelOutput(modelOutput, sample, oldest);
        if (sde) {
            drawNoise(noiseBuf);
        }
        if (order == 1 || lowerOrderNums < 1 || lowerOrderFinal) {
            firstOrder(history[order - 1], sample, out);
        } else if (order == 2 || lowerOrderNums < 2 || lowerOrderSecond) {
            secondOrder(history[order - 1], history[order - 2], sample, out);
        } else {
            thirdOrder(history[order - 1], history[order - 2], history[order - 3], sample, out);
        }
        if (lowerOrderNums < order) {
            lowerOrderNums++;
        }
        stepIndex++;
    }

    /** diffusers' {@code convert_model_output}: x0 (DPM-Solver++) or epsilon (DPM-Solver), into {@code dst}. */
    private void convertModelOutput(float[] modelOutput, float[] sample, float[] dst) {
        int len = sample.length;
        boolean learned = config.varianceType() != null;
        int per = len / batchSize;
        if (modelOutput.length != len && !(learned && modelOutput.length == 2 * len && len % batchSize == 0)) {
            throw new IllegalArgumentException("model output length " + modelOutput.length + " does not match the "
                    + "sample length " + len + (learned ? " (or twice it, for variance_type " + config.varianceType()
                    + ")" : ""));
        }
        boolean split = modelOutput.length == 2 * len; // learned variance: the first half of the channels per sample
        float sigma = sigmas[stepIndex];
        float alphaT = LambdaStep.alphaOf(sigma);
        float sigmaT = sigma * alphaT;
        float[] m = modelOutput;
        if (split) {
            for (int b = 0; b < batchSize; b++) {
                System.arraycopy(modelOutput, b * 2 * per, dst, b * per, per);
            }
            m = dst; // converted in place below (each element is read before it is written)
        }
        String pt = config.predictionType();
        if (plusPlus) {
            Predictions.toX0(pt, m, sample, alphaT, sigmaT, dst, len);
        } else {
            Predictions.toEpsilon(pt, m, sample, alphaT, sigmaT, dst, len);
        }
        if (config.thresholding()) {
            if (plusPlus) {
                threshold(dst);
            } else {
                Predictions.x0FromEpsilon(dst, sample, alphaT, sigmaT, dst, len);
                threshold(dst);
                Predictions.epsilonFromX0(dst, sample, alphaT, sigmaT, dst, len);
            }
        }
    }

    private void threshold(float[] x) {
        Thresholding.threshold(x, batchSize, (float) config.dynamicThresholdingRatio(),
                (float) config.sampleMaxValue(), sortBuf);
    }

    // The updates below are written as out = a * sample + b * m0 (+ c * D1 (+ d * D2)) (+ e * noise) with the signs
    // folded into the coefficients (x - y * m is x + (-y) * m exactly in IEEE arithmetic), in diffusers' order.

    private void firstOrder(float[] m0, float[] sample, float[] out) {
        LambdaStep st = transition.set(sigmas[stepIndex], sigmas[stepIndex + 1]);
        float alphaT = st.alphaT;
        float sigT = st.sigmaT;
        float h = st.h;
        float a;
        float b;
        float e = 0f;
        switch (config.algorithmType()) {
            case "dpmsolver++":
                a = sigT / st.sigmaS;
                b = -(alphaT * (expf(-h) - 1f));
                break;
            case "dpmsolver":
                a = alphaT / st.alphaS;
                b = -(sigT * (expf(h) - 1f));
                break;
            case "sde-dpmsolver++":
                a = sigT / st.sigmaS * expf(-h);
                b = alphaT * (1f - expf(-2f * h));
                e = sigT * sqrtf(1f - expf(-2f * h));
                break;
            default: // sde-dpmsolver
                a = alphaT / st.alphaS;
                b = -(2f * (sigT * (expf(h) - 1f)));
                e = sigT * sqrtf(expf(2f * h) - 1f);
                break;
        }
        int len = sample.length;
        float[] z = noiseBuf;
        for (int i = 0; i < len; i++) {
            float x = a * sample[i] + b * m0[i];
            out[i] = sde ? x + e * z[i] : x;
        }
    }

    private void secondOrder(float[] m0, float[] m1, float[] sample, float[] out) {
        LambdaStep st = transition.set(sigmas[stepIndex], sigmas[stepIndex + 1]);
        float alphaT = st.alphaT;
        float sigT = st.sigmaT;
        float h = st.h;
        float h0 = st.lambdaS - LambdaStep.lambdaOf(sigmas[stepIndex - 1]);
        float r0 = h0 / h;
        float k = 1f / r0; // D1 = (1 / r0) * (m0 - m1)
        boolean midpoint = config.solverType().equals("midpoint");
        float a;
        float b;
        float c;
        float e = 0f;
        switch (config.algorithmType()) {
            case "dpmsolver++": {
                float bb = alphaT * (expf(-h) - 1f);
                a = sigT / st.sigmaS;
                b = -bb;
                c = midpoint ? -(0.5f * bb) : alphaT * ((expf(-h) - 1f) / h + 1f);
                break;
            }
            case "dpmsolver": {
                float bb = sigT * (expf(h) - 1f);
                a = alphaT / st.alphaS;
                b = -bb;
                c = -(midpoint ? 0.5f * bb : sigT * ((expf(h) - 1f) / h - 1f));
                break;
            }
            case "sde-dpmsolver++":
                a = sigT / st.sigmaS * expf(-h);
                b = alphaT * (1f - expf(-2f * h));
                c = midpoint ? 0.5f * b : alphaT * ((1f - expf(-2f * h)) / (-2f * h) + 1f);
                e = sigT * sqrtf(1f - expf(-2f * h));
                break;
            default: // sde-dpmsolver
                a = alphaT / st.alphaS;
                b = -(2f * (sigT * (expf(h) - 1f)));
                c = -(midpoint ? sigT * (expf(h) - 1f) : 2f * (sigT * ((expf(h) - 1f) / h - 1f)));
                e = sigT * sqrtf(expf(2f * h) - 1f);
                break;
        }
        int len = sample.length;
        float[] z = noiseBuf;
        for (int i = 0; i < len; i++) {
            float d1 = k * (m0[i] - m1[i]);
            float x = a * sample[i] + b * m0[i] + c * d1;
            out[i] = sde ? x + e * z[i] : x;
        }
    }

    private void thirdOrder(float[] m0, float[] m1, float[] m2, float[] sample, float[] out) {
        LambdaStep st = transition.set(sigmas[stepIndex], sigmas[stepIndex + 1]);
        float alphaT = st.alphaT;
        float sigT = st.sigmaT;
        float h = st.h;
        float lambdaS1 = LambdaStep.lambdaOf(sigmas[stepIndex - 1]);
        float h0 = st.lambdaS - lambdaS1;
        float h1 = lambdaS1 - LambdaStep.lambdaOf(sigmas[stepIndex - 2]);
        float r0 = h0 / h;
        float r1 = h1 / h;
        float k0 = 1f / r0;
        float k1 = 1f / r1;
        float kd1 = r0 / (r0 + r1);
        float kd2 = 1f / (r0 + r1);
        float a;
        float b;
        float c;
        float d;
        float e = 0f;
        switch (config.algorithmType()) {
            case "dpmsolver++":
                a = sigT / st.sigmaS;
                b = -(alphaT * (expf(-h) - 1f));
                c = alphaT * ((expf(-h) - 1f) / h + 1f);
                d = -(alphaT * ((expf(-h) - 1f + h) / (h * h) - 0.5f));
                break;
            case "dpmsolver":
                a = alphaT / st.alphaS;
                b = -(sigT * (expf(h) - 1f));
                c = -(sigT * ((expf(h) - 1f) / h - 1f));
                d = -(sigT * ((expf(h) - 1f - h) / (h * h) - 0.5f));
                break;
            default: { // sde-dpmsolver++ (sde-dpmsolver with order 3 is rejected by Config)
                float twoH = 2f * h;
                a = sigT / st.sigmaS * expf(-h);
                b = alphaT * (1f - expf(-2f * h));
                c = alphaT * ((1f - expf(-2f * h)) / (-2f * h) + 1f);
                d = alphaT * ((1f - expf(-2f * h) - 2f * h) / (twoH * twoH) - 0.5f);
                e = sigT * sqrtf(1f - expf(-2f * h));
                break;
            }
        }
        int len = sample.length;
        float[] z = noiseBuf;
        for (int i = 0; i < len; i++) {
            float d10 = k0 * (m0[i] - m1[i]);
            float d11 = k1 * (m1[i] - m2[i]);
            float diff = d10 - d11;
            float dd1 = d10 + kd1 * diff;
            float dd2 = kd2 * diff;
            float x = a * sample[i] + b * m0[i] + c * dd1 + d * dd2;
            out[i] = sde ? x + e * z[i] : x;
        }
    }
}
