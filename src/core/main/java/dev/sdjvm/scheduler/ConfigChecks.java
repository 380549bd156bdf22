package dev.sdjvm.scheduler;

import java.util.List;

/**
 * The validations the scheduler {@code Config} records share, each failing with a {@link SchedulerConfigException}
 * that names the key (messages follow diffusers' where diffusers has one).
 */
final class ConfigChecks {
    private ConfigChecks() {
    }

    /**
     * Largest {@code num_train_timesteps} accepted: 10x SD's 1000 (4000 is the largest in published configs). The
     * training tables are built per generation, so this bounds their memory and time (a config with 2e9 timesteps
     * would otherwise exhaust the heap).
     */
    static final int MAX_TRAIN_TIMESTEPS = 10_000;

    /**
     * The training-schedule keys every scheduler takes, range-checked and cross-checked: {@code num_train_timesteps}
     * in 2..{@value #MAX_TRAIN_TIMESTEPS}; {@code beta_start} and {@code beta_end} in (0, 1) (a beta of 0 or 1 makes
     * a sigma of 0 or infinity); {@code trained_betas}, if given, one value in (0, 1) per training timestep;
     * {@code steps_offset} in 0..num_train_timesteps-1; a known {@code beta_schedule}.
     */
    static void trainingSchedule(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, int stepsOffset, String className) {
        if (numTrainTimesteps < 2 || numTrainTimesteps > MAX_TRAIN_TIMESTEPS) {
            throw new SchedulerConfigException("num_train_timesteps", "must be in 2.." + MAX_TRAIN_TIMESTEPS + ", got "
                    + numTrainTimesteps);
        }
        if (trainedBetas == null) {
            openUnit("beta_start", betaStart);
            openUnit("beta_end", betaEnd);
        } else {
            if (trainedBetas.length != numTrainTimesteps) {
                throw new SchedulerConfigException("trained_betas", "has " + trainedBetas.length
                        + " values but num_train_timesteps is " + numTrainTimesteps);
            }
            for (int i = 0; i < trainedBetas.length; i++) {
                if (!(trainedBetas[i] > 0 && trainedBetas[i] < 1)) {
                    throw new SchedulerConfigException("trained_betas", "element " + i + " must be in (0, 1), got "
                            + trainedBetas[i]);
                }
            }
        }
        if (stepsOffset < 0 || stepsOffset >= numTrainTimesteps) {
            throw new SchedulerConfigException("steps_offset", "must be in 0.." + (numTrainTimesteps - 1)
                    + " (below num_train_timesteps), got " + stepsOffset);
        }
        betaSchedule(numTrainTimesteps, betaSchedule, trainedBetas, className);
    }

    private static void openUnit(String key, double v) {
        if (!(v > 0 && v < 1)) {
            throw new SchedulerConfigException(key, "must be in (0, 1), got " + v);
        }
    }

    /** {@code value} is finite and &gt; 0. */
    static void positive(String key, double value) {
        if (!(value > 0) || Double.isInfinite(value)) {
            throw new SchedulerConfigException(key, "must be a finite number > 0, got " + value);
        }
    }

    /**
     * Dynamic thresholding: {@code dynamic_thresholding_ratio} is a quantile in [0, 1] and {@code sample_max_value}
     * is finite and &gt; 0 (checked whether or not {@code thresholding} is on, so a bad config fails when it is read).
     */
    static void thresholding(double dynamicThresholdingRatio, double sampleMaxValue) {
        if (!(dynamicThresholdingRatio >= 0 && dynamicThresholdingRatio <= 1)) {
            throw new SchedulerConfigException("dynamic_thresholding_ratio",
                    "must be in [0, 1], got " + dynamicThresholdingRatio);
        }
        positive("sample_max_value", sampleMaxValue);
    }

    /** {@code sigma_min} / {@code sigma_max}: each null or finite and &gt; 0, and min &lt; max when both are given. */
    static void sigmaRange(Double sigmaMin, Double sigmaMax) {
        if (sigmaMin != null) {
            positive("sigma_min", sigmaMin);
        }
        if (sigmaMax != null) {
            positive("sigma_max", sigmaMax);
        }
        if (sigmaMin != null && sigmaMax != null && !(sigmaMin < sigmaMax)) {
            throw new SchedulerConfigException("sigma_min", "must be below sigma_max (" + sigmaMax + "), got "
                    + sigmaMin);
        }
    }

