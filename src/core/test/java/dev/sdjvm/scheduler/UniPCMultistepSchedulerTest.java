package dev.sdjvm.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * diffusers' tests/schedulers/test_scheduler_unipc.py (UniPCMultistepSchedulerTest): config num_train 1000,
 * linear 1e-4..0.02, solver_order 2, solver_type bh2, final_sigmas_type sigma_min (the current
 * get_scheduler_config); full_loop: 10 steps, residual = model(sample, t),
 * sample = step(residual, t, sample). Expected mean |x| values of diffusers 0.3x-0.40 (after the sigma-based
 * rewrite): 0.2464 (default), 0.2925 (Karras), 0.1014 (v_prediction), 0.1966 (Karras + v_prediction).
 */
class UniPCMultistepSchedulerTest {

    static float[] loop(Object... kv) {
        Map<String, Object> m = EulerDdimSchedulersTest.cfg(1000, "solver_order", 2, "solver_type", "bh2",
                "final_sigmas_type", "sigma_min");
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return DiffusersDummy.fullLoop(UniPCMultistepScheduler.fromConfig(m, Map.of()), 10);
    }

    @Test
    void diffusersFullLoopNoNoise() {
        assertEquals(0.2464, DiffusersDummy.meanAbs(loop()), 1e-3);
    }

    @Test
    void diffusersFullLoopKarras() {
        assertEquals(0.2925, DiffusersDummy.meanAbs(loop("use_karras_sigmas", true)), 1e-3);
    }

    @Test
    void diffusersFullLoopVPrediction() {
        assertEquals(0.1014, DiffusersDummy.meanAbs(loop("prediction_type", "v_prediction")), 1e-3);
    }

    @Test
    void diffusersFullLoopKarrasVPrediction() {
        float[] x = loop("prediction_type", "v_prediction", "use_karras_sigmas", true);
        assertEquals(0.1966, DiffusersDummy.meanAbs(x), 1e-3);
    }

    @Test
    void diffusersSolverOrderAndTypeHaveNoNaN() {
        for (String st : new String[] {"bh1", "bh2"}) {
            for (int order = 1; order <= 3; order++) {
                for (String pt : new String[] {"epsilon", "sample"}) {
                    for (float v : loop("solver_order", order, "solver_type", st, "prediction_type", pt)) {
                        assertFalse(Float.isNaN(v), st + "/" + order + "/" + pt);
                    }
                }
            }
        }
    }

    @Test
    void unsupportedFlowOptionsNameTheKey() {
        SchedulerConfigException e = assertThrows(SchedulerConfigException.class,
                () -> UniPCMultistepScheduler.fromConfig(Map.of("use_flow_sigmas", true), Map.of()));
        assertEquals("use_flow_sigmas", e.field());
    }
}
