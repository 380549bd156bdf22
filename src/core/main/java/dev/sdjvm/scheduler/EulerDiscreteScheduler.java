package dev.sdjvm.scheduler;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * diffusers' {@code EulerDiscreteScheduler} (Karras et al. Algorithm 2; deterministic unless {@code s_churn > 0}),
 * reproducing diffusers 0.40 numerically (float32 timesteps and sigmas, float32 step arithmetic).
 */
public final class EulerDiscreteScheduler extends SigmaDiscreteScheduler {
    /** diffusers' class name. */
    public static final String NAME = "EulerDiscreteScheduler";

    static final Set<String> KEYS = ConfigValues.withTrainingKeys("prediction_type", "interpolation_type",
            "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "sigma_min", "sigma_max",
            "timestep_spacing", "timestep_type", "steps_offset", "rescale_betas_zero_snr", "final_sigmas_type");

    /**
     * The effective configuration, diffusers' keys camelCased. {@code sigmaMin}/{@code sigmaMax} may be null.
     *
     * @param numTrainTimesteps    {@code num_train_timesteps}
     * @param betaStart            {@code beta_start}
     * @param betaEnd              {@code beta_end}
     * @param betaSchedule         {@code beta_schedule}
     * @param trainedBetas         {@code trained_betas}, or null
     * @param predictionType       {@code prediction_type}
     * @param interpolationType    {@code interpolation_type}
     * @param useKarrasSigmas      {@code use_karras_sigmas}
     * @param useExponentialSigmas {@code use_exponential_sigmas}
     * @param useBetaSigmas        {@code use_beta_sigmas}
     * @param sigmaMin             {@code sigma_min}
     * @param sigmaMax             {@code sigma_max}
     * @param timestepSpacing      {@code timestep_spacing}
     * @param timestepType         {@code timestep_type}
     * @param stepsOffset          {@code steps_offset}
     * @param rescaleBetasZeroSnr  {@code rescale_betas_zero_snr}
     * @param finalSigmasType      {@code final_sigmas_type}
     */
    public record Config(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, String predictionType, String interpolationType, boolean useKarrasSigmas,
            boolean useExponentialSigmas, boolean useBetaSigmas, Double sigmaMin, Double sigmaMax,
            String timestepSpacing, String timestepType, int stepsOffset, boolean rescaleBetasZeroSnr,
            String finalSigmasType) implements BetaScheduleConfig {

        /**
         * Validates like diffusers.
         *
         * @param numTrainTimesteps    {@code num_train_timesteps}
         * @param betaStart            {@code beta_start}
         * @param betaEnd              {@code beta_end}
         * @param betaSchedule         {@code beta_schedule}
         * @param trainedBetas         {@code trained_betas}, or null
         * @param predictionType       {@code prediction_type}
         * @param interpolationType    {@code interpolation_type}
         * @param useKarrasSigmas      {@code use_karras_sigmas}
         * @param useExponentialSigmas {@code use_exponential_sigmas}
         * @param useBetaSigmas        {@code use_beta_sigmas}
         * @param sigmaMin             {@code sigma_min}
         * @param sigmaMax             {@code sigma_max}
         * @param timestepSpacing      {@code timestep_spacing}
         * @param timestepType         {@code timestep_type}
         * @param stepsOffset          {@code steps_offset}
         * @param rescaleBetasZeroSnr  {@code rescale_betas_zero_snr}
         * @param finalSigmasType      {@code final_sigmas_type}
         * @throws SchedulerConfigException naming the first key diffusers would reject
         */
        public Config {
            ConfigChecks.trainingSchedule(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, stepsOffset,
                    NAME);
            ConfigChecks.oneOf("prediction_type", predictionType,
                    List.of("epsilon", "v_prediction", "sample", "original_sample"),
                    "'" + predictionType + "' must be one of `epsilon`, or `v_prediction` (or sample) for " + NAME);
            ConfigChecks.oneOf("interpolation_type", interpolationType, List.of("linear", "log_linear"),
                    interpolationType
                    + " is not implemented. Please specify interpolation_type to either 'linear' or 'log_linear'");
            KarrasSchedules.sigmaKind(useKarrasSigmas, useExponentialSigmas, useBetaSigmas);
            ConfigChecks.timestepSpacing(timestepSpacing);
            ConfigChecks.oneOf("timestep_type", timestepType, List.of("discrete", "continuous"),
                    "must be 'discrete' or 'continuous', got '" + timestepType + "'");
            ConfigChecks.finalSigmasType(finalSigmasType);
            ConfigChecks.sigmaRange(sigmaMin, sigmaMax);
            trainedBetas = ConfigChecks.copy(trainedBetas);
        }

        @Override
        public double[] trainedBetas() {
            return ConfigChecks.copy(trainedBetas);
        }

        /**
         * {@code EulerDiscreteScheduler.from_config(config, **overrides)}: the configuration those give.
         *
         * @param config    a {@code scheduler_config.json} as a map (keys diffusers does not know are ignored)
         * @param overrides keys that replace the config's, or an empty map
         * @return the checked configuration
         * @throws SchedulerConfigException naming a key diffusers would reject
         */
        public static Config from(Map<String, ?> config, Map<String, ?> overrides) {
            ConfigValues v = ConfigValues.of(config, overrides, NAME, KEYS);
            return new Config(v.numTrainTimesteps(), v.betaStart(), v.betaEnd(), v.betaSchedule(), v.trainedBetas(),
                    v.predictionType(), v.getString("interpolation_type", "linear"),
                    v.getBool("use_karras_sigmas", false), v.getBool("use_exponential_sigmas", false),
                    v.getBool("use_beta_sigmas", false), v.getNullableDouble("sigma_min"),
                    v.getNullableDouble("sigma_max"), v.getString("timestep_spacing", "linspace"),
                    v.getString("timestep_type", "discrete"), v.stepsOffset(), v.rescaleBetasZeroSnr(),
                    v.getString("final_sigmas_type", "zero"));
        }
    }

