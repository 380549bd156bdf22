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

    static final Set<String> KEYS = Set.of("num_train_timesteps", "beta_start", "beta_end", "beta_schedule",
            "trained_betas", "prediction_type", "timestep_spacing", "steps_offset", "rescale_betas_zero_snr");

    /** The effective configuration, diffusers' keys camelCased. */
    public record Config(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, String predictionType, String timestepSpacing, int stepsOffset,
            boolean rescaleBetasZeroSnr) implements BetaScheduleConfig {

        /** Validates like diffusers ({@code prediction_type=sample} is not implemented there either). */
        public Config {
            if (numTrainTimesteps < 2) {
                throw new SchedulerConfigException("num_train_timesteps", "must be at least 2, got " + numTrainTimesteps);
            }
            if (trainedBetas == null && !NoiseSchedules.BETA_SCHEDULES.contains(betaSchedule)) {
                throw new SchedulerConfigException("beta_schedule", "'" + betaSchedule + "' is not implemented for "
                        + NAME + "; use one of " + NoiseSchedules.BETA_SCHEDULES);
            }
            if (!List.of("epsilon", "v_prediction").contains(predictionType)) {
                throw new SchedulerConfigException("prediction_type", "'" + predictionType
                        + "' is not implemented for " + NAME + "; use epsilon or v_prediction");
            }
            if (!NoiseSchedules.TIMESTEP_SPACINGS.contains(timestepSpacing)) {
                throw new SchedulerConfigException("timestep_spacing", timestepSpacing
                        + " is not supported. Please make sure to choose one of 'linspace', 'leading' or 'trailing'.");
            }
            trainedBetas = trainedBetas == null ? null : trainedBetas.clone();
        }

        @Override
        public double[] trainedBetas() {
            return trainedBetas == null ? null : trainedBetas.clone();
        }

        /** {@code EulerAncestralDiscreteScheduler.from_config(config, **overrides)}. */
        public static Config from(Map<String, ?> config, Map<String, ?> overrides) {
            ConfigValues v = ConfigValues.of(config, overrides, NAME, KEYS);
            return new Config(v.getInt("num_train_timesteps", 1000), v.getDouble("beta_start", 0.0001),
                    v.getDouble("beta_end", 0.02), v.getString("beta_schedule", "linear"),
                    v.getDoubleArray("trained_betas"), v.getString("prediction_type", "epsilon"),
                    v.getString("timestep_spacing", "linspace"), v.getInt("steps_offset", 0),
                    v.getBool("rescale_betas_zero_snr", false));
        }
    }

    private final Config config;
    private float[] noiseBuf;

    /** A scheduler with {@code config}. */
    public EulerAncestralDiscreteScheduler(Config config) {
        super(NAME, NoiseSchedules.clampZeroTerminalSnr(NoiseSchedules.trainingAlphasCumprod(config,
                config.rescaleBetasZeroSnr(), NAME), config.rescaleBetasZeroSnr()), config.timestepSpacing());
        this.config = config;
    }

    /** {@code EulerAncestralDiscreteScheduler.from_config(config, **overrides)}. */
    public static EulerAncestralDiscreteScheduler fromConfig(Map<String, ?> config, Map<String, ?> overrides) {
        return new EulerAncestralDiscreteScheduler(Config.from(config, overrides));
    }

    /** The effective configuration. */
    public Config config() {
        return config;
    }

    @Override
    public void setTimesteps(int numInferenceSteps) {
        NoiseSchedules.checkSteps(numInferenceSteps, NAME);
        double[] ts = KarrasSchedules.asFloat32(KarrasSchedules.timesteps(config.timestepSpacing(),
                config.numTrainTimesteps(), numInferenceSteps, config.stepsOffset(), true));
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
