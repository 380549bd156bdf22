package dev.sdjvm.scheduler;

/**
 * The training noise schedule every scheduler config carries (diffusers' {@code num_train_timesteps},
 * {@code beta_start}, {@code beta_end}, {@code beta_schedule}, {@code trained_betas}); implemented by the
 * {@code Config} records so the training tables are built in one place.
 */
interface BetaScheduleConfig {
    int numTrainTimesteps();

    double betaStart();

    double betaEnd();

    String betaSchedule();

    /** Explicit betas (a copy), or null. */
    double[] trainedBetas();
}
