package dev.sdjvm.scheduler;

/**
 * Standard-normal noise for stochastic schedulers (ancestral, SDE). A scheduler calls {@link #fill} once per
 * step that needs noise, with an array the size of the sample; the values must be what
 * {@code torch.randn(sample.shape, generator=g)} returns, flat in row-major order, for results to match diffusers.
 * The pipeline passes a source that continues the torch CPU generator used for the initial latents (as diffusers
 * passes {@code generator} to {@code step}); tests inject deterministic ones.
 */
@FunctionalInterface
public interface NoiseSource {
    /**
     * Fills {@code out} with standard normals.
     *
     * @param out the array to fill, the size of the sample
     */
    void fill(float[] out);
}