    private final Config config;
    private float sChurn = 0f;
    private float sTmin = 0f;
    private float sTmax = Float.POSITIVE_INFINITY;
    private float sNoise = 1f;
    private float[] noiseBuf;

    /**
     * A scheduler with {@code config}.
     *
     * @param config the configuration
     */
    public EulerDiscreteScheduler(Config config) {
        super(NAME, config, config.rescaleBetasZeroSnr(), config.timestepSpacing());
        this.config = config;
    }

    /**
     * {@code EulerDiscreteScheduler.from_config(config, **overrides)}.
     *
     * @param config    a {@code scheduler_config.json} as a map
     * @param overrides keys that replace the config's, or an empty map
     * @return the scheduler
     * @throws SchedulerConfigException naming a key diffusers would reject
     */
    public static EulerDiscreteScheduler fromConfig(Map<String, ?> config, Map<String, ?> overrides) {
        return new EulerDiscreteScheduler(Config.from(config, overrides));
    }

    /** {@return the effective configuration} */
    public Config config() {
        return config;
    }

    /**
     * diffusers' {@code step(..., s_churn, s_tmin, s_tmax, s_noise)} keyword arguments (defaults 0, 0, inf, 1).
     * With {@code sChurn > 0} the step draws noise from the {@link NoiseSource}.
     *
     * @param sChurn how much noise to add back per step (0: none)
     * @param sTmin  lowest sigma at which noise is added
     * @param sTmax  highest sigma at which noise is added
     * @param sNoise scale of the added noise
     */
    public void setChurn(float sChurn, float sTmin, float sTmax, float sNoise) {
        this.sChurn = sChurn;
        this.sTmin = sTmin;
        this.sTmax = sTmax;
        this.sNoise = sNoise;
    }

