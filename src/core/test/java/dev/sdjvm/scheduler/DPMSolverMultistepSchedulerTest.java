package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DPMSolverMultistepSchedulerTest {

    // ---- parity with the reference trajectories (scheduler_cases.json, diffusers 58eb52c0, torch 1.13 CPU) ----

    @Test
    void betasAndAlphasCumprodMatchTorchFloat32Exactly() {
        JsonNode meta = RefCases.ROOT.get("meta");
        DPMSolverMultistepScheduler s = DPMSolverMultistepScheduler.fromConfig(
                RefCases.baseConfig(RefCases.caseNamed("dpm_eps_20")), Map.of());
        float[] ref = RefCases.floats(meta.get("alphas_cumprod_float32"));
        float[] ac = s.alphasCumprod();
        for (int i = 0; i < ref.length; i++) {
            assertEquals(ref[i], ac[i], 0f, "alphas_cumprod[" + i + "]");
        }
        float[] betaRef = RefCases.floats(meta.get("betas_float32"));
        float[] betas = BetaSchedules.betas("scaled_linear", 0.00085, 0.012, 1000, null, "x");
        for (int i = 0; i < betaRef.length; i++) {
            assertEquals(betaRef[i], betas[i], 0f, "betas[" + i + "]");
        }
    }

    @Test
    void dpmEps20MatchesDiffusers() {
        JsonNode c = RefCases.caseNamed("dpm_eps_20");
        Scheduler s = Schedulers.create(c.get("scheduler").asText(), RefCases.baseConfig(c), RefCases.overrides(c));
        RefCases.runAndCompare(s, c, 1e-5);
    }

    @Test
    void dpmVpred25Sd21_768MatchesDiffusers() {
        JsonNode c = RefCases.caseNamed("dpm_vpred_25_sd21_768");
        Scheduler s = Schedulers.create(c.get("scheduler").asText(), RefCases.baseConfig(c), RefCases.overrides(c));
        RefCases.runAndCompare(s, c, 1e-5);
    }

    @Test
    void effectiveConfigMatchesDiffusersEffectiveConfig() {
        JsonNode c = RefCases.caseNamed("dpm_vpred_25_sd21_768");
        JsonNode eff = c.get("runs").get("float32").get("effective_config");
        DPMSolverMultistepScheduler.Config cfg = DPMSolverMultistepScheduler.Config.from(RefCases.baseConfig(c),
                Map.of());
        assertEquals(eff.get("num_train_timesteps").asInt(), cfg.numTrainTimesteps());
        assertEquals(eff.get("beta_start").asDouble(), cfg.betaStart());
        assertEquals(eff.get("beta_schedule").asText(), cfg.betaSchedule());
        assertEquals(eff.get("solver_order").asInt(), cfg.solverOrder());
        assertEquals(eff.get("prediction_type").asText(), cfg.predictionType());
        assertEquals(eff.get("algorithm_type").asText(), cfg.algorithmType());
        assertEquals(eff.get("solver_type").asText(), cfg.solverType());
        assertEquals(eff.get("lower_order_final").asBoolean(), cfg.lowerOrderFinal());
        assertEquals(eff.get("final_sigmas_type").asText(), cfg.finalSigmasType());
        assertEquals(Double.NEGATIVE_INFINITY, cfg.lambdaMinClipped());
        assertEquals(eff.get("timestep_spacing").asText(), cfg.timestepSpacing());
        assertEquals(eff.get("steps_offset").asInt(), cfg.stepsOffset());
        assertEquals(eff.get("time_shift_type").asText(), cfg.timeShiftType());
    }

    // ---- diffusers' own tests: tests/schedulers/test_scheduler_dpm_multi.py (DPMSolverMultistepSchedulerTest) ----
    // get_scheduler_config: linear betas 1e-4..0.02, solver_order 2, epsilon, dpmsolver++, midpoint,
    // lower_order_final False, euler_at_final False, lambda_min_clipped -inf, variance_type None,
    // final_sigmas_type "sigma_min"; full_loop: 10 steps on dummy_sample_deter with dummy_model.

    static Map<String, Object> diffusersTestConfig(Object... kv) {
        Map<String, Object> m = new HashMap<>();
        m.put("num_train_timesteps", 1000);
        m.put("beta_start", 0.0001);
        m.put("beta_end", 0.02);
        m.put("beta_schedule", "linear");
        m.put("solver_order", 2);
        m.put("prediction_type", "epsilon");
        m.put("thresholding", false);
        m.put("sample_max_value", 1.0);
        m.put("algorithm_type", "dpmsolver++");
        m.put("solver_type", "midpoint");
        m.put("lower_order_final", false);
        m.put("euler_at_final", false);
        m.put("lambda_min_clipped", Double.NEGATIVE_INFINITY);
        m.put("variance_type", null);
        m.put("final_sigmas_type", "sigma_min");
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    static float[] fullLoop(Object... kv) {
        return DiffusersDummy.fullLoop(DPMSolverMultistepScheduler.fromConfig(diffusersTestConfig(kv), Map.of()), 10);
    }

    @Test
    void diffusersFullLoopNoNoise() {
        assertEquals(0.3301, DiffusersDummy.meanAbs(fullLoop()), 1e-3); // test_full_loop_no_noise
    }

    @Test
    void diffusersFullLoopNoNoiseThresholding() {
        // test_full_loop_no_noise_thres
        float[] x = fullLoop("thresholding", true, "dynamic_thresholding_ratio", 0.87, "sample_max_value", 0.5);
        assertEquals(1.1364, DiffusersDummy.meanAbs(x), 1e-3);
    }

    @Test
    void diffusersFullLoopVPrediction() {
        assertEquals(0.2251, DiffusersDummy.meanAbs(fullLoop("prediction_type", "v_prediction")), 1e-3);
    }

    @Test
    void diffusersFullLoopKarrasVPrediction() {
        float[] x = fullLoop("prediction_type", "v_prediction", "use_karras_sigmas", true);
        assertEquals(0.2096, DiffusersDummy.meanAbs(x), 1e-3); // test_full_loop_with_karras_and_v_prediction
    }

    @Test
    void diffusersFullLoopLuVPrediction() {
        float[] x = fullLoop("prediction_type", "v_prediction", "use_lu_lambdas", true);
        assertEquals(0.1554, DiffusersDummy.meanAbs(x), 1e-3); // test_full_loop_with_lu_and_v_prediction
    }

    @Test
    void diffusersFullLoopWithNoise() {
        // test_full_loop_with_noise: t_start = 5; sample = add_noise(sample_deter, noise_deter, timesteps[5]);
        // loop over timesteps[5:]; expected sum|x| 318.4111 (1e-2), mean|x| 0.4146 (1e-3)
        DPMSolverMultistepScheduler s = DPMSolverMultistepScheduler.fromConfig(diffusersTestConfig(), Map.of());
        s.setBatchSize(DiffusersDummy.B);
        s.setTimesteps(10);
        double[] ts = s.timesteps();
        float[] sample = DiffusersDummy.sampleDeter();
        float[] noise = DiffusersDummy.noiseDeter();
        s.addNoise(sample, noise, ts[5], sample);
        float[] residual = new float[sample.length];
        for (int k = 5; k < ts.length; k++) {
            DiffusersDummy.model(sample, ts[k], residual);
            s.step(residual, ts[k], sample, sample);
        }
        assertEquals(318.4111, DiffusersDummy.sumAbs(sample), 1e-2);
        assertEquals(0.4146, DiffusersDummy.meanAbs(sample), 1e-3);
    }

    @Test
    void diffusersSolverOrderAndTypeHaveNoNaN() {
        // test_solver_order_and_type: every combination runs without NaN
        for (String alg : new String[] {"dpmsolver", "dpmsolver++"}) {
            for (String st : new String[] {"midpoint", "heun"}) {
                for (int order = 1; order <= 3; order++) {
                    for (String pt : new String[] {"epsilon", "sample"}) {
                        float[] x = fullLoop("solver_order", order, "solver_type", st, "prediction_type", pt,
                                "algorithm_type", alg);
                        for (float v : x) {
                            assertFalse(Float.isNaN(v), alg + "/" + st + "/" + order + "/" + pt);
                        }
                    }
                }
            }
        }
    }

    /**
     * diffusers' test_duplicated_timesteps asserts {@code len(timesteps) == num_inference_steps} after
     * {@code set_timesteps(num_train_timesteps)}; diffusers 58eb52c0 keeps the repeated timestep 500 there, and its
     * solver then turns every latent into NaN (found by running its unmodified scheduler at 1000 steps). The repeat
     * is dropped here, as diffusers' fix 953c9d14 did: the 999 distinct timesteps, the same as 999 steps.
     */
    @Test
    void duplicatedTimestepsAreDroppedAt1000Steps() {
        DPMSolverMultistepScheduler s = DPMSolverMultistepScheduler.fromConfig(diffusersTestConfig(), Map.of());
        s.setTimesteps(1000);
        double[] ts = s.timesteps();
        assertEquals(999, ts.length);
        assertEquals(ts.length + 1, s.sigmas().length);
        DPMSolverMultistepScheduler s999 = DPMSolverMultistepScheduler.fromConfig(diffusersTestConfig(), Map.of());
        s999.setTimesteps(999);
        org.junit.jupiter.api.Assertions.assertArrayEquals(s999.timesteps(), ts);
        org.junit.jupiter.api.Assertions.assertArrayEquals(s999.sigmas(), s.sigmas());
    }

    @Test
    void sdeVariantsDrawOneNoisePerStepAndAreDeterministicWithInjectedNoise() {
        for (String alg : new String[] {"sde-dpmsolver++", "sde-dpmsolver"}) {
            for (int order = 1; order <= (alg.equals("sde-dpmsolver") ? 2 : 3); order++) {
                int[] calls = {0};
                float[] a = sdeLoop(alg, order, calls);
                assertEquals(10, calls[0], alg + " order " + order + ": one noise draw per step");
                float[] b = sdeLoop(alg, order, new int[1]);
                for (int i = 0; i < a.length; i++) {
                    assertEquals(a[i], b[i], 0f);
                    assertFalse(Float.isNaN(a[i]));
                }
            }
        }
    }

    private static float[] sdeLoop(String alg, int order, int[] calls) {
        DPMSolverMultistepScheduler s = DPMSolverMultistepScheduler.fromConfig(
                diffusersTestConfig("algorithm_type", alg, "solver_order", order), Map.of());
        java.util.SplittableRandom r = new java.util.SplittableRandom(42);
        s.setNoiseSource(buf -> {
            calls[0]++;
            for (int i = 0; i < buf.length; i++) {
                buf[i] = (float) r.nextDouble(-1, 1);
            }
        });
        return DiffusersDummy.fullLoop(s, 10);
    }

    @Test
    void stochasticWithoutNoiseSourceFailsClearly() {
        DPMSolverMultistepScheduler s = DPMSolverMultistepScheduler.fromConfig(
                diffusersTestConfig("algorithm_type", "sde-dpmsolver++"), Map.of());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> DiffusersDummy.fullLoop(s, 10));
        assertTrue(e.getMessage().contains("NoiseSource"));
    }

    // ---- config handling ----

    @Test
    void unsupportedValuesNameTheKey() {
        assertKey("solver_order", "solver_order", 4);
        assertKey("algorithm_type", "algorithm_type", "foo");
        assertKey("solver_type", "solver_type", "rk4");
        assertKey("beta_schedule", "beta_schedule", "cosine");
        assertKey("prediction_type", "prediction_type", "flow_prediction");
        assertKey("use_flow_sigmas", "use_flow_sigmas", true);
        assertKey("use_dynamic_shifting", "use_dynamic_shifting", true);
        assertKey("timestep_spacing", "timestep_spacing", "uniform");
        assertKey("final_sigmas_type", "final_sigmas_type", "one");
        assertKey("final_sigmas_type", "algorithm_type", "dpmsolver", "final_sigmas_type", "zero");
        assertKey("use_karras_sigmas", "use_karras_sigmas", true, "use_exponential_sigmas", true);
        assertKey("use_lu_lambdas", "use_karras_sigmas", true, "use_lu_lambdas", true);
        assertKey("solver_order", "algorithm_type", "sde-dpmsolver", "final_sigmas_type", "sigma_min",
                "solver_order", 3);
        assertKey("thresholding", "thresholding", "yes");
        assertKey("variance_type", "variance_type", "fixed_small");
    }

    private static void assertKey(String expectedKey, Object... kv) {
        Map<String, Object> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        SchedulerConfigException e = assertThrows(SchedulerConfigException.class,
                () -> DPMSolverMultistepScheduler.fromConfig(Map.of(), m));
        assertEquals(expectedKey, e.field(), e.getMessage());
    }

    @Test
    void otherSchedulersKeysAndPrivateKeysAreIgnored() {
        Map<String, Object> cfg = new HashMap<>(diffusersTestConfig());
        cfg.put("skip_prk_steps", true);
        cfg.put("set_alpha_to_one", false);
        cfg.put("clip_sample", false);
        cfg.put("_class_name", "PNDMScheduler");
        cfg.put("_diffusers_version", "0.10.0");
        assertEquals(0.3301, DiffusersDummy.meanAbs(DiffusersDummy.fullLoop(
                DPMSolverMultistepScheduler.fromConfig(cfg, Map.of()), 10)), 1e-3);
    }

    @Test
    void deisAndBhSolverTypesMapLikeDiffusers() {
        DPMSolverMultistepScheduler.Config c = DPMSolverMultistepScheduler.Config.from(
                Map.of("algorithm_type", "deis", "solver_type", "bh2"), Map.of());
        assertEquals("dpmsolver++", c.algorithmType());
        assertEquals("midpoint", c.solverType());
    }

    @Test
    void stepDoesNotAllocate() {
        DPMSolverMultistepScheduler s = DPMSolverMultistepScheduler.fromConfig(Map.of(), Map.of());
        s.setTimesteps(20);
        float[] x = new float[4 * 64 * 64];
        float[] eps = new float[x.length];
        java.util.Arrays.fill(x, 0.5f);
        java.util.Arrays.fill(eps, 0.1f);
        double[] ts = s.timesteps();
        s.step(eps, ts[0], x, x); // first step allocates the history
        com.sun.management.ThreadMXBean mx =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        for (int k = 1; k < ts.length; k++) {
            s.step(eps, ts[k], x, x);
        }
        long allocated = mx.getCurrentThreadAllocatedBytes() - before;
        assertTrue(allocated < 1024, "steps allocated " + allocated + " bytes");
    }

    @Test
    void learnedVarianceUsesTheFirstHalfOfTheChannelsPerSample() {
        // variance_type "learned": model output [B, 2C, H, W]; diffusers keeps model_output[:, :C] (C = 3 there)
        float[] ref = fullLoop();
        DPMSolverMultistepScheduler s = DPMSolverMultistepScheduler.fromConfig(
                diffusersTestConfig("variance_type", "learned_range"), Map.of());
        s.setBatchSize(DiffusersDummy.B);
        s.setTimesteps(10);
        float[] x = DiffusersDummy.sampleDeter();
        float[] r = new float[x.length];
        int per = x.length / DiffusersDummy.B;
        float[] wide = new float[2 * x.length];
        for (double t : s.timesteps()) {
            DiffusersDummy.model(x, t, r);
            for (int b = 0; b < DiffusersDummy.B; b++) {
                System.arraycopy(r, b * per, wide, 2 * b * per, per);
                java.util.Arrays.fill(wide, 2 * b * per + per, 2 * (b + 1) * per, 1e6f); // variance channels
            }
            s.step(wide, t, x, x);
        }
        for (int i = 0; i < x.length; i++) {
            assertEquals(ref[i], x[i], 0f);
        }
    }
}
