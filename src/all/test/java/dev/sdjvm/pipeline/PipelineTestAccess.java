package dev.sdjvm.pipeline;

/** Package-private pipeline helpers for tests in other packages. */
public final class PipelineTestAccess {
    private PipelineTestAccess() {
    }

    /**
     * Sees the intermediate tensors of the generations that follow ({@link DiffusionStages.Probe}) until closed.
     *
     * @param probe called with each tensor's name and values
     * @return closing it removes the probe
     */
    public static AutoCloseable probe(java.util.function.BiConsumer<String, float[]> probe) {
        DiffusionStages.probe = probe::accept;
        return () -> DiffusionStages.probe = null;
    }

    /** {@link DiffusionStages#checkFinite}. */
    public static void checkFinite(float[] latents, int step, int steps, double t) {
        DiffusionStages.checkFinite(latents, step, steps, t);
    }
}