    @Override
    public void setTimesteps(int numInferenceSteps) {
        ConfigChecks.inferenceSteps(numInferenceSteps, config.numTrainTimesteps(), NAME);
        int n = numInferenceSteps;
        double[] ts = KarrasSchedules.asFloat32(Timesteps.spacedTimesteps(config.timestepSpacing(),
                config.numTrainTimesteps(), n, config.stepsOffset(), false));
        ConfigChecks.timestepsInRange(ts, config.numTrainTimesteps(), config.stepsOffset(), NAME);
        double[] sig;
        if (config.interpolationType().equals("linear")) {
            sig = KarrasSchedules.interpSigmas(ts, trainSigmas);
        } else { // log_linear: torch.linspace(log(sigmas[-1]), log(sigmas[0]), n + 1).exp()
            float[] l = BetaSchedules.torchLinspaceF32(logTrainSigmas[logTrainSigmas.length - 1], logTrainSigmas[0],
                    n + 1);
            sig = new double[n + 1];
            for (int i = 0; i <= n; i++) {
                sig[i] = TorchMath.exp(l[i]);
            }
        }
        String kind = KarrasSchedules.sigmaKind(config.useKarrasSigmas(), config.useExponentialSigmas(),
                config.useBetaSigmas());
        if (kind != null) {
            double[][] r = KarrasSchedules.remap(kind, sig, config.sigmaMin(), config.sigmaMax(), n, logTrainSigmas);
            sig = r[0];
            ts = KarrasSchedules.asFloat32(r[1]);
        }
        float last = config.finalSigmasType().equals("sigma_min")
                ? (float) Math.sqrt((1f - alphasCumprod[0]) / alphasCumprod[0]) : 0f;
        float[] s = KarrasSchedules.withFinal(sig, last);
        if (config.timestepType().equals("continuous") && config.predictionType().equals("v_prediction")) {
            ts = new double[s.length - 1];
            for (int i = 0; i < ts.length; i++) {
                ts[i] = 0.25f * TorchMath.log(s[i]);
            }
        }
        setSchedule(ts, s);
    }

    @Override
    public void step(float[] modelOutput, double timestep, float[] sample, float[] out) {
        beginStep(modelOutput, timestep, sample, out);
        float sigma = sigmas[stepIndex];
        double gamma = (sTmin <= sigma && sigma <= sTmax)
                ? Math.min(sChurn / (double) (sigmas.length - 1), Math.sqrt(2) - 1) : 0.0;
        float sigmaHat = sigma * (float) (gamma + 1);
        float[] x = sample;
        if (gamma > 0) {
            if (noiseBuf == null || noiseBuf.length != sample.length) {
                noiseBuf = new float[sample.length];
            }
            drawNoise(noiseBuf);
            float c = (float) Math.sqrt(sigmaHat * sigmaHat - sigma * sigma);
            for (int i = 0; i < sample.length; i++) {
                noiseBuf[i] = sample[i] + noiseBuf[i] * sNoise * c;
            }
            x = noiseBuf;
        }
        float dt = sigmas[stepIndex + 1] - sigmaHat;
        float vA = -sigma / (float) Math.sqrt(sigma * sigma + 1f);
        float vB = sigma * sigma + 1f;
        int len = x.length;
        switch (config.predictionType()) {
            case "epsilon":
                for (int i = 0; i < len; i++) {
                    float s = x[i];
                    float pred = s - sigmaHat * modelOutput[i];
                    out[i] = s + (s - pred) / sigmaHat * dt;
                }
                break;
            case "v_prediction":
                for (int i = 0; i < len; i++) {
                    float s = x[i];
                    float pred = modelOutput[i] * vA + s / vB;
                    out[i] = s + (s - pred) / sigmaHat * dt;
                }
                break;
            default:
                for (int i = 0; i < len; i++) {
                    float s = x[i];
                    out[i] = s + (s - modelOutput[i]) / sigmaHat * dt;
                }
                break;
        }
        stepIndex++;
    }
}
