package dev.sdjvm.scheduler;

/**
 * The k-diffusion style discrete schedulers (Euler, Euler ancestral, LMS): sigmas from the training
 * {@code alphas_cumprod}, model input scaled by {@code 1 / sqrt(sigma^2 + 1)}, initial noise scaled by the largest
 * sigma, and {@code add_noise} as {@code original + noise * sigma}.
 */
abstract class SigmaDiscreteScheduler extends IndexedSigmaScheduler {
    private final String timestepSpacing;

    protected SigmaDiscreteScheduler(String name, BetaScheduleConfig config, boolean rescaleZeroSnr,
            String timestepSpacing) {
        super(name, config, rescaleZeroSnr);
        this.timestepSpacing = timestepSpacing;
    }

    @Override
    public float initNoiseSigma() {
        if (sigmas == null) {
            float max = 0;
            for (float v : trainSigmas) {
                max = Math.max(max, v);
            }
            return KarrasSchedules.initNoiseSigma(new float[] {max}, timestepSpacing);
        }
        return KarrasSchedules.initNoiseSigma(sigmas, timestepSpacing);
    }

    @Override
    public void scaleModelInput(float[] sample, double timestep, float[] out) {
        checkSet(timesteps);
        initStepIndex(timestep);
        KarrasSchedules.scaleInput(sample, sigmas[stepIndex], out);
    }

    /**
     * diffusers' {@code add_noise}: {@code original + noise * sigma(t)}.
     *
     * @param original the clean sample
     * @param noise    standard-normal noise, as long as {@code original}
     * @param timestep the timestep whose noise level is applied
     * @param out      where the noisy sample goes (may be {@code original})
     */
    @Override
    public void addNoise(float[] original, float[] noise, double timestep, float[] out) {
        float sigma = sigmaAt(timestep);
        for (int i = 0; i < original.length; i++) {
            out[i] = original[i] + noise[i] * sigma;
        }
    }
}
