package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.io.InputStream;
import java.util.Map;

/**
 * src/core/test/resources/reference/scheduler_cases.json: diffusers 0.40.0.dev0 (58eb52c0) trajectories, produced by
 * the reference README's loop (x = sin(0.37 i) * init_noise_sigma; eps = cos(1.3 m + 0.001 t) + 0.1 sin(0.11 i)).
 */
final class RefCases {
    static final JsonNode ROOT;

    static {
        ObjectMapper om = JsonMapper.builder().enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();
        try (InputStream in = RefCases.class.getResourceAsStream("/reference/scheduler_cases.json")) {
            ROOT = om.readTree(in);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private RefCases() {
    }

    static JsonNode caseNamed(String name) {
        for (JsonNode c : ROOT.get("cases")) {
            if (c.get("name").asText().equals(name)) {
                return c;
            }
        }
        throw new IllegalArgumentException(name);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> baseConfig(JsonNode c) {
        String base = c.get("base_config").asText();
        return new ObjectMapper().convertValue(ROOT.get("meta").get("scheduler_config_" + base), Map.class);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> overrides(JsonNode c) {
        JsonNode o = c.get("config_overrides");
        return o == null || o.isNull() ? Map.of() : new ObjectMapper().convertValue(o, Map.class);
    }

    static float[] floats(JsonNode arr) {
        float[] f = new float[arr.size()];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) arr.get(i).asDouble();
        }
        return f;
    }

    static double[] doubles(JsonNode arr) {
        double[] f = new double[arr.size()];
        for (int i = 0; i < f.length; i++) {
            f[i] = arr.get(i).asDouble();
        }
        return f;
    }

    /**
     * Runs the reference loop on {@code s} and checks timesteps, sigmas, init_noise_sigma, the per-step statistics
     * and the final array of the float32 run.
     */
    static void runAndCompare(Scheduler s, JsonNode c, double tol) {
        JsonNode run = c.get("runs").get("float32");
        int steps = c.get("num_inference_steps").asInt();
        s.setTimesteps(steps);
        double[] ts = s.timesteps();
        double[] refTs = doubles(run.get("timesteps"));
        assertEquals(refTs.length, ts.length, "number of timesteps");
        for (int i = 0; i < ts.length; i++) {
            assertEquals(refTs[i], ts[i], 1e-3, "timestep " + i);
        }
        if (run.has("sigmas")) {
            float[] refS = floats(run.get("sigmas"));
            float[] sg = s.sigmas();
            assertEquals(refS.length, sg.length, "number of sigmas");
            for (int i = 0; i < sg.length; i++) {
                assertEquals(refS[i], sg[i], 1e-6 * Math.max(1, Math.abs(refS[i])), "sigma " + i);
            }
        }
        float ins = s.initNoiseSigma();
        assertEquals(run.get("init_noise_sigma").asDouble(), ins, 1e-6, "init_noise_sigma");
        int n = 2 * 4 * 8 * 8;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) Math.sin(0.37 * i) * ins;
        }
        float[] m = new float[n];
        float[] eps = new float[n];
        JsonNode traj = run.get("trajectory");
        for (int k = 0; k < ts.length; k++) {
            double t = ts[k];
            s.scaleModelInput(x, t, m);
            for (int i = 0; i < n; i++) {
                eps[i] = (float) (Math.cos(1.3 * (double) m[i] + 0.001 * t) + 0.1 * Math.sin(0.11 * i));
            }
            s.step(eps, t, x, x);
            JsonNode st = traj.get(k);
            double sum = 0;
            double sq = 0;
            for (float v : x) {
                sum += v;
                sq += (double) v * v;
            }
            // |sum| error <= n * 1e-4, sum_sq error <= 2 * sum|x| * 1e-4 (+ n * 1e-8)
            double sumAbs = 0;
            for (float v : x) {
                sumAbs += Math.abs(v);
            }
            assertEquals(st.get("sum").asDouble(), sum, n * tol, "sum after step " + k);
            assertEquals(st.get("sum_sq").asDouble(), sq, 2 * sumAbs * tol + n * tol * tol, "sum_sq after step " + k);
            JsonNode f8 = st.get("first8");
            for (int i = 0; i < 8; i++) {
                assertEquals(f8.get(i).asDouble(), x[i], tol, "x[" + i + "] after step " + k);
            }
        }
        float[] fin = floats(run.get("final"));
        assertEquals(fin.length, n);
        double maxErr = 0;
        for (int i = 0; i < n; i++) {
            maxErr = Math.max(maxErr, Math.abs(fin[i] - x[i]));
        }
        assertTrue(maxErr <= tol, "max |final - diffusers| = " + maxErr + " > " + tol);
        System.out.printf("%s: max |final - diffusers float32| = %.3g%n", c.get("name").asText(), maxErr);
    }
}
