package dev.sdjvm.scheduler;

/**
 * A diffusers noise scheduler in pure Java, on float32 arrays in row-major order (the flattened tensor).
 *
 * <p>Mirrors diffusers' {@code SchedulerMixin}: {@link #setTimesteps}, {@link #timesteps}, {@link #initNoiseSigma},
 * {@link #scaleModelInput} and {@link #step}. Schedulers are <b>stateful</b> (multistep history, step index):
 * use one instance per generation and call {@link #setTimesteps} before the loop; instances are not thread-safe.
 *
 * <p>The arrays hold one sample (e.g. [1,4,64,64] flattened). Output arrays may be the same array as the input
 * (in place); implementations allocate their history buffers once and reuse them, so the denoising loop does
 * not allocate per step.
 */
public interface Scheduler {
    /** {@return the diffusers class name, e.g. {@code DPMSolverMultistepScheduler}} */
    String name();

    /**
     * Computes the timesteps (and sigmas) for {@code numInferenceSteps} and resets the step state.
     *
     * @param numInferenceSteps the number of denoising steps, &gt;= 1
     * @throws dev.sdjvm.errors.InvalidRequestException if the count is out of range for this scheduler's config
     */
    void setTimesteps(int numInferenceSteps);

    /** {@return the timesteps of the current schedule, in the order the loop visits them (a copy; integral for most schedulers)} */
    double[] timesteps();

    /** {@return the standard deviation of the initial noise: latents = randn * initNoiseSigma} */
    float initNoiseSigma();

    /**
     * Writes the model input for {@code timestep} into {@code out}.
     *
     * @param sample   the current sample
     * @param timestep the timestep of this step
     * @param out      where the scaled input goes (may be {@code sample})
     */
    void scaleModelInput(float[] sample, double timestep, float[] out);

    /**
     * One denoising step: from the model output at {@code timestep} and the current {@code sample}, writes the
     * previous sample into {@code out}.
     *
     * @param modelOutput the model's prediction (after classifier-free guidance)
     * @param timestep    the timestep of this step
     * @param sample      the current sample
     * @param out         where the previous sample goes (may be {@code sample})
     */
    void step(float[] modelOutput, double timestep, float[] sample, float[] out);

    /**
     * diffusers' {@code add_noise(original_samples, noise, timesteps)}: the forward diffusion of a clean sample to the
     * noise level of {@code timestep}, written into {@code out}. Image-to-image and inpainting start from it. A
     * scheduler with a begin index ({@link #setBeginIndex}) takes the level from that index before the first step
     * and from its step index after it, as diffusers does; the others from {@code timestep}.
     *
     * @param original the clean sample
     * @param noise    standard-normal noise, as long as {@code original}
     * @param timestep the timestep whose noise level is applied (when no begin index decides)
     * @param out      where the noisy sample goes (may be {@code original})
     * @throws UnsupportedOperationException when this scheduler has no {@code add_noise} (every scheduler of this
     *                                       library has one)
     */
    default void addNoise(float[] original, float[] noise, double timestep, float[] out) {
        throw new UnsupportedOperationException(name() + " has no add_noise");
    }

    /**
     * diffusers' {@code set_begin_index}, called after {@link #setTimesteps} by the pipelines that run only the tail
     * of the schedule (image-to-image, inpainting: {@code strength}): the first step runs at index
     * {@code beginIndex}. Ignored by the schedulers diffusers gives no begin index (DDIM, PNDM: they look every
     * timestep up by value). Reset by {@link #setTimesteps}.
     *
     * @param beginIndex the index of the first timestep to run, 0..the number of timesteps
     */
    default void setBeginIndex(int beginIndex) {
    }

    /**
     * Sets the source of the noise a stochastic scheduler draws; ignored by deterministic ones.
     *
     * @param noise e.g. a {@code TorchGenerator}'s {@code randn}: {@code generator::randn}
     */
    default void setNoiseSource(NoiseSource noise) {
    }

    /**
     * Number of samples in the arrays (the leading dimension, default 1). Only per-sample operations use it:
     * dynamic thresholding (a quantile per sample) and {@code variance_type} learned outputs.
     *
     * @param batchSize samples in the arrays, &gt;= 1
     */
    default void setBatchSize(int batchSize) {
    }

    /** {@return the sigmas of the current schedule (a copy; one more than the timesteps), or null if this scheduler has none} */
    default float[] sigmas() {
        return null;
    }
}
