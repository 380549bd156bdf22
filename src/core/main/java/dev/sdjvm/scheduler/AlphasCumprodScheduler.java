package dev.sdjvm.scheduler;

/**
 * The DDIM-family schedulers (DDIM, PNDM), indexed directly by the integer training timestep: the training
 * {@code alphas_cumprod} plus {@code final_alpha_cumprod} (1 with {@code set_alpha_to_one}, else
 * {@code alphas_cumprod[0]}) for the step past t = 0.
 */
abstract class AlphasCumprodScheduler extends AbstractScheduler {
    /** The float32 training {@code alphas_cumprod}. */
    protected final float[] alphasCumprod;
    private final float finalAlphaCumprod;

    protected AlphasCumprodScheduler(String name, BetaScheduleConfig config, boolean rescaleZeroSnr,
            boolean setAlphaToOne) {
        super(name);
        this.alphasCumprod = BetaSchedules.trainingAlphasCumprod(config, rescaleZeroSnr, name);
        this.finalAlphaCumprod = setAlphaToOne ? 1f : alphasCumprod[0];
    }

    /** {@code alphas_cumprod[t]}, or {@code final_alpha_cumprod} for t &lt; 0. */
    protected final float alphaProd(long t) {
        return t >= 0 ? alphasCumprod[(int) t] : finalAlphaCumprod;
    }

    /**
     * diffusers' {@code add_noise(original, noise, t)}: {@code sqrt(alphas_cumprod[t]) * original +
     * sqrt(1 - alphas_cumprod[t]) * noise} in float32 (img2img / inpainting), written into {@code out}.
     *
     * @param original the clean sample
     * @param noise    standard-normal noise, as long as {@code original}
     * @param timestep the timestep whose noise level is applied
     * @param out      where the noisy sample goes (may be {@code original})
     */
    @Override
    public void addNoise(float[] original, float[] noise, double timestep, float[] out) {
        checkSameLength(noise, original, "noise");
        checkSameLength(out, original, "out");
        float ac = alphasCumprod[(int) timestep];
        mixVp(original, noise, (float) Math.sqrt(ac), (float) Math.sqrt(1f - ac), out);
    }
}
