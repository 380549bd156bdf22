package dev.sdjvm.scheduler;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * diffusers' {@code LMSDiscreteScheduler} (linear multistep, k-diffusion's {@code sample_lms}), reproducing
 * diffusers 0.40. The multistep coefficients are the exact integrals of the Lagrange basis polynomials (diffusers
 * integrates them numerically with {@code scipy.integrate.quad}, epsrel 1e-4, which is exact to float precision
 * for these cubic-or-lower polynomials).
 */
public final class LMSDiscreteScheduler extends SigmaDiscreteScheduler {
    /** diffusers' class name. */
    public static final String NAME = "LMSDiscreteScheduler";

    static final Set<String> KEYS = ConfigValues.withTrainingKeys("use_karras_sigmas", "use_exponential_sigmas",
            "use_beta_sigmas", "prediction_type", "timestep_spacing", "steps_offset");

    /**
     * The effective configuration, diffusers' keys camelCased.
     *
     * @param numTrainTimesteps    {@code num_train_timesteps}
     * @param betaStart            {@code beta_start}
     * @param betaEnd              {@code beta_end}
     * @param betaSchedule         {@code beta_schedule}
     * @param trainedBetas         {@code trained_betas}, or null
     * @param useKarrasSigmas      {@code use_karras_sigmas}
     * @param useExponentialSigmas {@code use_exponential_sigmas}
     * @param useBetaSigmas        {@code use_beta_sigmas}
     * @param predictionType       {@code prediction_type}
     * @param timestepSpacing      {@code timestep_spacing}
     * @param stepsOffset          {@code steps_offset}
     */
    public record Config(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, boolean useKarrasSigmas, boolean useExponentialSigmas, boolean useBetaSigmas,
            String predictionType, String timestepSpacing, int stepsOffset) implements BetaScheduleConfig {

        /**
         * Validates like diffusers.
         *
         * @param numTrainTimesteps    {@code num_train_timesteps}
         * @param betaStart            {@code beta_start}
         * @param betaEnd              {@code beta_end}
         * @param betaSchedule         {@code beta_schedule}
         * @param trainedBetas         {@code trained_betas}, or null
         * @param useKarrasSigmas      {@code use_karras_sigmas}
         * @param useExponentialSigmas {@code use_exponential_sigmas}
         * @param useBetaSigmas        {@code use_beta_sigmas}
         * @param predictionType       {@code prediction_type}
         * @param timestepSpacing      {@code timestep_spacing}
         * @param stepsOffset          {@code steps_offset}
         * @throws SchedulerConfigException naming the first key diffusers would reject
         */
        public Config {
            ConfigChecks.trainingSchedule(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, stepsOffset,
                    NAME);
            KarrasSchedules.sigmaKind(useKarrasSigmas, useExponentialSigmas, useBetaSigmas);
            ConfigChecks.oneOf("prediction_type", predictionType, List.of("epsilon", "v_prediction", "sample"),
                    "'" + predictionType + "' must be one of `epsilon`, `sample`, or `v_prediction`");
            ConfigChecks.timestepSpacing(timestepSpacing);
            trainedBetas = ConfigChecks.copy(trainedBetas);
        }

        @Override
        public double[] trainedBetas() {
            return ConfigChecks.copy(trainedBetas);
        }

        /**
         * {@code LMSDiscreteScheduler.from_config(config, **overrides)}: the configuration those give.
         *
         * @param config    a {@code scheduler_config.json} as a map (keys diffusers does not know are ignored)
         * @param overrides keys that replace the config's, or an empty map
         * @return the checked configuration
         * @throws SchedulerConfigException naming a key diffusers would reject
         */
        public static Config from(Map<String, ?> config, Map<String, ?> overrides) {
            ConfigValues v = ConfigValues.of(config, overrides, NAME, KEYS);
            return new Config(v.numTrainTimesteps(), v.betaStart(), v.betaEnd(), v.betaSchedule(), v.trainedBetas(),
                    v.getBool("use_karras_sigmas", false), v.getBool("use_exponential_sigmas", false),
                    v.getBool("use_beta_sigmas", false), v.predictionType(),
                    v.getString("timestep_spacing", "linspace"), v.stepsOffset());
        }
    }

    private final Config config;
    private int order = 4;
    private float[][] derivatives; // ring, derivatives[(start + i) % order]
    private int derivCount;
    private int derivStart;
    private final double[] coeffs = new double[4];

    /**
     * A scheduler with {@code config}.
     *
     * @param config the configuration
     */
    public LMSDiscreteScheduler(Config config) {
        super(NAME, config, false, config.timestepSpacing());
        this.config = config;
    }

