package dev.sdjvm.scheduler;

import dev.sdjvm.errors.InvalidRequestException;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * diffusers' {@code LCMScheduler} (Latent Consistency Models), reproducing diffusers 0.40 numerically: the
 * timesteps are {@code num_inference_steps} of the {@code original_inference_steps} "LCM origin" timesteps
 * ({@code k = num_train_timesteps // original_steps}; {@code (1..int(original_steps * strength)) * k - 1}, reversed,
 * taken at {@code floor(linspace(0, len, n, endpoint=False))}); a step is the consistency function
 * {@code denoised = c_out * x0 + c_skip * sample} with the boundary-condition scalings of
 * {@link #boundaryScalings} ({@code timestep_scaling}, sigma_data 0.5), then, except at the last step, re-noised to
 * the next timestep with one draw from the {@link NoiseSource}: {@code sqrt(abar_prev) * denoised +
 * sqrt(1 - abar_prev) * noise}. At the last step the sample is {@code denoised} itself, which is what the LCM
 * pipeline decodes. {@code init_noise_sigma} is 1 and {@code scale_model_input} the identity.
 */
public final class LCMScheduler extends AlphasCumprodScheduler {
    /** diffusers' class name. */
    public static final String NAME = "LCMScheduler";
    /** diffusers' {@code sigma_data} of the boundary condition. */
    static final float SIGMA_DATA = 0.5f;

    static final Set<String> KEYS = ConfigValues.withTrainingKeys("original_inference_steps", "clip_sample",
            "clip_sample_range", "set_alpha_to_one", "steps_offset", "prediction_type", "thresholding",
            "dynamic_thresholding_ratio", "sample_max_value", "timestep_spacing", "timestep_scaling",
            "rescale_betas_zero_snr");

    /**
     * The effective configuration, diffusers' keys camelCased. {@code steps_offset} and {@code timestep_spacing} are
     * accepted and, as in diffusers, not used by the LCM schedule.
     *
     * @param numTrainTimesteps        {@code num_train_timesteps}
     * @param betaStart                {@code beta_start}
     * @param betaEnd                  {@code beta_end}
     * @param betaSchedule             {@code beta_schedule}
     * @param trainedBetas             {@code trained_betas}, or null
     * @param originalInferenceSteps   {@code original_inference_steps} (default 50)
     * @param clipSample               {@code clip_sample}
     * @param clipSampleRange          {@code clip_sample_range}
     * @param setAlphaToOne            {@code set_alpha_to_one}
     * @param stepsOffset              {@code steps_offset}
     * @param predictionType           {@code prediction_type}
     * @param thresholding             {@code thresholding}
     * @param dynamicThresholdingRatio {@code dynamic_thresholding_ratio}
     * @param sampleMaxValue           {@code sample_max_value}
     * @param timestepSpacing          {@code timestep_spacing}
     * @param timestepScaling          {@code timestep_scaling} (default 10)
     * @param rescaleBetasZeroSnr      {@code rescale_betas_zero_snr}
     */
    public record Config(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, int originalInferenceSteps, boolean clipSample, double clipSampleRange,
            boolean setAlphaToOne, int stepsOffset, String predictionType, boolean thresholding,
            double dynamicThresholdingRatio, double sampleMaxValue, String timestepSpacing, double timestepScaling,
            boolean rescaleBetasZeroSnr) implements BetaScheduleConfig {

        /**
         * Validates like diffusers (and refuses what would fail later in diffusers: an {@code original_inference_steps}
         * outside 1..num_train_timesteps, a non-positive or non-finite {@code timestep_scaling}).
         *
         * @param numTrainTimesteps        {@code num_train_timesteps}
         * @param betaStart                {@code beta_start}
         * @param betaEnd                  {@code beta_end}
         * @param betaSchedule             {@code beta_schedule}
         * @param trainedBetas             {@code trained_betas}, or null
         * @param originalInferenceSteps   {@code original_inference_steps}
         * @param clipSample               {@code clip_sample}
         * @param clipSampleRange          {@code clip_sample_range}
         * @param setAlphaToOne            {@code set_alpha_to_one}
         * @param stepsOffset              {@code steps_offset}
         * @param predictionType           {@code prediction_type}
         * @param thresholding             {@code thresholding}
         * @param dynamicThresholdingRatio {@code dynamic_thresholding_ratio}
         * @param sampleMaxValue           {@code sample_max_value}
         * @param timestepSpacing          {@code timestep_spacing}
         * @param timestepScaling          {@code timestep_scaling}
         * @param rescaleBetasZeroSnr      {@code rescale_betas_zero_snr}
         * @throws SchedulerConfigException naming the first key that is refused
         */
        public Config {
            ConfigChecks.trainingSchedule(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, stepsOffset,
                    NAME);
            ConfigChecks.oneOf("prediction_type", predictionType, List.of("epsilon", "sample", "v_prediction"),
                    "prediction_type given as " + predictionType + " must be one of `epsilon`, `sample` or "
                    + "`v_prediction` for `LCMScheduler`.");
            ConfigChecks.thresholding(dynamicThresholdingRatio, sampleMaxValue);
            ConfigChecks.positive("clip_sample_range", clipSampleRange);
            ConfigChecks.positive("timestep_scaling", timestepScaling);
            if (originalInferenceSteps < 1 || originalInferenceSteps > numTrainTimesteps) {
                throw new SchedulerConfigException("original_inference_steps", "must be in 1.." + numTrainTimesteps
                        + " (num_train_timesteps), got " + originalInferenceSteps);
            }
            trainedBetas = ConfigChecks.copy(trainedBetas);
        }

        @Override
        public double[] trainedBetas() {
            return ConfigChecks.copy(trainedBetas);
        }

        /**
         * {@code LCMScheduler.from_config(config, **overrides)}: the configuration those give.
         *
         * @param config    a {@code scheduler_config.json} as a map (keys diffusers does not know are ignored)
         * @param overrides keys that replace the config's, or an empty map
         * @return the checked configuration
         * @throws SchedulerConfigException naming a key diffusers would reject
         */
        public static Config from(Map<String, ?> config, Map<String, ?> overrides) {
            ConfigValues v = ConfigValues.of(config, overrides, NAME, KEYS);
            return new Config(v.numTrainTimesteps(), v.betaStart(), v.betaEnd(), v.betaSchedule(), v.trainedBetas(),
                    v.getInt("original_inference_steps", 50), v.getBool("clip_sample", false),
                    v.getDouble("clip_sample_range", 1.0), v.getBool("set_alpha_to_one", true), v.stepsOffset(),
                    v.predictionType(), v.thresholding(), v.dynamicThresholdingRatio(), v.sampleMaxValue(),
                    v.getString("timestep_spacing", "leading"), v.getDouble("timestep_scaling", 10.0),
                    v.rescaleBetasZeroSnr());
        }
    }

    private final Config config;
    private int numInferenceSteps = -1;
    private int stepIndex = -1;
    private int beginIndex = -1;
    private float[] x0Buf;
    private float[] noiseBuf;
    private float[] sortBuf;

    /**
     * A scheduler with {@code config}.
     *
     * @param config the configuration
     */
    public LCMScheduler(Config config) {
        super(NAME, config, config.rescaleBetasZeroSnr(), config.setAlphaToOne());
        this.config = config;
    }

    /**
     * {@code LCMScheduler.from_config(config, **overrides)}.
     *
     * @param config    a {@code scheduler_config.json} as a map
     * @param overrides keys that replace the config's, or an empty map
     * @return the scheduler
     * @throws SchedulerConfigException naming a key diffusers would reject
     */
    public static LCMScheduler fromConfig(Map<String, ?> config, Map<String, ?> overrides) {
        return new LCMScheduler(Config.from(config, overrides));
    }

    /** {@return the effective configuration} */
    public Config config() {
        return config;
    }

    @Override
    public void setTimesteps(int numInferenceSteps) {
        setTimesteps(numInferenceSteps, null, 1.0);
    }

    /**
     * diffusers' {@code set_timesteps(num_inference_steps, original_inference_steps=, strength=)}.
     *
     * @param n                      {@code num_inference_steps}
     * @param originalInferenceSteps the LCM origin schedule's length, or null for the config's
     * @param strength               the fraction of the origin schedule used (image-to-image), in (0, 1]
     * @throws InvalidRequestException (field {@code num_inference_steps}) where diffusers raises: more steps than
     *                                 {@code num_train_timesteps}, than {@code original_inference_steps}, or than
     *                                 {@code int(original_steps * strength)}
     */
    public void setTimesteps(int n, Integer originalInferenceSteps, double strength) {
        Timesteps.checkSteps(n, NAME);
        int nTrain = config.numTrainTimesteps();
        int originalSteps = originalInferenceSteps != null ? originalInferenceSteps : config.originalInferenceSteps();
        if (originalSteps < 1 || originalSteps > nTrain) {
            throw new InvalidRequestException("original_inference_steps", "`original_steps`: " + originalSteps
                    + " cannot be larger than `self.config.train_timesteps`: " + nTrain + " (nor below 1)");
        }
        if (!(strength > 0 && strength <= 1)) {
            throw new InvalidRequestException("strength", "must be in (0, 1], got " + strength);
        }
        Timesteps.checkNotAboveTrain(n, nTrain, NAME);
        int k = nTrain / originalSteps;
        int origins = (int) (originalSteps * strength);  // Python int(): truncation
        if (origins / n < 1) {  // skipping_step = len(lcm_origin_timesteps) // num_inference_steps
            throw new InvalidRequestException("num_inference_steps", "The combination of `original_steps x strength`: "
                    + originalSteps + " x " + strength + " is smaller than `num_inference_steps`: " + n + ". Make sure "
                    + "to either reduce `num_inference_steps` to a value smaller than " + origins + " or increase "
                    + "`strength` to a value higher than " + ((double) n / originalSteps) + ".");
        }
        if (n > originalSteps) {
            throw new InvalidRequestException("num_inference_steps", "`num_inference_steps`: " + n + " cannot be larger "
                    + "than `original_inference_steps`: " + originalSteps + " because the final timestep schedule will "
                    + "be a subset of the `original_inference_steps`-sized initial timestep schedule.");
        }
        // lcm_origin_timesteps[::-1] = (origins..1) * k - 1; indices floor(linspace(0, origins, n, endpoint=False))
        double[] ts = new double[n];
        double delta = (double) origins / n;  // numpy linspace(endpoint=False): start + i * (stop - start) / num
        for (int i = 0; i < n; i++) {
            int idx = (int) Math.floor(i * delta);
            ts[i] = (double) (origins - idx) * k - 1;
        }
        this.timesteps = ts;
        this.numInferenceSteps = n;
        this.stepIndex = -1;
        this.beginIndex = -1;
    }

    @Override
    public void setBeginIndex(int beginIndex) {
        checkSet(timesteps);
        if (beginIndex < 0 || beginIndex > timesteps.length) {
            throw new IllegalArgumentException("begin index " + beginIndex + " outside 0.." + timesteps.length);
        }
        this.beginIndex = beginIndex;
    }

    /**
     * diffusers' {@code get_scalings_for_boundary_condition_discrete(timestep)} in float32, as torch computes it on
     * the pipeline's 0-dim int64 timestep: {@code st = t * timestep_scaling}, {@code c_skip = 0.25 / (st^2 + 0.25)},
     * {@code c_out = st / sqrt(st^2 + 0.25)}.
     *
     * @param timestep the integer timestep
     * @return {c_skip, c_out}
     */
    public float[] boundaryScalings(double timestep) {
        float st = (float) timestep * (float) config.timestepScaling();
        float d = st * st + SIGMA_DATA * SIGMA_DATA;
        return new float[] {SIGMA_DATA * SIGMA_DATA / d, st / (float) Math.sqrt(d)};
    }

    @Override
    public void step(float[] modelOutput, double timestep, float[] sample, float[] out) {
        checkStepArgs(modelOutput, sample, out);
        checkSet(timesteps);
        if (stepIndex < 0) {
            stepIndex = beginIndex >= 0 ? beginIndex : Timesteps.indexForTimestep(timesteps, timestep);
        }
        if (stepIndex >= timesteps.length) {
            throw new IllegalStateException(NAME + ": all steps are done; call setTimesteps");
        }
        int len = sample.length;
        if (x0Buf == null || x0Buf.length != len) {
            x0Buf = new float[len];
            noiseBuf = new float[len];
            sortBuf = new float[len];
        }
        int prevIndex = stepIndex + 1;
        double prevT = prevIndex < timesteps.length ? timesteps[prevIndex] : timestep;
        float apt = alphaProd((long) timestep);
        float aptPrev = alphaProd((long) prevT);
        float bpt = 1f - apt;
        float bptPrev = 1f - aptPrev;
        float[] sc = boundaryScalings(timestep);
        float cSkip = sc[0];
        float cOut = sc[1];
        float[] x0 = x0Buf;
        Predictions.toX0(config.predictionType(), modelOutput, sample, (float) Math.sqrt(apt), (float) Math.sqrt(bpt),
                x0, len);
        if (config.thresholding()) {
            Thresholding.threshold(x0, batchSize, (float) config.dynamicThresholdingRatio(),
                    (float) config.sampleMaxValue(), sortBuf);
        } else if (config.clipSample()) {
            float r = (float) config.clipSampleRange();
            for (int i = 0; i < len; i++) {
                x0[i] = Math.min(Math.max(x0[i], -r), r);
            }
        }
        boolean last = stepIndex == numInferenceSteps - 1;
        if (!last) {
            drawNoise(noiseBuf);
        }
        float sa = (float) Math.sqrt(aptPrev);
        float sb = (float) Math.sqrt(bptPrev);
        for (int i = 0; i < len; i++) {
            float denoised = cOut * x0[i] + cSkip * sample[i];
            out[i] = last ? denoised : sa * denoised + sb * noiseBuf[i];
        }
        stepIndex++;
    }
}
