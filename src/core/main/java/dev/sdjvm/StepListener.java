package dev.sdjvm;

import dev.sdjvm.errors.GenerationCancelledException;

/**
 * Called after every denoising step of a generation, on the generating thread. Return {@code false} to cancel: the
 * generation then ends with a {@link GenerationCancelledException} and no images. Keep it quick: it runs inside the
 * denoising loop.
 */
@FunctionalInterface
public interface StepListener {
    /**
     * @param step       1-based index of the finished step
     * @param totalSteps number of steps of this generation
     * @param timestep   the scheduler timestep of the finished step
     * @param elapsedNanos time since the loop started
     * @return true to go on, false to cancel
     */
    boolean onStep(int step, int totalSteps, double timestep, long elapsedNanos);
}
