package dev.sdjvm.scheduler;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * diffusers' {@code EulerAncestralDiscreteScheduler} ("Euler a"): an Euler step to sigma_down plus fresh noise
 * scaled by sigma_up, one {@link NoiseSource#fill} per step, reproducing diffusers 0.40 numerically.
 */
public final class EulerAncestralDiscreteScheduler extends SigmaDiscreteScheduler {
    /** diffusers' class name. */
    public static final String NAME = "EulerAncestralDiscreteScheduler";

    static final Set<String> KEYS = ConfigValues.withTrainingKeys("prediction_type", "timestep_spacing", "steps_offset",
            "rescale_betas_zero_snr");

    /**
     * The effective configuration, diffusers' keys camelCased.
     *
     * @param numTrainTimesteps   {@code num_train_timesteps}
     * @param betaStart           {@code beta_start}
     * @param betaEnd             {@code beta_end}
     * @param betaSchedule        {@code beta_schedule}
     * @param trainedBetas        {@code trained_betas}, or null
     * @param predictionType      {@code prediction_type}
     * @param timestepSpacing     {@code timestep_spacing}
     * @param stepsOffset         {@code steps_offset}
     * @param rescaleBetasZeroSnr {@code rescale_betas_zero_snr}
     */
    public record Config(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, String predictionType, String timestepSpacing, int stepsOffset,
            boolean rescaleBetasZeroSnr) implements BetaScheduleConfig {

        /**
         * Validates like diffusers (prediction_type=sample is not implemented there either).
         *
         * @param numTrainTimesteps   {@code num_train_timesteps}
         * @param betaStart           {@code beta_start}
         * @param betaEnd             {@code beta_end}
         * @param betaSchedule        {@code beta_schedule}
         * @param trainedBetas        {@code trained_betas}, or null
         * @param predictionType      {@code prediction_type}
         * @param timestepSpacing     {@code timestep_spacing}
         * @param stepsOffset         {@code steps_offset}
         * @param rescaleBetasZeroSnr {@code rescale_betas_zero_snr}
         * @throws SchedulerConfigException naming the first key diffusers would reject
         */
        public Config {
            ConfigChecks.trainingSchedule(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, stepsOffset,
                    NAME);
            ConfigChecks.oneOf("prediction_type", predictionType, List.of("epsilon", "v_prediction"),
                    "'" + predictionType + "' is not implemented for " + NAME + "; use epsilon or v_prediction");
            ConfigChecks.timestepSpacing(timestepSpacing);
            trainedBetas = ConfigChecks.copy(trainedBetas);
        }

        @Override
        public double[] trainedBetas() {
            return ConfigChecks.copy(trainedBetas);
        }

        /**
         * {@code EulerAncestralDiscreteScheduler.from_config(config, **overrides)}: the configuration those give.
         *
         * @param config    a {@code scheduler_config.json} as a map (keys diffusers does not know are ignored)
         * @param overrides keys that replace the config's, or an empty map
         * @return the checked configuration
         * @throws SchedulerConfigException naming a key diffusers would reject
         */
        public static Config from(Map<String, ?> config, Map<String, ?> overrides) {
            ConfigValues v = ConfigValues.of(config, overrides, NAME, KEYS);
            return new Config(v.numTrainTimesteps(), v.betaStart(), v.betaEnd(), v.betaSchedule(), v.trainedBetas(),
                    v.predictionType(), v.getString("timestep_spacing", "linspace"), v.stepsOffset(),
                    v.rescaleBetasZeroSnr());
        }
    }

    private final Config config;
    private float[] noiseBuf;

    /**
     * A scheduler with {@code config}.
     *
     * @param config the configuration
     */
    public EulerAncestralDiscreteScheduler(Config config) {
        super(NAME, config, config.rescaleBetasZeroSnr(), config.timestepSpacing());
        this.config = config;
    }

    /**
     * {@code EulerAncestralDiscreteScheduler.from_config(config, **overrides)}.
     *
     * @param config    a {@code scheduler_config.json} as a map
     * @param overrides keys that replace the config's, or an empty map
     * @return the scheduler
     * @throws SchedulerConfigException naming a key diffusers would reject
     */
    public static EulerAncestralDiscreteScheduler fromConfig(Map<String, ?> config, Map<String, ?> overrides) {
        return new EulerAncestralDiscreteScheduler(Config.from(config, overrides));
    }

    /** {@return the effective configuration} */
    public Config config() {
        return config;
    }

    @Override
    public void setTimesteps(int numInferenceSteps) {
        ConfigChecks.inferenceSteps(numInferenceSteps, config.numTrainTimesteps(), NAME);
        double[] ts = KarrasSchedules.asFloat32(Timesteps.spacedTimesteps(config.timestepSpacing(),
                config.numTrainTimesteps(), numInferenceSteps, config.stepsOffset(), false));
        ConfigChecks.timestepsInRange(ts, config.numTrainTimesteps(), config.stepsOffset(), NAME);
        setSchedule(ts, KarrasSchedules.withFinal(KarrasSchedules.interpSigmas(ts, trainSigmas), 0f));
    }

    @Override
    public void step(float[] modelOutput, double timestep, float[] sample, float[] out) {
        beginStep(modelOutput, timestep, sample, out);
        if (noiseBuf == null || noiseBuf.length != sample.length) {
            noiseBuf = new float[sample.length];
        }
        float sigma = sigmas[stepIndex];
        float sigmaFrom = sigma;
        float sigmaTo = sigmas[stepIndex + 1];
        float sigmaUp = (float) Math.sqrt(sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo)
                / (sigmaFrom * sigmaFrom));
        float sigmaDown = (float) Math.sqrt(sigmaTo * sigmaTo - sigmaUp * sigmaUp);
        float dt = sigmaDown - sigma;
        boolean eps = config.predictionType().equals("epsilon");
        float vA = -sigma / (float) Math.sqrt(sigma * sigma + 1f);
        float vB = sigma * sigma + 1f;
        drawNoise(noiseBuf); // drawn after the deterministic part in diffusers; no other draw in between
        float[] z = noiseBuf;
        int len = sample.length;
        if (eps) {
            for (int i = 0; i < len; i++) {
                float s = sample[i];
                float pred = s - sigma * modelOutput[i];
                out[i] = s + (s - pred) / sigma * dt + z[i] * sigmaUp;
            }
        } else {
            for (int i = 0; i < len; i++) {
                float s = sample[i];
                float pred = modelOutput[i] * vA + s / vB;
                out[i] = s + (s - pred) / sigma * dt + z[i] * sigmaUp;
            }
        }
        stepIndex++;
    }
}
