package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.InvalidRequestException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A generation whose latents become NaN or infinite fails; it never returns a picture. */
class NonFiniteTest {
    private static final Path FP32 = TestModels.resource("models/tiny-sd21-fp32");

    @Test
    void overridesThatOverflowTheSchedulerAreTheClientsMistake() {
        try (StableDiffusion sd = StableDiffusion.load(FP32)) {
            for (Map<String, Object> o : java.util.List.<Map<String, Object>>of(
                    Map.of("beta_start", 1e-300, "beta_end", 1e-300),
                    Map.of("beta_start", 0.999999, "beta_end", 0.9999999))) {
                GenerationRequest r = GenerationRequest.builder("a red circle").steps(4).seed(1L).schedulerOverrides(o)
                        .build();
                InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> sd.generate(r), o.toString());
                assertEquals("scheduler_overrides", e.field(), e.getMessage());
                assertTrue(e.getMessage().contains("became"), e.getMessage());
            }
            // and the model still generates
            assertEquals(1, sd.generate(GenerationRequest.builder("a red circle").steps(2).seed(1L).build()).images().size());
        }
    }

    @Test
    void theCheckFindsTheFirstNonFiniteValue() {
        float[] ok = {0f, 1f, -3f};
        dev.sdjvm.pipeline.PipelineTestAccess.checkFinite(ok, 0, 1, 999);
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            float[] l = {0f, bad, 1f};
            BackendException e = assertThrows(BackendException.class,
                    () -> dev.sdjvm.pipeline.PipelineTestAccess.checkFinite(l, 2, 20, 500));
            assertTrue(e.getMessage().contains("step 3 of 20"), e.getMessage());
        }
    }
}
