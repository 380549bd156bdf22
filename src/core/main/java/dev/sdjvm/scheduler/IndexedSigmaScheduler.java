package dev.sdjvm.scheduler;

/**
 * A scheduler with a sigma table (one more sigma than timesteps) walked by diffusers' {@code step_index}, which is
 * looked up from the first timestep given to {@code step} or {@code scale_model_input}; the sigmas derive from the
 * training {@code alphas_cumprod}.
 */
abstract class IndexedSigmaScheduler extends AbstractScheduler {
    /** The float32 training {@code alphas_cumprod}. */
    protected final float[] alphasCumprod;
    /** {@code ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5}, ascending with t. */
    protected final float[] trainSigmas;
    /** float32 {@code log} of {@link #trainSigmas}. */
    protected final float[] logTrainSigmas;
    /** The current sigmas (float32, the final sigma appended), or null before {@link #setTimesteps}. */
    protected float[] sigmas;
    /** diffusers' {@code step_index}, -1 before the first step. */
    protected int stepIndex = -1;
    /** diffusers' {@code begin_index} ({@link #setBeginIndex}), -1 = None (reset by every new schedule). */
    protected int beginIndex = -1;

    /**
     * Builds the training tables of {@code config}'s beta schedule; with {@code rescaleZeroSnr} the betas are
     * rescaled to zero terminal SNR and, as diffusers does for sigma-based schedulers, the last
     * {@code alphas_cumprod} is set to {@code 2**-24} so the last sigma stays finite.
     */
    protected IndexedSigmaScheduler(String name, BetaScheduleConfig config, boolean rescaleZeroSnr) {
        super(name);
        this.alphasCumprod = BetaSchedules.trainingAlphasCumprod(config, rescaleZeroSnr, name);
        if (rescaleZeroSnr) {
            alphasCumprod[alphasCumprod.length - 1] = 0x1.0p-24f;
        }
        this.trainSigmas = BetaSchedules.sigmasFromAlphasCumprod(alphasCumprod);
        this.logTrainSigmas = SigmaSchedules.logF32(trainSigmas);
    }

    @Override
    public float[] sigmas() {
        checkSet(sigmas);
        return sigmas.clone();
    }

    /** Installs a new schedule and resets the step and begin indices (diffusers' {@code set_timesteps}). */
    protected final void setSchedule(double[] timesteps, float[] sigmas) {
        this.timesteps = timesteps;
        this.sigmas = sigmas;
        this.stepIndex = -1;
        this.beginIndex = -1;
    }

    /**
     * diffusers' {@code set_begin_index}: the first step runs at index {@code beginIndex} of the schedule, and
     * {@link #addNoise} before the first step uses that index's sigma (image-to-image and inpainting start there).
     *
     * @param beginIndex 0..the number of timesteps
     * @throws IllegalStateException    before {@link #setTimesteps}
     * @throws IllegalArgumentException for an index outside the schedule
     */
    @Override
    public final void setBeginIndex(int beginIndex) {
        checkSet(timesteps);
        if (beginIndex < 0 || beginIndex > timesteps.length) {
            throw new IllegalArgumentException("begin index " + beginIndex + " outside 0.." + timesteps.length);
        }
        this.beginIndex = beginIndex;
    }

    /**
     * diffusers' {@code _init_step_index}, on first use: the begin index when one is set, else the index of
     * {@code timestep} in the schedule.
     */
    protected final void initStepIndex(double timestep) {
        if (stepIndex < 0) {
            stepIndex = beginIndex >= 0 ? beginIndex : Timesteps.indexForTimestep(timesteps, timestep);
        }
    }

    /** The argument checks and step-index lookup a step starts with; fails once every step is done. */
    protected final void beginStep(float[] modelOutput, double timestep, float[] sample, float[] out) {
        checkStepArgs(modelOutput, sample, out);
        initStepIndex(timestep);
        if (stepIndex >= timesteps.length) {
            throw new IllegalStateException(name() + ": all steps are done; call setTimesteps");
        }
    }

    /**
     * The sigma {@code add_noise} applies, looked up as diffusers does: without a begin index, that of
     * {@code timestep} in the schedule; with one, the current step index once the loop has started (inpainting
     * noises the known region to the next step's level after each step), else the begin index (the start latents).
     */
    protected final float sigmaAt(double timestep) {
        checkSet(timesteps);
        if (beginIndex < 0) {
            return sigmas[Timesteps.indexForTimestep(timesteps, timestep)];
        }
        return sigmas[stepIndex >= 0 ? stepIndex : beginIndex];
    }

    /**
     * Variance-preserving {@code add_noise} at the sigma of {@code timestep}: {@code alpha_t * original + sigma_t *
     * noise} with {@code alpha_t = 1 / sqrt(sigma^2 + 1)}, {@code sigma_t = sigma * alpha_t}.
     */
    protected final void addNoiseAtSigma(float[] original, float[] noise, double timestep, float[] out) {
        checkSet(timesteps);
        checkSameLength(noise, original, "noise");
        checkSameLength(out, original, "out");
        float sigma = sigmaAt(timestep);
        float alphaT = LambdaStep.alphaOf(sigma);
        mixVp(original, noise, alphaT, sigma * alphaT, out);
    }
}
