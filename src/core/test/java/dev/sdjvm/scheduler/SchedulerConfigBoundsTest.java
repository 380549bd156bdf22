package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.errors.InvalidRequestException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Hostile and out-of-range scheduler config values and overrides: each is an {@link InvalidRequestException} naming
 * the key (never an array index error, a NaN image or an OutOfMemoryError), unknown override keys are rejected, a
 * null value is the key's default, and every scheduler at the largest step count either runs to finite latents or
 * is refused naming {@code num_inference_steps}.
 */
class SchedulerConfigBoundsTest {
    /** SD 2.1-base's scheduler_config.json values (PNDMScheduler, steps_offset 1). */
    static Map<String, Object> sd21() {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("_class_name", "PNDMScheduler");
        c.put("beta_start", 0.00085);
        c.put("beta_end", 0.012);
        c.put("beta_schedule", "scaled_linear");
        c.put("num_train_timesteps", 1000);
        c.put("steps_offset", 1);
        c.put("skip_prk_steps", true);
        c.put("set_alpha_to_one", false);
        c.put("clip_sample", false);
        c.put("trained_betas", null);
        return c;
    }

    /** Runs a full loop with a deterministic stand-in model; returns true if every latent stays finite. */
    static boolean runsFinite(Scheduler s, int steps) {
        s.setTimesteps(steps);
        s.setNoiseSource(b -> {
            for (int i = 0; i < b.length; i++) {
                b[i] = (float) Math.sin(0.7 * i);
            }
        });
        int n = 64;
        float[] x = new float[n];
        float[] m = new float[n];
        float[] eps = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) Math.sin(0.37 * i) * s.initNoiseSigma();
        }
        for (double t : s.timesteps()) {
            s.scaleModelInput(x, t, m);
            for (int i = 0; i < n; i++) {
                eps[i] = (float) Math.cos(1.3 * m[i] + 0.001 * t);
            }
            s.step(eps, t, x, x);
        }
        for (float v : x) {
            if (!Float.isFinite(v)) {
                return false;
            }
        }
        return true;
    }

    static String rejectedKey(String scheduler, Map<String, Object> overrides, int steps) {
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> {
            Scheduler s = Schedulers.create(scheduler, sd21(), overrides);
            runsFinite(s, steps);
        }, scheduler + " " + overrides + " at " + steps + " steps");
        return e.field();
    }

    @Test
    void theIssuesValuesAreNamed400sNot500s() {
        assertEquals("steps_offset", rejectedKey("dpm++2m", Map.of("steps_offset", 100000), 20));
        assertEquals("steps_offset", rejectedKey("ddim", Map.of("steps_offset", 100000), 20));
        for (String s : List.of("dpm++2m", "ddim", "unipc")) {
            assertEquals("dynamic_thresholding_ratio",
                    rejectedKey(s, Map.of("thresholding", true, "dynamic_thresholding_ratio", 5), 20), s);
        }
        // diffusers' DDIM message, for every scheduler
        assertEquals("num_inference_steps", rejectedKey("dpm++2m", Map.of("num_train_timesteps", 2), 900));
        assertEquals("num_inference_steps", rejectedKey("euler", Map.of("num_train_timesteps", 2), 900));
        assertEquals("num_inference_steps", rejectedKey("pndm", Map.of("num_train_timesteps", 2), 900));
    }

    @Test
    void hugeNumTrainTimestepsIsRefusedBeforeAnyTableIsBuilt() {
        long t0 = System.nanoTime();
        for (String s : List.of("dpm++2m", "euler", "euler_a", "ddim", "pndm", "lms", "unipc")) {
            assertEquals("num_train_timesteps", rejectedKey(s, Map.of("num_train_timesteps", 2_000_000_000), 20), s);
        }
        assertEquals("num_train_timesteps", rejectedKey("dpm++2m", Map.of("num_train_timesteps", 1), 1));
        // 10 000 (the bound) is accepted
        Schedulers.create("dpm++2m", sd21(), Map.of("num_train_timesteps", ConfigChecks.MAX_TRAIN_TIMESTEPS))
                .setTimesteps(20);
        assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "no table of 2e9 entries was built");
    }

    @Test
    void everyKeyIsRangeChecked() {
        Object[][] cases = {
            {"dpm++2m", "beta_start", -1}, {"dpm++2m", "beta_start", 0}, {"dpm++2m", "beta_end", 5},
            {"dpm++2m", "beta_end", 1}, {"euler", "beta_start", "inf"}, {"ddim", "steps_offset", -1},
            {"dpm++2m", "steps_offset", 1000}, {"dpm++2m", "solver_order", 7}, {"dpm++2m", "lambda_min_clipped", 1e9},
            {"dpm++2m", "lambda_min_clipped", "inf"}, {"dpm++2m", "sample_max_value", 0},
            {"dpm++2m", "dynamic_thresholding_ratio", -0.5}, {"dpm++2m", "flow_shift", 0},
            {"euler", "sigma_min", -1}, {"euler", "sigma_max", 0}, {"unipc", "sigma_min", "-inf"},
            {"ddim", "clip_sample_range", 0}, {"ddim", "sample_max_value", -1},
            {"unipc", "disable_corrector", List.of(1e300)}, {"unipc", "disable_corrector", List.of(-1)},
            {"unipc", "disable_corrector", List.of(1.5)}, {"unipc", "dynamic_thresholding_ratio", 2},
            {"lms", "trained_betas", List.of(0.1, 0.2)}, {"euler_a", "timestep_spacing", "sideways"},
            {"pndm", "num_train_timesteps", 2.5}, {"euler", "use_karras_sigmas", "yes"},
        };
        for (Object[] c : cases) {
            Map<String, Object> o = new HashMap<>();
            o.put((String) c[1], c[2]);
            assertEquals(c[1], rejectedKey((String) c[0], o, 20), c[0] + " " + c[1] + "=" + c[2]);
        }
        // sigma_min must stay below sigma_max
        assertEquals("sigma_min", rejectedKey("euler-karras", Map.of("sigma_min", 2.0, "sigma_max", 1.0), 20));
        // trained_betas: one value in (0, 1) per training timestep
        List<Double> betas = new java.util.ArrayList<>(java.util.Collections.nCopies(1000, 0.01));
        betas.set(10, 1.5);
        assertEquals("trained_betas", rejectedKey("dpm++2m", Map.of("trained_betas", betas), 20));
    }

    @Test
    void unknownOverrideKeysAreRejectedNamingTheKey() {
        SchedulerConfigException e = assertThrows(SchedulerConfigException.class,
                () -> Schedulers.create("dpm++2m", sd21(), Map.of("use_karas_sigmas", true)));
        assertEquals("use_karas_sigmas", e.field());
        assertTrue(e.getMessage().contains("use_karras_sigmas"), "lists the valid keys: " + e.getMessage());
        // a key of another scheduler class is unknown to this one
        assertEquals("use_karras_sigmas", assertThrows(SchedulerConfigException.class,
                () -> Schedulers.create("ddim", sd21(), Map.of("use_karras_sigmas", true))).field());
        assertEquals("_class_name", assertThrows(SchedulerConfigException.class,
                () -> Schedulers.create("euler", sd21(), Map.of("_class_name", "DDIMScheduler"))).field());
        assertEquals("x", assertThrows(SchedulerConfigException.class,
                () -> Schedulers.fromConfig(sd21(), Map.of("x", 1))).field());
        // the model's own config may carry another class's keys (diffusers ignores them)
        Schedulers.create("euler", sd21(), Map.of()).setTimesteps(20);
    }

    @Test
    void aNullOverrideIsTheKeysDefault() {
        Map<String, Object> o = new HashMap<>();
        o.put("steps_offset", null);
        o.put("use_karras_sigmas", null);
        DPMSolverMultistepScheduler s = (DPMSolverMultistepScheduler) Schedulers.create("dpm++2m-karras", sd21(), o);
        assertEquals(0, s.config().stepsOffset());
        assertEquals(false, s.config().useKarrasSigmas());
        // and a request can carry it (Map.copyOf would throw a NullPointerException)
        GenerationRequest r = GenerationRequest.builder("a").schedulerOverrides(o).build();
        assertTrue(r.schedulerOverrides().containsKey("steps_offset"));
        Map<String, Object> nullKey = new HashMap<>();
        nullKey.put(null, 1);
        assertEquals("scheduler_overrides", assertThrows(InvalidRequestException.class,
                () -> GenerationRequest.builder("a").schedulerOverrides(nullKey).build()).field());
    }

    @Test
    void everySchedulerAtTheLargestStepCountIsFiniteOrANamed400() {
        for (String name : List.of("dpm++2m", "dpm++2m-karras", "dpm++3m", "dpm++2m-sde", "euler", "euler-karras",
                "euler_a", "ddim", "pndm", "lms", "unipc")) {
            for (String spacing : List.of("linspace", "leading", "trailing")) {
                if (name.equals("ddim") && spacing.equals("linspace")) {
                    continue;  // DDIM has leading and trailing only
                }
                for (int steps : new int[] {999, GenerationRequest.MAX_STEPS}) {
                    Scheduler s = Schedulers.create(name, sd21(), Map.of("timestep_spacing", spacing));
                    try {
                        assertTrue(runsFinite(s, steps), name + " " + spacing + " " + steps + " steps: NaN latents");
                    } catch (InvalidRequestException e) {
                        assertEquals("num_inference_steps", e.field(), name + " " + spacing + " " + steps);
                    }
                }
            }
        }
        // the documented maximum works with the default scheduler and SD 2.1's config
        Scheduler dpm = Schedulers.create("dpm++2m", sd21(), Map.of());
        assertTrue(runsFinite(dpm, GenerationRequest.MAX_STEPS));
        assertEquals(999, dpm.timesteps().length, "the repeated timestep 500 is dropped");
        Scheduler unipc = Schedulers.create("unipc", sd21(), Map.of());
        assertTrue(runsFinite(unipc, GenerationRequest.MAX_STEPS));
    }
}
