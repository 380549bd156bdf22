package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.tensor.TorchGenerator;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/**
 * The schedulers of the model families beyond SD 2.1-base against diffusers' own scheduler classes:
 * reference/families/scheduler_cases.json (tools/reference/make_family_scheduler_references.py): LCMScheduler,
 * the few-step "trailing" Turbo configuration of Euler ancestral / Euler / DDIM, and every scheduler with the published
 * SD 2.x 768 v-prediction configuration. Stochastic steps draw from torch's CPU generator seeded as the script's.
 */
class FamilySchedulersTest {
    private static final JsonNode ROOT;

    static {
        try (InputStream in = FamilySchedulersTest.class.getResourceAsStream("/reference/families/scheduler_cases.json")) {
            ROOT = new ObjectMapper().readTree(in);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static List<String> cases() {
        List<String> names = new ArrayList<>();
        ROOT.get("cases").forEach(c -> names.add(c.get("name").asText()));
        return names;
    }

    private static JsonNode named(String name) {
        for (JsonNode c : ROOT.get("cases")) {
            if (c.get("name").asText().equals(name)) {
                return c;
            }
        }
        throw new IllegalArgumentException(name);
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(JsonNode n) {
        return new ObjectMapper().convertValue(n, LinkedHashMap.class);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesDiffusers(String name) {
        JsonNode c = named(name);
        Map<String, Object> config = map(ROOT.get("meta").get("configs").get(c.get("base_config").asText()));
        Scheduler s = Schedulers.create(c.get("scheduler").asText(), config, map(c.get("config_overrides")));
        s.setBatchSize(2);
        TorchGenerator g = new TorchGenerator(c.get("seed").asLong());
        s.setNoiseSource(g::randn);
        int steps = c.get("num_inference_steps").asInt();
        JsonNode kw = c.get("set_timesteps_kwargs");
        if (kw.size() > 0) {
            LCMScheduler lcm = (LCMScheduler) s;
            lcm.setTimesteps(steps, kw.has("original_inference_steps") ? kw.get("original_inference_steps").asInt() : null,
                    kw.has("strength") ? kw.get("strength").asDouble() : 1.0);
        } else {
            s.setTimesteps(steps);
        }
        JsonNode run = c.get("run");
        double[] ts = s.timesteps();
        double[] refTs = RefCases.doubles(run.get("timesteps"));
        assertArrayEquals(refTs, ts, 1e-3, "timesteps");
        if (run.has("sigmas") && s.sigmas() != null) {
            float[] ref = RefCases.floats(run.get("sigmas"));
            float[] sg = s.sigmas();
            assertEquals(ref.length, sg.length, "sigmas");
            for (int i = 0; i < sg.length; i++) {
                assertEquals(ref[i], sg[i], 1e-6 * Math.max(1, Math.abs(ref[i])), "sigma " + i);
            }
        }
        float ins = s.initNoiseSigma();
        assertEquals(run.get("init_noise_sigma").asDouble(), ins, 1e-6 * Math.max(1, ins), "init_noise_sigma");
        int n = 2 * 4 * 8 * 8;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) Math.sin(0.37 * i) * ins;
        }
        float[] m = new float[n];
        float[] eps = new float[n];
        double maxAbsRef = 0;
        float[] fin = RefCases.floats(run.get("final"));
        for (float v : fin) {
            maxAbsRef = Math.max(maxAbsRef, Math.abs(v));
        }
        double tol = 2e-5 * Math.max(1, maxAbsRef);
        for (int k = 0; k < ts.length; k++) {
            double t = ts[k];
            s.scaleModelInput(x, t, m);
            for (int i = 0; i < n; i++) {
                eps[i] = (float) (Math.cos(1.3 * (double) m[i] + 0.001 * t) + 0.1 * Math.sin(0.11 * i));
            }
            s.step(eps, t, x, x);
            JsonNode f8 = run.get("trajectory").get(k).get("first8");
            for (int i = 0; i < 8; i++) {
                assertEquals(f8.get(i).asDouble(), x[i], tol, name + ": x[" + i + "] after step " + k);
            }
        }
        double maxErr = 0;
        for (int i = 0; i < n; i++) {
            maxErr = Math.max(maxErr, Math.abs(fin[i] - x[i]));
        }
        assertTrue(maxErr <= tol, name + ": max |final - diffusers| = " + maxErr + " > " + tol);
    }

    @Test
    void lcmRefusesWhatDiffusersRefuses() {
        Map<String, Object> config = map(ROOT.get("meta").get("configs").get("lcm"));
        LCMScheduler s = LCMScheduler.fromConfig(config, Map.of());
        // diffusers checks skipping_step = len(origin timesteps) // n before n <= original_inference_steps
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> s.setTimesteps(51));
        assertTrue(e.getMessage().contains("`original_steps x strength`: 50 x 1.0"), e.getMessage());
        e = assertThrows(InvalidRequestException.class, () -> s.setTimesteps(30, null, 0.5));
        assertTrue(e.getMessage().contains("smaller than `num_inference_steps`"), e.getMessage());
        assertThrows(SchedulerConfigException.class,
                () -> LCMScheduler.fromConfig(config, Map.of("original_inference_steps", 1001)));
        assertThrows(SchedulerConfigException.class,
                () -> LCMScheduler.fromConfig(config, Map.of("timestep_scaling", 0)));
        // the boundary condition: c_skip -> 1 and c_out -> 0 at t = 0 (the consistency function is the identity)
        float[] sc = s.boundaryScalings(0);
        assertEquals(1f, sc[0]);
        assertEquals(0f, sc[1]);
        assertEquals("lcm", Schedulers.create("lcm", config, Map.of()).name().substring(0, 3).toLowerCase());
    }
}
