package dev.sdjvm.pipeline;

/** Called after every denoising step (the facade's {@code StepListener}); false cancels the generation. */
@FunctionalInterface
public interface StepCallback {
    /**
     * One finished step.
     *
     * @param step         1-based index of the finished step
     * @param totalSteps   number of steps of this generation
     * @param timestep     the scheduler timestep of the finished step
     * @param elapsedNanos time since the loop started
     * @return true to go on, false to cancel
     */
    boolean onStep(int step, int totalSteps, double timestep, long elapsedNanos);
}
