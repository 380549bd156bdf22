package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** PNDM and LMS: diffusers' own dummy-model tests. */
class PndmLmsSchedulersTest {

    // tests/schedulers/test_scheduler_pndm.py: num_train 1000, linear 1e-4..0.02 (skip_prk_steps default False);
    // full_loop: 10 steps, prk_timesteps then plms_timesteps, residual = model(sample, t); step_prk / step_plms

    static float[] pndmLoop(Object... kv) {
        Map<String, Object> m = EulerDdimSchedulersTest.cfg(1000, kv);
        PNDMScheduler s = PNDMScheduler.fromConfig(m, Map.of());
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
    void diffusersPndmFullLoops() {
        float[] x = pndmLoop();
        assertEquals(198.1318, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.2580, DiffusersDummy.meanAbs(x), 1e-3);
        x = pndmLoop("prediction_type", "v_prediction");
        assertEquals(67.3986, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.0878, DiffusersDummy.meanAbs(x), 1e-3);
        x = pndmLoop("set_alpha_to_one", true, "beta_start", 0.01);
        assertEquals(230.0399, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.2995, DiffusersDummy.meanAbs(x), 1e-3);
        x = pndmLoop("set_alpha_to_one", false, "beta_start", 0.01);
        assertEquals(186.9482, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(0.2434, DiffusersDummy.meanAbs(x), 1e-3);
    }

    @Test
    void diffusersPndmStepsOffsetTimesteps() {
        PNDMScheduler s = PNDMScheduler.fromConfig(EulerDdimSchedulersTest.cfg(1000, "steps_offset", 1), Map.of());
        s.setTimesteps(10);
        assertArrayEquals(new double[] {901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401,
            301, 201, 101, 1}, s.timesteps());
    }

    @Test
    void sd21BasePndmSkipPrkTimesteps() {
        // SD 2.1-base's scheduler_config.json (PNDM, leading, steps_offset 1, skip_prk_steps true):
        // plms_timesteps = concatenate([ts[:-1], ts[-2:-1], ts[-1:]])[::-1] with ts = arange(20) * 50 + 1
        Map<String, Object> cfg = RefCases.baseConfig(RefCases.caseNamed("dpm_eps_20"));
        Scheduler s = Schedulers.fromConfig(cfg, Map.of());
        assertEquals("PNDMScheduler", s.name());
        s.setTimesteps(20);
        double[] ts = s.timesteps();
        assertEquals(21, ts.length);
        assertEquals(951, ts[0]);
        assertEquals(901, ts[1]);
        assertEquals(901, ts[2]);
        assertEquals(851, ts[3]);
        assertEquals(1, ts[20]);
    }

    // tests/schedulers/test_scheduler_lms.py: num_train 1100, linear 1e-4..0.02, 10 steps, k-diffusion loop

    @Test
    void diffusersLmsFullLoops() {
        float[] x = EulerDdimSchedulersTest.kLoop(LMSDiscreteScheduler.fromConfig(
                EulerDdimSchedulersTest.cfg(1100), Map.of()), 10);
        assertEquals(1006.388, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(1.31, DiffusersDummy.meanAbs(x), 1e-3);
        x = EulerDdimSchedulersTest.kLoop(LMSDiscreteScheduler.fromConfig(
                EulerDdimSchedulersTest.cfg(1100, "prediction_type", "v_prediction"), Map.of()), 10);
        assertEquals(0.0017, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(2.2676e-06, DiffusersDummy.meanAbs(x), 1e-3);
        x = EulerDdimSchedulersTest.kLoop(LMSDiscreteScheduler.fromConfig(
                EulerDdimSchedulersTest.cfg(1100, "use_karras_sigmas", true), Map.of()), 10);
        assertEquals(3812.9927, DiffusersDummy.sumAbs(x), 2e-2);
        assertEquals(4.9648, DiffusersDummy.meanAbs(x), 1e-3);
    }

    @Test
    void diffusersLmsFullLoopWithNoise() {
        LMSDiscreteScheduler s = LMSDiscreteScheduler.fromConfig(EulerDdimSchedulersTest.cfg(1100), Map.of());
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
        assertEquals(27663.6895, DiffusersDummy.sumAbs(x), 1e-2);
        assertEquals(36.0204, DiffusersDummy.meanAbs(x), 1e-3);
    }
}
