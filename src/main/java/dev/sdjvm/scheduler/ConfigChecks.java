package dev.sdjvm.scheduler;

import java.util.List;

/**
 * The validations the scheduler {@code Config} records share, each failing with a {@link SchedulerConfigException}
 * that names the key (messages follow diffusers' where diffusers has one).
 */
final class ConfigChecks {
    private ConfigChecks() {
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
