package dev.sdjvm.scheduler;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * diffusers' {@code DDIMScheduler}, reproducing diffusers 0.40 numerically. {@link #setEta} sets the step's
 * {@code eta} (default 0, deterministic); with {@code eta > 0} each step draws one noise array.
 */
public final class DDIMScheduler extends AlphasCumprodScheduler {
    /** diffusers' class name. */
    public static final String NAME = "DDIMScheduler";

    static final Set<String> KEYS = ConfigValues.withTrainingKeys("clip_sample", "set_alpha_to_one", "steps_offset",
            "prediction_type", "thresholding", "dynamic_thresholding_ratio", "clip_sample_range", "sample_max_value",
            "timestep_spacing", "rescale_betas_zero_snr");

    /**
     * The effective configuration, diffusers' keys camelCased.
     *
     * @param numTrainTimesteps        {@code num_train_timesteps}
     * @param betaStart                {@code beta_start}
     * @param betaEnd                  {@code beta_end}
     * @param betaSchedule             {@code beta_schedule}
     * @param trainedBetas             {@code trained_betas}, or null
     * @param clipSample               {@code clip_sample}
     * @param setAlphaToOne            {@code set_alpha_to_one}
     * @param stepsOffset              {@code steps_offset}
     * @param predictionType           {@code prediction_type}
     * @param thresholding             {@code thresholding}
     * @param dynamicThresholdingRatio {@code dynamic_thresholding_ratio}
     * @param clipSampleRange          {@code clip_sample_range}
     * @param sampleMaxValue           {@code sample_max_value}
     * @param timestepSpacing          {@code timestep_spacing}
     * @param rescaleBetasZeroSnr      {@code rescale_betas_zero_snr}
     */
    public record Config(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, boolean clipSample, boolean setAlphaToOne, int stepsOffset, String predictionType,
            boolean thresholding, double dynamicThresholdingRatio, double clipSampleRange, double sampleMaxValue,
            String timestepSpacing, boolean rescaleBetasZeroSnr) implements BetaScheduleConfig {

        /**
         * Validates like diffusers.
         *
         * @param numTrainTimesteps        {@code num_train_timesteps}
         * @param betaStart                {@code beta_start}
         * @param betaEnd                  {@code beta_end}
         * @param betaSchedule             {@code beta_schedule}
         * @param trainedBetas             {@code trained_betas}, or null
         * @param clipSample               {@code clip_sample}
         * @param setAlphaToOne            {@code set_alpha_to_one}
         * @param stepsOffset              {@code steps_offset}
         * @param predictionType           {@code prediction_type}
         * @param thresholding             {@code thresholding}
         * @param dynamicThresholdingRatio {@code dynamic_thresholding_ratio}
         * @param clipSampleRange          {@code clip_sample_range}
         * @param sampleMaxValue           {@code sample_max_value}
         * @param timestepSpacing          {@code timestep_spacing}
         * @param rescaleBetasZeroSnr      {@code rescale_betas_zero_snr}
         * @throws SchedulerConfigException naming the first key diffusers would reject
         */
        public Config {
            ConfigChecks.trainingSchedule(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, stepsOffset,
                    NAME);
            ConfigChecks.oneOf("prediction_type", predictionType, List.of("epsilon", "sample", "v_prediction"),
                    "'" + predictionType + "' must be one of `epsilon`, `sample`, or `v_prediction`");
            ConfigChecks.timestepSpacing(timestepSpacing, "'leading' or 'trailing'");
            ConfigChecks.thresholding(dynamicThresholdingRatio, sampleMaxValue);
            ConfigChecks.positive("clip_sample_range", clipSampleRange);
            trainedBetas = ConfigChecks.copy(trainedBetas);
        }

        @Override
        public double[] trainedBetas() {
            return ConfigChecks.copy(trainedBetas);
        }

        /**
         * {@code DDIMScheduler.from_config(config, **overrides)}: the configuration those give.
         *
         * @param config    a {@code scheduler_config.json} as a map (keys diffusers does not know are ignored)
         * @param overrides keys that replace the config's, or an empty map
         * @return the checked configuration
         * @throws SchedulerConfigException naming a key diffusers would reject
         */
        public static Config from(Map<String, ?> config, Map<String, ?> overrides) {
            ConfigValues v = ConfigValues.of(config, overrides, NAME, KEYS);
            return new Config(v.numTrainTimesteps(), v.betaStart(), v.betaEnd(), v.betaSchedule(), v.trainedBetas(),
                    v.getBool("clip_sample", true), v.getBool("set_alpha_to_one", true), v.stepsOffset(),
                    v.predictionType(), v.thresholding(), v.dynamicThresholdingRatio(),
                    v.getDouble("clip_sample_range", 1.0), v.sampleMaxValue(),
                    v.getString("timestep_spacing", "leading"), v.rescaleBetasZeroSnr());
        }
    }