    /**
     * {@code LMSDiscreteScheduler.from_config(config, **overrides)}.
     *
     * @param config    a {@code scheduler_config.json} as a map
     * @param overrides keys that replace the config's, or an empty map
     * @return the scheduler
     * @throws SchedulerConfigException naming a key diffusers would reject
     */
    public static LMSDiscreteScheduler fromConfig(Map<String, ?> config, Map<String, ?> overrides) {
        return new LMSDiscreteScheduler(Config.from(config, overrides));
    }

    /** {@return the effective configuration} */
    public Config config() {
        return config;
    }

    /**
     * diffusers' {@code step(..., order=4)} argument: the multistep order.
     *
     * @param order 1 to 4 (default 4)
     * @throws dev.sdjvm.errors.InvalidRequestException for another order
     */
    public void setOrder(int order) {
        if (order < 1 || order > 4) {
            throw new dev.sdjvm.errors.InvalidRequestException("order", "must be 1 to 4, got " + order);
        }
        this.order = order;
        this.derivatives = null;
        this.derivCount = 0;
    }

    @Override
    public void setTimesteps(int n) {
        ConfigChecks.inferenceSteps(n, config.numTrainTimesteps(), NAME);
        double[] ts = Timesteps.spacedTimesteps(config.timestepSpacing(), config.numTrainTimesteps(), n,
                config.stepsOffset(), false);
        ConfigChecks.timestepsInRange(ts, config.numTrainTimesteps(), config.stepsOffset(), NAME);
        double[] sig = KarrasSchedules.interpSigmas(ts, trainSigmas);
        String kind = KarrasSchedules.sigmaKind(config.useKarrasSigmas(), config.useExponentialSigmas(),
                config.useBetaSigmas());
        if (kind != null) {
            double[][] r = KarrasSchedules.remap(kind, sig, null, null, n, logTrainSigmas);
            sig = r[0];
            ts = r[1];
        }
        setSchedule(KarrasSchedules.asFloat32(ts), KarrasSchedules.withFinal(sig, 0f));
        this.derivCount = 0;
        this.derivStart = 0;
    }

    /** {@code get_lms_coefficient(order, t, current_order)}: the integral over [sigma_t, sigma_t+1]. */
    private double lmsCoefficient(int ord, int t, int current) {
        // 4-point Gauss-Legendre: exact for the degree <= 3 Lagrange basis polynomial
        final double[] x = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526};
        final double[] w = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538};
        double a = sigmas[t];
        double b = sigmas[t + 1];
        double half = (b - a) / 2;
        double mid = (a + b) / 2;
        double sum = 0;
        for (int q = 0; q < 4; q++) {
            double tau = mid + half * x[q];
            double prod = 1.0;
            for (int k = 0; k < ord; k++) {
                if (k == current) {
                    continue;
                }
                prod *= (tau - sigmas[t - k]) / ((double) sigmas[t - current] - sigmas[t - k]);
            }
            sum += w[q] * prod;
        }
        return sum * half;
    }

    @Override
    public void step(float[] modelOutput, double timestep, float[] sample, float[] out) {
        beginStep(modelOutput, timestep, sample, out);
        int len = sample.length;
        if (derivatives == null || derivatives.length != order || derivatives[0].length != len) {
            derivatives = new float[order][len];
            derivCount = 0;
            derivStart = 0;
        }
        float sigma = sigmas[stepIndex];
        // append the derivative, dropping the oldest beyond `order`
        if (derivCount == order) {
            derivStart = (derivStart + 1) % order;
            derivCount--;
        }
        float[] d = derivatives[(derivStart + derivCount) % order];
        derivCount++;
        String pt = config.predictionType();
        float vA = -sigma / (float) Math.sqrt(sigma * sigma + 1f);
        float vB = sigma * sigma + 1f;
        for (int i = 0; i < len; i++) {
            float s = sample[i];
            float m = modelOutput[i];
            float pred;
            switch (pt) {
                case "epsilon":
                    pred = s - sigma * m;
                    break;
                case "v_prediction":
                    pred = m * vA + s / vB;
                    break;
                default:
                    pred = m;
                    break;
            }
            d[i] = (s - pred) / sigma;
        }
        int ord = Math.min(stepIndex + 1, order);
        for (int c = 0; c < ord; c++) {
            coeffs[c] = lmsCoefficient(ord, stepIndex, c);
        }
        int terms = Math.min(ord, derivCount);
        for (int i = 0; i < len; i++) {
            float acc = 0f;
            for (int c = 0; c < terms; c++) {
                float[] dc = derivatives[(derivStart + derivCount - 1 - c) % order]; // newest first
                float term = (float) coeffs[c] * dc[i];
                acc = c == 0 ? term : acc + term;
            }
            out[i] = sample[i] + acc;
        }
        stepIndex++;
    }
}
