package dev.sdjvm.scheduler;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * diffusers' {@code PNDMScheduler}: pseudo numerical methods (PLMS, with the Runge-Kutta warm-up unless
 * {@code skip_prk_steps}), reproducing diffusers 0.40 numerically. SD 2.x's published config uses it with
 * {@code skip_prk_steps: true}. Its timesteps repeat one value (the PLMS warm-up), so {@link #timesteps()} is longer
 * than the step count and each step must be given the next timestep in order.
 */
public final class PNDMScheduler extends AlphasCumprodScheduler {
    /** diffusers' class name. */
    public static final String NAME = "PNDMScheduler";

    static final Set<String> KEYS = ConfigValues.withTrainingKeys("skip_prk_steps", "set_alpha_to_one",
            "prediction_type", "timestep_spacing", "steps_offset");

    /**
     * The effective configuration, diffusers' keys camelCased.
     *
     * @param numTrainTimesteps {@code num_train_timesteps}
     * @param betaStart         {@code beta_start}
     * @param betaEnd           {@code beta_end}
     * @param betaSchedule      {@code beta_schedule}
     * @param trainedBetas      {@code trained_betas}, or null
     * @param skipPrkSteps      {@code skip_prk_steps}
     * @param setAlphaToOne     {@code set_alpha_to_one}
     * @param predictionType    {@code prediction_type}
     * @param timestepSpacing   {@code timestep_spacing}
     * @param stepsOffset       {@code steps_offset}
     */
    public record Config(int numTrainTimesteps, double betaStart, double betaEnd, String betaSchedule,
            double[] trainedBetas, boolean skipPrkSteps, boolean setAlphaToOne, String predictionType,
            String timestepSpacing, int stepsOffset) implements BetaScheduleConfig {

        /**
         * Validates like diffusers.
         *
         * @param numTrainTimesteps {@code num_train_timesteps}
         * @param betaStart         {@code beta_start}
         * @param betaEnd           {@code beta_end}
         * @param betaSchedule      {@code beta_schedule}
         * @param trainedBetas      {@code trained_betas}, or null
         * @param skipPrkSteps      {@code skip_prk_steps}
         * @param setAlphaToOne     {@code set_alpha_to_one}
         * @param predictionType    {@code prediction_type}
         * @param timestepSpacing   {@code timestep_spacing}
         * @param stepsOffset       {@code steps_offset}
         * @throws SchedulerConfigException naming the first key diffusers would reject
         */
        public Config {
            ConfigChecks.trainingSchedule(numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, stepsOffset,
                    NAME);
            ConfigChecks.oneOf("prediction_type", predictionType, List.of("epsilon", "v_prediction"),
                    "'" + predictionType + "' must be one of `epsilon` or `v_prediction`");
            ConfigChecks.timestepSpacing(timestepSpacing);
            trainedBetas = ConfigChecks.copy(trainedBetas);
        }

        @Override
        public double[] trainedBetas() {
            return ConfigChecks.copy(trainedBetas);
        }

        /**
         * {@code PNDMScheduler.from_config(config, **overrides)}: the configuration those give.
         *
         * @param config    a {@code scheduler_config.json} as a map (keys diffusers does not know are ignored)
         * @param overrides keys that replace the config's, or an empty map
         * @return the checked configuration
         * @throws SchedulerConfigException naming a key diffusers would reject
         */
        public static Config from(Map<String, ?> config, Map<String, ?> overrides) {
            ConfigValues v = ConfigValues.of(config, overrides, NAME, KEYS);
            return new Config(v.numTrainTimesteps(), v.betaStart(), v.betaEnd(), v.betaSchedule(), v.trainedBetas(),
                    v.getBool("skip_prk_steps", false), v.getBool("set_alpha_to_one", false), v.predictionType(),
                    v.getString("timestep_spacing", "leading"), v.stepsOffset());
        }
    }

    private static final int PNDM_ORDER = 4;
    private final Config config;
    private int numInferenceSteps;
    private long[] prkTimesteps;
    private int counter;
    // state; buffers allocated once per sample length
    private float[][] ets; // ring of the last 4 model outputs, ets[(etsStart + i) % 4], i = 0 oldest
    private int etsCount;
    private int etsStart;
    private float[] curModelOutput;
    private boolean curModelOutputZero = true;
    private float[] curSample;
    private boolean hasCurSample;
    private float[] combined;

    /**
     * A scheduler with {@code config}.
     *
     * @param config the configuration
     */
    public PNDMScheduler(Config config) {
        super(NAME, config, false, config.setAlphaToOne());
        this.config = config;
    }

    /**
     * {@code PNDMScheduler.from_config(config, **overrides)}.
     *
     * @param config    a {@code scheduler_config.json} as a map
     * @param overrides keys that replace the config's, or an empty map
     * @return the scheduler
     * @throws SchedulerConfigException naming a key diffusers would reject
     */
    public static PNDMScheduler fromConfig(Map<String, ?> config, Map<String, ?> overrides) {
        return new PNDMScheduler(Config.from(config, overrides));
    }

    /** {@return the effective configuration} */
    public Config config() {
        return config;
    }

    @Override
    public void setTimesteps(int n) {
        int nTrain = config.numTrainTimesteps();
        ConfigChecks.inferenceSteps(n, nTrain, NAME);
        double[] descending = Timesteps.spacedTimesteps(config.timestepSpacing(), nTrain, n, config.stepsOffset(),
                true);
        ConfigChecks.timestepsInRange(descending, nTrain, config.stepsOffset(), NAME);
        int m = descending.length;
        long[] base = new long[m]; // ascending
        for (int i = 0; i < m; i++) {
            base[i] = (long) descending[m - 1 - i];
        }
        long[] plms;
        if (config.skipPrkSteps()) {
            prkTimesteps = new long[0];
            // concatenate([ts[:-1], ts[-2:-1], ts[-1:]])[::-1]
            long[] cat = new long[m + 1];
            System.arraycopy(base, 0, cat, 0, m - 1);
            cat[m - 1] = base[m - 2 >= 0 ? m - 2 : 0];
            cat[m] = base[m - 1];
            if (m < 2) {
                throw new dev.sdjvm.errors.InvalidRequestException("num_inference_steps",
                        "PNDM with skip_prk_steps needs at least 2 steps");
            }
            plms = reverse(cat);
        } else {
            if (m < PNDM_ORDER) {
                throw new dev.sdjvm.errors.InvalidRequestException("num_inference_steps",
                        "PNDM with Runge-Kutta warm-up (skip_prk_steps false) needs at least 4 steps");
            }
            long half = nTrain / n / 2;
            long[] rep = new long[2 * PNDM_ORDER];
            for (int i = 0; i < PNDM_ORDER; i++) {
                long t = base[m - PNDM_ORDER + i];
                rep[2 * i] = t;
                rep[2 * i + 1] = t + half;
            }
            // (rep[:-1].repeat(2)[1:-1])[::-1]
            int k = rep.length - 1;
            long[] rep2 = new long[2 * k];
            for (int i = 0; i < k; i++) {
                rep2[2 * i] = rep[i];
                rep2[2 * i + 1] = rep[i];
            }
            long[] mid = new long[rep2.length - 2];
            System.arraycopy(rep2, 1, mid, 0, mid.length);
            prkTimesteps = reverse(mid);
            long[] head = new long[m - 3];
            System.arraycopy(base, 0, head, 0, m - 3);
            plms = reverse(head);
        }
        timesteps = new double[prkTimesteps.length + plms.length];
        for (int i = 0; i < prkTimesteps.length; i++) {
            timesteps[i] = prkTimesteps[i];
        }
        for (int i = 0; i < plms.length; i++) {
            timesteps[prkTimesteps.length + i] = plms[i];
        }
        ConfigChecks.timestepsInRange(timesteps, nTrain, config.stepsOffset(), NAME);
        numInferenceSteps = n;
        counter = 0;
        etsCount = 0;
        etsStart = 0;
        curModelOutputZero = true;
        hasCurSample = false;
    }

    private static long[] reverse(long[] a) {
        long[] r = new long[a.length];
        for (int i = 0; i < a.length; i++) {
            r[i] = a[a.length - 1 - i];
        }
        return r;
    }

    private void ensureBuffers(int len) {
        if (ets == null || ets[0].length != len) {
            ets = new float[PNDM_ORDER][len];
            curModelOutput = new float[len];
            curSample = new float[len];
            combined = new float[len];
        }
    }

    /** ets[-k] (k = 1 newest). */
    private float[] etsFromEnd(int k) {
        return ets[(etsStart + etsCount - k) % PNDM_ORDER];
    }

    private void etsAppend(float[] modelOutput) {
        if (etsCount == PNDM_ORDER) { // keep the last 3, then append (diffusers: ets = ets[-3:]; ets.append)
            etsStart = (etsStart + 1) % PNDM_ORDER;
            etsCount--;
        }
        System.arraycopy(modelOutput, 0, ets[(etsStart + etsCount) % PNDM_ORDER], 0, modelOutput.length);
        etsCount++;
    }

    @Override
    public void step(float[] modelOutput, double timestep, float[] sample, float[] out) {
        checkStepArgs(modelOutput, sample, out);
        ensureBuffers(sample.length);
        if (counter < prkTimesteps.length && !config.skipPrkSteps()) {
            stepPrk(modelOutput, (long) timestep, sample, out);
        } else {
            stepPlms(modelOutput, (long) timestep, sample, out);
        }
    }

    private void stepPrk(float[] modelOutput, long timestep, float[] sample, float[] out) {
        int len = sample.length;
        long diffToPrev = counter % 2 != 0 ? 0 : config.numTrainTimesteps() / numInferenceSteps / 2;
        long prevTimestep = timestep - diffToPrev;
        long t = prkTimesteps[counter / 4 * 4];
        float sixth = (float) (1.0 / 6);
        float third = (float) (1.0 / 3);
        float[] mo = modelOutput;
        switch (counter % 4) {
            case 0:
                accumulate(modelOutput, sixth);
                etsAppendUnbounded(modelOutput);
                System.arraycopy(sample, 0, curSample, 0, len);
                hasCurSample = true;
                break;
            case 1:
            case 2:
                accumulate(modelOutput, third);
                break;
            default:
                for (int i = 0; i < len; i++) {
                    float v = sixth * modelOutput[i];
                    combined[i] = curModelOutputZero ? v : curModelOutput[i] + v;
                }
                curModelOutputZero = true;
                mo = combined;
                break;
        }
        float[] cur = hasCurSample ? curSample : sample;
        prevSample(cur, t, prevTimestep, mo, out);
        counter++;
    }

    /** PRK keeps every 4th model output (at most 3 of them before PLMS starts). */
    private void etsAppendUnbounded(float[] modelOutput) {
        etsAppend(modelOutput);
    }

    private void accumulate(float[] modelOutput, float c) {
        for (int i = 0; i < modelOutput.length; i++) {
            float v = c * modelOutput[i];
            curModelOutput[i] = curModelOutputZero ? v : curModelOutput[i] + v;
        }
        curModelOutputZero = false;
    }

    private void stepPlms(float[] modelOutput, long timestep, float[] sample, float[] out) {
        if (!config.skipPrkSteps() && etsCount < 3) {
            throw new IllegalStateException(NAME + " can only be run AFTER scheduler has been run in 'prk' mode for "
                    + "at least 12 iterations");
        }
        int len = sample.length;
        long ratio = config.numTrainTimesteps() / numInferenceSteps;
        long prevTimestep = timestep - ratio;
        if (counter != 1) {
            etsAppend(modelOutput);
        } else {
            prevTimestep = timestep;
            timestep = timestep + ratio;
        }
        float[] mo;
        float[] x = sample;
        if (etsCount == 1 && counter == 0) {
            mo = modelOutput;
            System.arraycopy(sample, 0, curSample, 0, len);
            hasCurSample = true;
        } else if (etsCount == 1 && counter == 1) {
            float[] e1 = etsFromEnd(1);
            for (int i = 0; i < len; i++) {
                combined[i] = (modelOutput[i] + e1[i]) / 2f;
            }
            mo = combined;
            x = curSample;
            hasCurSample = false;
        } else if (etsCount == 2) {
            float[] e1 = etsFromEnd(1);
            float[] e2 = etsFromEnd(2);
            for (int i = 0; i < len; i++) {
                combined[i] = (3f * e1[i] - e2[i]) / 2f;
            }
            mo = combined;
        } else if (etsCount == 3) {
            float[] e1 = etsFromEnd(1);
            float[] e2 = etsFromEnd(2);
            float[] e3 = etsFromEnd(3);
            for (int i = 0; i < len; i++) {
                combined[i] = (23f * e1[i] - 16f * e2[i] + 5f * e3[i]) / 12f;
            }
            mo = combined;
        } else {
            float[] e1 = etsFromEnd(1);
            float[] e2 = etsFromEnd(2);
            float[] e3 = etsFromEnd(3);
            float[] e4 = etsFromEnd(4);
            float c = (float) (1.0 / 24);
            for (int i = 0; i < len; i++) {
                combined[i] = c * (55f * e1[i] - 59f * e2[i] + 37f * e3[i] - 9f * e4[i]);
            }
            mo = combined;
        }
        prevSample(x, timestep, prevTimestep, mo, out);
        counter++;
    }

    /** diffusers' {@code _get_prev_sample} (PNDM paper eq. 9), float32. */
    private void prevSample(float[] sample, long timestep, long prevTimestep, float[] modelOutput, float[] out) {
        float apt = alphasCumprod[(int) timestep];
        float aptPrev = alphaProd(prevTimestep);
        float bpt = 1f - apt;
        float bptPrev = 1f - aptPrev;
        boolean v = config.predictionType().equals("v_prediction");
        float sqA = (float) Math.sqrt(apt);
        float sqB = (float) Math.sqrt(bpt);
        float sampleCoeff = (float) Math.sqrt(aptPrev / apt);
        float denom = apt * (float) Math.sqrt(bptPrev) + (float) Math.sqrt(apt * bpt * aptPrev);
        float diff = aptPrev - apt;
        for (int i = 0; i < sample.length; i++) {
            float s = sample[i];
            float m = v ? sqA * modelOutput[i] + sqB * s : modelOutput[i];
            out[i] = sampleCoeff * s - diff * m / denom;
        }
    }
}