    private final Config config;
    private int numInferenceSteps;
    private float eta;
    private boolean useClippedModelOutput;
    private float[] noiseBuf;
    private float[] sortBuf;
    private float[] x0Buf;

    /**
     * A scheduler with {@code config}.
     *
     * @param config the configuration
     */
    public DDIMScheduler(Config config) {
        super(NAME, config, config.rescaleBetasZeroSnr(), config.setAlphaToOne());
        this.config = config;
    }

    /**
     * {@code DDIMScheduler.from_config(config, **overrides)}.
     *
     * @param config    a {@code scheduler_config.json} as a map
     * @param overrides keys that replace the config's, or an empty map
     * @return the scheduler
     * @throws SchedulerConfigException naming a key diffusers would reject
     */
    public static DDIMScheduler fromConfig(Map<String, ?> config, Map<String, ?> overrides) {
        return new DDIMScheduler(Config.from(config, overrides));
    }

    /** {@return the effective configuration} */
    public Config config() {
        return config;
    }

    /**
     * The step's {@code eta} (DDIM 0 .. DDPM-like 1); the SD pipeline passes its {@code eta} argument here.
     *
     * @param eta &gt;= 0 (default 0: deterministic)
     * @throws dev.sdjvm.errors.InvalidRequestException if {@code eta} is negative or NaN
     */
    public void setEta(float eta) {
        if (!(eta >= 0)) {
            throw new dev.sdjvm.errors.InvalidRequestException("eta", "must be >= 0, got " + eta);
        }
        this.eta = eta;
    }

    /**
     * diffusers' {@code use_clipped_model_output} step argument.
     *
     * @param use recompute the noise from the clipped prediction of the original sample (default false)
     */
    public void setUseClippedModelOutput(boolean use) {
        this.useClippedModelOutput = use;
    }

    @Override
    public void setTimesteps(int n) {
        Timesteps.checkSteps(n, NAME);
        int nTrain = config.numTrainTimesteps();
        Timesteps.checkNotAboveTrain(n, nTrain, NAME);
        double[] ts = Timesteps.spacedTimesteps(config.timestepSpacing(), nTrain, n, config.stepsOffset(), true);
        ConfigChecks.timestepsInRange(ts, nTrain, config.stepsOffset(), NAME);
        this.timesteps = ts;
        this.numInferenceSteps = n;
    }

    @Override
    public void step(float[] modelOutput, double timestep, float[] sample, float[] out) {
        checkStepArgs(modelOutput, sample, out);
        int len = sample.length;
        if (x0Buf == null || x0Buf.length != len) {
            x0Buf = new float[len];
            noiseBuf = new float[len];
            sortBuf = new float[len];
        }
        int t = (int) timestep;
        int prevT = t - config.numTrainTimesteps() / numInferenceSteps;
        float apt = alphaProd(t);
        float aptPrev = alphaProd(prevT);
        float bpt = 1f - apt;
        float sqrtApt = (float) Math.sqrt(apt);
        float sqrtBpt = (float) Math.sqrt(bpt);
        float[] x0 = x0Buf;
        String pt = config.predictionType();
        Predictions.toX0(pt, modelOutput, sample, sqrtApt, sqrtBpt, x0, len);
        if (config.thresholding()) {
            Thresholding.threshold(x0, batchSize, (float) config.dynamicThresholdingRatio(),
                    (float) config.sampleMaxValue(), sortBuf);
        } else if (config.clipSample()) {
            float r = (float) config.clipSampleRange();
            for (int i = 0; i < len; i++) {
                x0[i] = Math.min(Math.max(x0[i], -r), r);
            }
        }
        float bptPrev = 1f - aptPrev;
        float variance = (bptPrev / bpt) * (1f - apt / aptPrev);
        float std = eta * (float) Math.sqrt(variance);
        float dirCoef = (float) Math.sqrt(1f - aptPrev - std * std);
        float sqrtAptPrev = (float) Math.sqrt(aptPrev);
        if (eta > 0) {
            drawNoise(noiseBuf);
        }
        // pred_epsilon: from the clipped x0 (use_clipped_model_output), from the unclipped x0 = model output
        // (prediction_type sample), the model output (epsilon), or alpha * v + sigma * x (v_prediction)
        int mode = useClippedModelOutput ? 0 : pt.equals("sample") ? 1 : pt.equals("epsilon") ? 2 : 3;
        for (int i = 0; i < len; i++) {
            float s = sample[i];
            float m = modelOutput[i];
            float predEps = mode == 0 ? (s - sqrtApt * x0[i]) / sqrtBpt
                    : mode == 1 ? (s - sqrtApt * m) / sqrtBpt
                    : mode == 2 ? m
                    : sqrtApt * m + sqrtBpt * s;
            float prev = sqrtAptPrev * x0[i] + dirCoef * predEps;
            out[i] = eta > 0 ? prev + std * noiseBuf[i] : prev;
        }
    }
}
