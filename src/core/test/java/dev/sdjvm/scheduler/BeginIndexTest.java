package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * diffusers' {@code set_begin_index} and the index {@code add_noise} takes its noise level from (DPM 1180-1194 and
 * 1334-1342, EUL 670-683 and 833-841 at commit 58eb52c0): without a begin index the level of the timestep given; with
 * one, the begin index before the first step and the step index after it; the first step runs at the begin index.
 * The sigmas are those diffusers recorded for SD's scaled_linear schedule in reference/tasks/cases.json (20 steps).
 */
class BeginIndexTest {
    /** SD 2.1's published scheduler config (the keys that matter). */
    static Map<String, Object> sd() {
        Map<String, Object> m = new HashMap<>();
        m.put("num_train_timesteps", 1000);
        m.put("beta_start", 0.00085);
        m.put("beta_end", 0.012);
        m.put("beta_schedule", "scaled_linear");
        return m;
    }

    /** cases.json, i2i_dpm20 / inp4_dpm20: DPM-Solver++ sigmas at 20 steps. */
    static final float[] DPM20 = {14.614645004272461f, 10.9042387008667f, 8.302804946899414f, 6.442956924438477f,
        5.087765216827393f, 4.081730842590332f, 3.3210842609405518f, 2.7354700565338135f, 2.276463747024536f,
        1.910251498222351f, 1.6182795763015747f, 1.3716685771942139f, 1.1643916368484497f, 0.9871089458465576f,
        0.8327531814575195f, 0.6957994699478149f, 0.5716663599014282f, 0.4560753107070923f, 0.34393182396888733f,
        0.225582554936409f, 0.0f};

    private static float[] ones(int n, float v) {
        float[] x = new float[n];
        java.util.Arrays.fill(x, v);
        return x;
    }

    /** DPM's add_noise: alpha_t * x + sigma_t * noise, alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t. */
    private static float dpmNoised(float sigma, float x, float noise) {
        float alpha = 1f / (float) Math.sqrt(sigma * sigma + 1f);
        return alpha * x + sigma * alpha * noise;
    }

    @Test
    void dpmStartsAtTheBeginIndexAndNoisesAtItsSigma() {
        Scheduler s = Schedulers.create("DPMSolverMultistepScheduler", sd(), Map.of());
        s.setTimesteps(20);
        assertArrayEquals(DPM20, s.sigmas());
        float[] x = ones(16, 0.5f);
        float[] n = ones(16, -1.25f);
        float[] out = new float[16];
        // no begin index: the timestep's own level (timesteps[5] = 749 -> sigmas[5])
        s.addNoise(x, n, 749, out);
        assertEquals(dpmNoised(DPM20[5], 0.5f, -1.25f), out[0]);
        // begin index 5 (strength 0.75): before the first step its sigma, whatever the timestep argument
        s.setBeginIndex(5);
        s.addNoise(x, n, 999, out);
        assertEquals(dpmNoised(DPM20[5], 0.5f, -1.25f), out[0]);
        // the first step runs at index 5 even when given another timestep; then add_noise takes the step index (6)
        s.step(ones(16, 0.1f), 999, out, out);
        assertEquals(6, ((DPMSolverMultistepScheduler) s).stepIndex());
        s.addNoise(x, n, 999, out);
        assertEquals(dpmNoised(DPM20[6], 0.5f, -1.25f), out[0]);
        // a new schedule forgets the begin index
        s.setTimesteps(20);
        s.addNoise(x, n, 999, out);
        assertEquals(dpmNoised(DPM20[0], 0.5f, -1.25f), out[0]);
        assertThrows(IllegalArgumentException.class, () -> s.setBeginIndex(21));
    }

    @Test
    void eulerNoisesAtTheBeginIndexsSigmaAndScalesItsInput() {
        Scheduler s = Schedulers.create("EulerDiscreteScheduler", sd(), Map.of());
        s.setTimesteps(20);
        float[] sig = s.sigmas();
        s.setBeginIndex(5);
        float[] x = ones(4, 0.5f);
        float[] n = ones(4, 2f);
        float[] out = new float[4];
        s.addNoise(x, n, s.timesteps()[5], out);
        assertEquals(0.5f + 2f * sig[5], out[0], "x + noise * sigma");
        s.scaleModelInput(x, 0.0, out);  // the step index comes from the begin index, not the timestep
        assertEquals(0.5f / (float) Math.sqrt(sig[5] * sig[5] + 1f), out[0]);
        assertEquals(sig[0], s.initNoiseSigma(), "linspace spacing: init_noise_sigma = max(sigmas)");
    }

    @Test
    void ddimHasNoBeginIndexAndNoisesByTimestep() {
        Scheduler s = Schedulers.create("DDIMScheduler", sd(), Map.of());
        s.setTimesteps(10);
        s.setBeginIndex(3);  // ignored, as diffusers' DDIMScheduler has no set_begin_index
        float[] out = new float[1];
        s.addNoise(new float[] {1f}, new float[] {0f}, s.timesteps()[0], out);
        float[] ref = new float[1];
        Schedulers.create("DDIMScheduler", sd(), Map.of()).addNoise(new float[] {1f}, new float[] {0f},
                s.timesteps()[0], ref);
        assertEquals(ref[0], out[0]);
    }
}
