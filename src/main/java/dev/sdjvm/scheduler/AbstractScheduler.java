package dev.sdjvm.scheduler;

/** Shared plumbing: noise source, batch size, argument checks. */
abstract class AbstractScheduler implements Scheduler {
    protected NoiseSource noise;
    protected int batchSize = 1;

    @Override
    public void setNoiseSource(NoiseSource noise) {
        this.noise = noise;
    }

    @Override
    public void setBatchSize(int batchSize) {
        if (batchSize < 1) {
            throw new dev.sdjvm.InvalidRequestException("batch_size", "must be at least 1, got " + batchSize);
        }
        this.batchSize = batchSize;
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
}
