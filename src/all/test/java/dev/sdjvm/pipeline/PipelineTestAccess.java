package dev.sdjvm.pipeline;

/** Package-private pipeline helpers for tests in other packages. */
public final class PipelineTestAccess {
    private PipelineTestAccess() {
    }

    /** {@link DiffusionStages#checkFinite}. */
    public static void checkFinite(float[] latents, int step, int steps, double t) {
        DiffusionStages.checkFinite(latents, step, steps, t);
    }
}
