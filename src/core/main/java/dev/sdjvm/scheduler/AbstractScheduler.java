package dev.sdjvm.scheduler;

/**
 * Shared plumbing: noise source, batch size, the timestep table, argument checks, and diffusers'
 * {@code SchedulerMixin} defaults for variance-preserving schedulers (unit initial noise, model input = sample),
 * which the sigma-based schedulers override.
 */
abstract class AbstractScheduler implements Scheduler {
    protected NoiseSource noise;
    protected int batchSize = 1;
    /** The current schedule in loop order, or null before {@link #setTimesteps}. */
    protected double[] timesteps;
    private final String name;

    protected AbstractScheduler(String name) {
        this.name = name;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public void setNoiseSource(NoiseSource noise) {
        this.noise = noise;
    }

    @Override
    public void setBatchSize(int batchSize) {
        if (batchSize < 1) {
            throw new dev.sdjvm.errors.InvalidRequestException("batch_size", "must be at least 1, got " + batchSize);
        }
        this.batchSize = batchSize;
    }

    @Override
    public double[] timesteps() {
        checkSet(timesteps);
        return timesteps.clone();
    }

    /** diffusers' default {@code init_noise_sigma = 1.0}. */
    @Override
    public float initNoiseSigma() {
        return 1f;
    }

    /** diffusers' default {@code scale_model_input}: the sample itself (copied into {@code out}). */
    @Override
    public void scaleModelInput(float[] sample, double timestep, float[] out) {
        if (out != sample) {
            System.arraycopy(sample, 0, out, 0, sample.length);
        }
    }

    /** Fills {@code buf} from the noise source, or fails clearly when none is set. */
    protected final void drawNoise(float[] buf) {
        if (noise == null) {
            throw new IllegalStateException(name() + " is stochastic and needs a NoiseSource: call setNoiseSource "
                    + "before step (the pipeline sets one that continues its torch generator)");
        }
        noise.fill(buf);
    }

    protected static void checkSameLength(float[] a, float[] b, String what) {
        if (a.length != b.length) {
            throw new IllegalArgumentException(what + ": length " + a.length + " != sample length " + b.length);
        }
    }

    protected final void checkSet(Object timesteps) {
        if (timesteps == null) {
            throw new IllegalStateException("Number of inference steps is not set: call setTimesteps before "
                    + "using " + name());
        }
    }

    /** The checks every {@code step} starts with: a schedule is set, the arrays have the sample's length. */
    protected final void checkStepArgs(float[] modelOutput, float[] sample, float[] out) {
        checkSet(timesteps);
        checkSameLength(modelOutput, sample, "model output");
        checkSameLength(out, sample, "out");
    }

    /** {@code out = alpha * original + sigma * noise} in float32. */
    protected static void mixVp(float[] original, float[] noise, float alpha, float sigma, float[] out) {
        for (int i = 0; i < original.length; i++) {
            out[i] = alpha * original[i] + sigma * noise[i];
        }
    }
}
