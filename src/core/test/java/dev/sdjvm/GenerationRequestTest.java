package dev.sdjvm;

import dev.sdjvm.errors.InvalidRequestException;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** A request is checked once, when it is built: every field diffusers' check_inputs knows without the model. */
class GenerationRequestTest {
    private static GenerationRequest.Builder req() {
        return GenerationRequest.builder("a lighthouse");
    }

    private static void rejects(String field, Supplier<GenerationRequest> build) {
        InvalidRequestException e = assertThrows(InvalidRequestException.class, build::get, field);
        assertEquals(field, e.field(), e.getMessage());
    }

    @Test
    void defaultsAreDiffusers() {
        GenerationRequest r = GenerationRequest.of("a cat");
        assertEquals(50, r.steps());
        assertEquals(7.5, r.guidanceScale());
        assertEquals(1, r.numImages());
        assertNull(r.seed());
        assertNull(r.scheduler());
        assertEquals(Map.of(), r.schedulerOverrides());
        assertTrue(r.doClassifierFreeGuidance());
    }

    @Test
    void everyInvalidFieldIsRejectedAtBuildTimeWithItsName() {
        rejects("prompt", () -> req().prompt(null).build());
        rejects("prompt", () -> GenerationRequest.of(null));
        rejects("num_inference_steps", () -> req().steps(0).build());
        rejects("num_inference_steps", () -> req().steps(GenerationRequest.MAX_STEPS + 1).build());
        rejects("guidance_scale", () -> req().guidanceScale(Double.NaN).build());
        rejects("guidance_scale", () -> req().guidanceScale(-1).build());
        rejects("guidance_scale", () -> req().guidanceScale(Double.POSITIVE_INFINITY).build());
        rejects("seed", () -> req().seed(-5L).build());
        rejects("seed", () -> req().seed(Long.MIN_VALUE).build());
        rejects("num_images_per_prompt", () -> req().numImages(0).build());
        rejects("num_images_per_prompt", () -> req().numImages(GenerationRequest.MAX_IMAGES + 1).build());
        rejects("height", () -> req().height(60).build());
        rejects("height", () -> req().height(0).build());
        rejects("width", () -> req().width(100).build());
        rejects("width", () -> req().width(-8).build());
        rejects("latents", () -> req().latents(new float[] {0, Float.NaN}).build());
        rejects("latents", () -> req().latents(new float[] {Float.NEGATIVE_INFINITY}).build());
        rejects("scheduler", () -> req().scheduler("no-such-scheduler").build());
        Map<String, Object> nullKey = new HashMap<>();
        nullKey.put(null, true);
        rejects("scheduler_overrides", () -> req().schedulerOverrides(nullKey).build());
        // a null value is JSON null in scheduler_overrides: the key's default (SchedulerConfigBoundsTest)
        Map<String, Object> nullValue = new HashMap<>();
        nullValue.put("use_karras_sigmas", null);
        assertTrue(req().schedulerOverrides(nullValue).build().schedulerOverrides().containsKey("use_karras_sigmas"));
        // the canonical constructor checks too: there is no way to hold an unchecked request
        rejects("num_inference_steps", () -> new GenerationRequest("x", null, 0, 7.5, null, 1, null, null, null, null,
                null, null, null));
    }

    @Test
    void validEdgeValuesAreAccepted() {
        GenerationRequest r = req().steps(1).guidanceScale(0).seed(0L).numImages(GenerationRequest.MAX_IMAGES)
                .height(8).width(8).scheduler("DPM++2M-Karras").build();
        assertEquals(0L, r.seed());
        assertEquals(Long.MAX_VALUE, req().seed(Long.MAX_VALUE).build().seed());
        assertEquals("config", req().scheduler("config").build().scheduler());
        assertEquals("EulerDiscreteScheduler", req().scheduler("EulerDiscreteScheduler").build().scheduler());
        assertNull(req().scheduler(null).build().scheduler());
        assertEquals(" ", req().scheduler(" ").build().scheduler());  // blank = the default, as the pipeline reads it
    }

    @Test
    void aBuiltRequestCannotBeChangedAfterItWasChecked() {
        float[] latents = {1, 2, 3};
        Map<String, Object> overrides = new LinkedHashMap<>(Map.of("use_karras_sigmas", true));
        GenerationRequest r = req().latents(latents).schedulerOverrides(overrides).build();
        latents[0] = Float.NaN;
        overrides.put("timestep_spacing", "trailing");
        assertArrayEquals(new float[] {1, 2, 3}, r.latents());
        r.latents()[1] = Float.NaN;
        assertArrayEquals(new float[] {1, 2, 3}, r.latents());
        assertEquals(Map.of("use_karras_sigmas", true), r.schedulerOverrides());
        assertThrows(UnsupportedOperationException.class, () -> r.schedulerOverrides().put("x", 1));
    }

    @Test
    void toBuilderKeepsEveryValueAndRechecks() {
        GenerationRequest r = req().negativePrompt("blurry").steps(20).guidanceScale(4).seed(9L).numImages(2)
                .scheduler("euler").height(64).width(72).build();
        assertEquals(r, r.toBuilder().build());
        rejects("seed", () -> r.toBuilder().seed(-1L).build());
    }
}