    /**
     * A request's step count against the training schedule: at most {@code num_train_timesteps} steps (diffusers'
     * DDIM/Euler check, applied to every scheduler: more steps than training timesteps repeat timesteps).
     */
    static void inferenceSteps(int numInferenceSteps, int numTrainTimesteps, String className) {
        Timesteps.checkSteps(numInferenceSteps, className);
        Timesteps.checkNotAboveTrain(numInferenceSteps, numTrainTimesteps, className);
    }

    /**
     * Every spaced timestep indexes the training schedule ({@code 0 <= t < num_train_timesteps}); with
     * {@code timestep_spacing} leading, {@code steps_offset} can push the first one past it (diffusers then fails
     * with an IndexError in DDIM/PNDM and silently repeats the last sigma in the others).
     */
    static void timestepsInRange(double[] timesteps, int numTrainTimesteps, int stepsOffset, String className) {
        for (double t : timesteps) {
            if (!(t >= 0 && t < numTrainTimesteps)) {
                throw new dev.sdjvm.errors.InvalidRequestException("num_inference_steps", timesteps.length
                        + " steps reach timestep " + (long) t + ", outside the training schedule 0.."
                        + (numTrainTimesteps - 1) + " (steps_offset " + stepsOffset + ", " + className
                        + "); use fewer steps or another timestep_spacing");
            }
        }
    }

    /** {@code num_train_timesteps >= 2}, and a known {@code beta_schedule} unless {@code trained_betas} is given. */
    static void betaSchedule(int numTrainTimesteps, String betaSchedule, double[] trainedBetas, String className) {
        if (numTrainTimesteps < 2) {
            throw new SchedulerConfigException("num_train_timesteps", "must be at least 2, got " + numTrainTimesteps);
        }
        if (trainedBetas == null && !BetaSchedules.BETA_SCHEDULES.contains(betaSchedule)) {
            throw new SchedulerConfigException("beta_schedule", "'" + betaSchedule + "' is not implemented for "
                    + className + "; use one of " + BetaSchedules.BETA_SCHEDULES);
        }
    }

    /** {@code timestep_spacing} is linspace, leading or trailing (diffusers' message). */
    static void timestepSpacing(String spacing) {
        timestepSpacing(spacing, "'linspace', 'leading' or 'trailing'");
    }

    /** {@code timestep_spacing} is linspace, leading or trailing; the message lists {@code choices}. */
    static void timestepSpacing(String spacing, String choices) {
        if (!Timesteps.TIMESTEP_SPACINGS.contains(spacing)) {
            throw new SchedulerConfigException("timestep_spacing", spacing
                    + " is not supported. Please make sure to choose one of " + choices + ".");
        }
    }

    /** {@code value} is one of {@code allowed}, else {@code message} under {@code key}. */
    static void oneOf(String key, String value, List<String> allowed, String message) {
        if (!allowed.contains(value)) {
            throw new SchedulerConfigException(key, message);
        }
    }

    /** {@code final_sigmas_type} is zero or sigma_min (diffusers' Euler / UniPC message). */
    static void finalSigmasType(String finalSigmasType) {
        oneOf("final_sigmas_type", finalSigmasType, List.of("zero", "sigma_min"),
                "must be one of 'zero', or 'sigma_min', but got " + finalSigmasType);
    }

    /**
     * The multistep solvers' {@code prediction_type}: epsilon, sample or v_prediction; flow_prediction (flow matching)
     * is named as unsupported by this library.
     */
    static void solverPredictionType(String predictionType, String className) {
        if ("flow_prediction".equals(predictionType)) {
            throw new SchedulerConfigException("prediction_type",
                    "'flow_prediction' (flow matching) is not supported by this library");
        }
        oneOf("prediction_type", predictionType, List.of("epsilon", "sample", "v_prediction"),
                "'" + predictionType + "' must be one of epsilon, sample, v_prediction for " + className);
    }

    /** Rejects the flow-matching options this library does not implement. */
    static void noFlowMatching(boolean useFlowSigmas, boolean useDynamicShifting, String timeShiftType) {
        if (useFlowSigmas) {
            throw new SchedulerConfigException("use_flow_sigmas",
                    "flow-matching sigmas are not supported by this library");
        }
        if (useDynamicShifting) {
            throw new SchedulerConfigException("use_dynamic_shifting",
                    "dynamic shifting (flow matching) is not supported by this library");
        }
        if (!"exponential".equals(timeShiftType)) {
            throw new SchedulerConfigException("time_shift_type", "must be 'exponential', got '" + timeShiftType + "'");
        }
    }

    /** A defensive copy of {@code trained_betas} (null stays null). */
    static double[] copy(double[] trainedBetas) {
        return trainedBetas == null ? null : trainedBetas.clone();
    }
}
