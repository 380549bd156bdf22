package dev.sdjvm;

import dev.sdjvm.errors.InvalidRequestException;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
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
        // steps and guidance are the model's (StableDiffusion.withModelDefaults): absent until then
        assertTrue(r.steps().isEmpty());
        assertTrue(r.guidanceScale().isEmpty());
        assertEquals(1, r.numImages());
        assertNull(r.seed());
        assertNull(r.scheduler());
        assertEquals(Map.of(), r.schedulerOverrides());
        GenerationRequest sd = r.withDefaults(50, 7.5);
        assertEquals(50, sd.steps().getAsInt());
        assertEquals(7.5, sd.guidanceScale().getAsDouble());
        assertEquals(sd, sd.withDefaults(4, 8.5), "given values stay");
        assertEquals(3, req().steps(3).build().withDefaults(4, 8.5).steps().getAsInt());
        assertEquals(8.5, req().steps(3).build().withDefaults(4, 8.5).guidanceScale().getAsDouble());
        assertTrue(sd != r && !sd.equals(r), "a copy: the request itself is unchanged");
        rejects("num_inference_steps", () -> r.withDefaults(0, 7.5));
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
        // no constructor is public: the builder, which checks, is the only way to hold a request
        assertEquals(0, GenerationRequest.class.getConstructors().length);
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

    /**
     * Every field of the builder (the request's values) set away from its default: toBuilder keeps each one, and
     * equality sees each one. A field added to the builder fails here until it is set below.
     */
    @Test
    void toBuilderAndEqualsCoverEveryField() throws Exception {
        dev.sdjvm.image.RgbImage image = new dev.sdjvm.image.RgbImage(16, 8, new byte[16 * 8 * 3]);
        StepListener listener = (k, n, t, ns) -> true;
        GenerationRequest full = req().negativePrompt("blurry").steps(20).guidanceScale(4).seed(9L).numImages(2)
                .scheduler("euler").schedulerOverrides(Map.of("use_karras_sigmas", true)).height(64).width(72)
                .latents(new float[] {1, 2}).listener(listener).deadline(java.time.Instant.EPOCH).initImage(image)
                .strength(0.5).mask(image).guidanceRescale(0.7).build();
        java.util.List<java.lang.reflect.Field> fields = new java.util.ArrayList<>();
        for (java.lang.reflect.Field f : GenerationRequest.Builder.class.getDeclaredFields()) {
            if (!java.lang.reflect.Modifier.isStatic(f.getModifiers()) && !f.isSynthetic()) {
                f.setAccessible(true);
                fields.add(f);
            }
        }
        assertTrue(fields.size() >= 16, fields.toString());
        GenerationRequest.Builder defaults = GenerationRequest.builder("a lighthouse");
        GenerationRequest.Builder of = full.toBuilder();
        for (java.lang.reflect.Field f : fields) {
            if (f.getName().equals("prompt")) {
                continue;
            }
            assertNotEquals(java.util.Arrays.deepToString(new Object[] {f.get(defaults)}),
                    java.util.Arrays.deepToString(new Object[] {f.get(of)}), f.getName() + " is set in this test");
        }
        GenerationRequest copy = full.toBuilder().build();
        assertEquals(full, copy);
        assertEquals(full.hashCode(), copy.hashCode());
        int checked = 0;
        for (java.lang.reflect.Field f : fields) {
            GenerationRequest.Builder changed = full.toBuilder();
            f.set(changed, f.getName().equals("prompt") ? "another" : f.get(defaults));
            GenerationRequest other;
            try {
                other = changed.build();
            } catch (InvalidRequestException e) {
                continue;  // e.g. an image without its mask's image: that field cannot be left out alone
            }
            assertNotEquals(full, other, f.getName() + " takes part in equals");
            checked++;
        }
        assertTrue(checked >= fields.size() - 2, checked + " of " + fields.size());
    }

    @Test
    void toBuilderKeepsEveryValueAndRechecks() {
        GenerationRequest r = req().negativePrompt("blurry").steps(20).guidanceScale(4).seed(9L).numImages(2)
                .scheduler("euler").height(64).width(72).build();
        assertEquals(r, r.toBuilder().build());
        assertEquals(r.hashCode(), r.toBuilder().build().hashCode());
        rejects("seed", () -> r.toBuilder().seed(-1L).build());
        // a changed builder does not change the request it came from, nor the request it built
        GenerationRequest.Builder b = r.toBuilder();
        GenerationRequest built = b.build();
        b.steps(7).prompt("other");
        assertEquals(20, r.steps().getAsInt());
        assertEquals(20, built.steps().getAsInt());
        assertEquals("a lighthouse", built.prompt());
        // equality covers every value: latents by content, a differing field makes them differ
        GenerationRequest withLatents = req().latents(new float[] {1, 2}).build();
        assertEquals(withLatents, req().latents(new float[] {1, 2}).build());
        assertNotEquals(withLatents, req().latents(new float[] {1, 3}).build());
        assertNotEquals(r, r.toBuilder().steps(21).build());
        assertNotEquals(r, r.toBuilder().negativePrompt(null).build());
        assertTrue(r.toString().contains("steps=20"), r.toString());
    }
}
