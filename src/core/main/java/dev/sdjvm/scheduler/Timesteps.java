package dev.sdjvm.scheduler;

import java.util.List;

/**
 * The inference timesteps for a {@code timestep_spacing} (numpy's {@code linspace}/{@code arange}/{@code round}, half
 * to even), diffusers' {@code index_for_timestep}, and the step-count checks diffusers makes in
 * {@code set_timesteps}.
 */
final class Timesteps {
    static final List<String> TIMESTEP_SPACINGS = List.of("linspace", "leading", "trailing");

    private Timesteps() {
    }

    /**
     * The single-step schedulers' descending timesteps for {@code spacing} ({@code n} of them): linspace is
     * {@code np.linspace(0, numTrain - 1, n)[::-1]}, rounded ({@code roundLinspace}: DDIM, PNDM) or stored as float32
     * (Euler, Euler ancestral, LMS); leading {@code arange(0, n) * (numTrain // n) + steps_offset}; trailing
     * {@code round(arange(numTrain, 0, -numTrain / n)) - 1}.
     */
    static double[] spacedTimesteps(String spacing, int numTrain, int n, int stepsOffset, boolean roundLinspace) {
        return spacedTimesteps(spacing, numTrain, numTrain, n, n, stepsOffset, roundLinspace);
    }

    /**
     * The multistep solvers' (DPM-Solver, UniPC) descending timesteps: {@code n + 1} points over
     * {@code [0, lastTimestep)} of which the last (0) is dropped, linspace rounded ({@code lastTimestep} is below
     * {@code numTrain} when {@code lambda_min_clipped} clips the end of the schedule; trailing keeps the step
     * {@code numTrain / n}).
     */
    static double[] multistepTimesteps(String spacing, int numTrain, int lastTimestep, int n, int stepsOffset) {
        return spacedTimesteps(spacing, numTrain, lastTimestep, n, n + 1, stepsOffset, true);
    }

    /** The first {@code n} of {@code points} spaced timesteps over {@code [0, lastTimestep)}, descending. */
    private static double[] spacedTimesteps(String spacing, int numTrain, int lastTimestep, int n, int points,
            int stepsOffset, boolean roundLinspace) {
        double[] ts;
        switch (spacing) {
            case "linspace": {
                double[] lin = NumpyMath.linspace(0, lastTimestep - 1, points);
                ts = new double[n];
                for (int k = 0; k < n; k++) {
                    double v = lin[points - 1 - k];
                    ts[k] = roundLinspace ? Math.rint(v) : (double) (float) v;
                }
                break;
            }
            case "leading": {
                int stepRatio = lastTimestep / points;
                ts = new double[n];
                for (int k = 0; k < n; k++) {
                    ts[k] = (double) (points - 1 - k) * stepRatio + stepsOffset;
                }
                break;
            }
            case "trailing":
                ts = trailingTimesteps(numTrain, lastTimestep, n);
                break;
            default:
                throw new SchedulerConfigException("timestep_spacing", spacing
                        + " is not supported. Please make sure to choose one of 'linspace', 'leading' or 'trailing'.");
        }
        return ts;
    }

    /** {@code np.round(np.arange(lastTimestep, 0, -numTrain / n)) - 1}. */
    private static double[] trailingTimesteps(int numTrain, int lastTimestep, int n) {
        double stepRatio = (double) numTrain / n;
        double[] ar = NumpyMath.arange(lastTimestep, 0, -stepRatio);
        double[] ts = new double[ar.length];
        for (int k = 0; k < ar.length; k++) {
            ts[k] = Math.rint(ar[k]) - 1;
        }
        return ts;
    }

    /** Index of {@code timestep} in {@code timesteps} as diffusers' {@code index_for_timestep}: the second match if
     *  there are several, the last index if none. */
    static int indexForTimestep(double[] timesteps, double timestep) {
        int first = -1;
        for (int i = 0; i < timesteps.length; i++) {
            if (timesteps[i] == timestep) {
                if (first >= 0) {
                    return i;
                }
                first = i;
            }
        }
        return first >= 0 ? first : timesteps.length - 1;
    }

    /** Rejects a non-positive step count (diffusers would fail later with an index error). */
    static void checkSteps(int numInferenceSteps, String className) {
        if (numInferenceSteps < 1) {
            throw new dev.sdjvm.errors.InvalidRequestException("num_inference_steps",
                    "must be at least 1, got " + numInferenceSteps + " (" + className + ")");
        }
    }

    /** diffusers' DDIM/Euler check: no more inference steps than training timesteps. */
    static void checkNotAboveTrain(int numInferenceSteps, int numTrainTimesteps, String className) {
        if (numInferenceSteps > numTrainTimesteps) {
            throw new dev.sdjvm.errors.InvalidRequestException("num_inference_steps", "`num_inference_steps`: "
                    + numInferenceSteps + " cannot be larger than `num_train_timesteps`: " + numTrainTimesteps
                    + " as the unet model trained with this scheduler can only handle maximal " + numTrainTimesteps
                    + " timesteps (" + className + ")");
        }
    }
}
