package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Euler, Euler ancestral and DDIM: reference trajectories and diffusers' own dummy-model tests. */
class EulerDdimSchedulersTest {

    @Test
    void euler20MatchesDiffusers() {
        JsonNode c = RefCases.caseNamed("euler_20");
        RefCases.runAndCompare(Schedulers.create("euler", RefCases.baseConfig(c), RefCases.overrides(c)), c, 1e-5);
    }

    @Test
    void ddim20Eta0MatchesDiffusers() {
        JsonNode c = RefCases.caseNamed("ddim_20_eta0");
        RefCases.runAndCompare(Schedulers.create("ddim", RefCases.baseConfig(c), RefCases.overrides(c)), c, 1e-5);
    }

    static Map<String, Object> cfg(int numTrain, Object... kv) {
        Map<String, Object> m = new HashMap<>();
        m.put("num_train_timesteps", numTrain);
        m.put("beta_start", 0.0001);
        m.put("beta_end", 0.02);
        m.put("beta_schedule", "linear");
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    /**
     * The k-diffusion style full_loop of diffusers' Euler / Euler ancestral / LMS tests: sample = sample_deter *
     * init_noise_sigma; per t: sample = scale_model_input(sample, t); out = model(sample, t); sample = step(...).
     */
    static float[] kLoop(Scheduler s, int steps) {
        s.setTimesteps(steps);
        float[] x = DiffusersDummy.sampleDeter();
        float ins = s.initNoiseSigma();
        for (int i = 0; i < x.length; i++) {
            x[i] = x[i] * ins;
        }
        float[] mo = new float[x.length];
        for (double t : s.timesteps()) {
            s.scaleModelInput(x, t, x);
            DiffusersDummy.model(x, t, mo);
            s.step(mo, t, x, x);
        }
        return x;
    }

    // tests/schedulers/test_scheduler_euler.py: config num_train_timesteps 1100, linear 1e-4..0.02, 10 steps

    @Test
    void diffusersEulerFullLoopNoNoise() {
        float[] x = kLoop(EulerDiscreteScheduler.fromConfig(cfg(1100), Map.of()), 10);
        assertEquals(10.0807, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.0131, DiffusersDummy.meanAbs(x), 1e-3);
    }

    @Test
    void diffusersEulerFullLoopVPrediction() {
        float[] x = kLoop(EulerDiscreteScheduler.fromConfig(cfg(1100, "prediction_type", "v_prediction"), Map.of()), 10);
        assertEquals(0.0002, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(2.2676e-06, DiffusersDummy.meanAbs(x), 1e-3);
    }

    @Test
    void diffusersEulerFullLoopKarras() {
        // test_full_loop_device_karras_sigmas
        float[] x = kLoop(EulerDiscreteScheduler.fromConfig(cfg(1100, "use_karras_sigmas", true), Map.of()), 10);
        assertEquals(124.52299499511719, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.16213932633399963, DiffusersDummy.meanAbs(x), 1e-3);
    }

    @Test
    void diffusersEulerFullLoopWithNoise() {
        // test_full_loop_with_noise: t_start = 8; add_noise(sample * init_noise_sigma, noise_deter, timesteps[8])
        EulerDiscreteScheduler s = EulerDiscreteScheduler.fromConfig(cfg(1100), Map.of());
        s.setTimesteps(10);
        float[] x = DiffusersDummy.sampleDeter();
        float ins = s.initNoiseSigma();
        for (int i = 0; i < x.length; i++) {
            x[i] = x[i] * ins;
        }
        double[] ts = s.timesteps();
        s.addNoise(x, DiffusersDummy.noiseDeter(), ts[8], x);
        float[] mo = new float[x.length];
        for (int k = 8; k < ts.length; k++) {
            s.scaleModelInput(x, ts[k], x);
            DiffusersDummy.model(x, ts[k], mo);
            s.step(mo, ts[k], x, x);
        }
        assertEquals(57062.9297, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(74.3007, DiffusersDummy.meanAbs(x), 1e-3);
    }

    // tests/schedulers/test_scheduler_euler_ancestral.py: same config; noise = torch.manual_seed(0) randn per step

    static NoiseSource torchSeed0Noise() {
        float[] all;
        try (InputStream in = EulerDdimSchedulersTest.class.getResourceAsStream(
                "/scheduler/torch_randn_seed0_10x4x3x8x8.f32")) {
            byte[] b = in.readAllBytes();
            all = new float[b.length / 4];
            ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(all);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        int[] pos = {0};
        return buf -> {
            System.arraycopy(all, pos[0], buf, 0, buf.length);
            pos[0] += buf.length;
        };
    }

    @Test
    void diffusersEulerAncestralFullLoopWithTorchNoise() {
        Scheduler s = EulerAncestralDiscreteScheduler.fromConfig(cfg(1100), Map.of());
        s.setNoiseSource(torchSeed0Noise());
        float[] x = kLoop(s, 10);
        assertEquals(152.3192, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.1983, DiffusersDummy.meanAbs(x), 1e-3);
    }

    @Test
    void diffusersEulerAncestralFullLoopVPredictionWithTorchNoise() {
        Scheduler s = EulerAncestralDiscreteScheduler.fromConfig(cfg(1100, "prediction_type", "v_prediction"),
                Map.of());
        s.setNoiseSource(torchSeed0Noise());
        float[] x = kLoop(s, 10);
        assertEquals(108.4439, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.1412, DiffusersDummy.meanAbs(x), 1e-3);
    }

    // tests/schedulers/test_scheduler_ddim.py: num_train 1000, linear 1e-4..0.02, clip_sample True; full_loop
    // 10 steps, eta 0: residual = model(sample, t); sample = step(residual, t, sample, eta)

    static float[] ddimLoop(Object... kv) {
        Map<String, Object> m = cfg(1000, "clip_sample", true);
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        DDIMScheduler s = DDIMScheduler.fromConfig(m, Map.of());
        s.setTimesteps(10);
        float[] x = DiffusersDummy.sampleDeter();
        float[] r = new float[x.length];
        for (double t : s.timesteps()) {
            DiffusersDummy.model(x, t, r);
            s.step(r, t, x, x);
        }
        return x;
    }

    @Test
    void diffusersDdimFullLoops() {
        float[] x = ddimLoop();
        assertEquals(172.0067, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.223967, DiffusersDummy.meanAbs(x), 1e-3);
        x = ddimLoop("prediction_type", "v_prediction");
        assertEquals(52.5302, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.0684, DiffusersDummy.meanAbs(x), 1e-3);
        x = ddimLoop("set_alpha_to_one", true, "beta_start", 0.01);
        assertEquals(149.8295, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.1951, DiffusersDummy.meanAbs(x), 1e-3);
        x = ddimLoop("set_alpha_to_one", false, "beta_start", 0.01);
        assertEquals(149.0784, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.1941, DiffusersDummy.meanAbs(x), 1e-3);
    }

    @Test
    void diffusersDdimStepsOffset() {
        DDIMScheduler s = DDIMScheduler.fromConfig(cfg(1000, "steps_offset", 1), Map.of());
        s.setTimesteps(5);
        assertArrayEquals(new double[] {801, 601, 401, 201, 1}, s.timesteps());
    }

    @Test
    void eulerAncestralRejectsSamplePrediction() {
        SchedulerConfigException e = assertThrows(SchedulerConfigException.class,
                () -> EulerAncestralDiscreteScheduler.fromConfig(Map.of("prediction_type", "sample"), Map.of()));
        assertEquals("prediction_type", e.field());
    }
}
