package dev.sdjvm;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.RequestLimitException;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The per-request work budget: derived defaults, each limit named, and the library enforcing it before any work. */
class RequestLimitsTest {
    static RequestLimitException over(RequestLimits l, GenerationRequest r, int h, int w) {
        return assertThrows(RequestLimitException.class, () -> l.check(r, h, w));
    }

    @Test
    void derivedLimitsFollowTheModelSize() {
        RequestLimits r = RequestLimits.auto().resolve(512, 512);
        assertEquals(4L * 512 * 512, r.maxImagePixels());
        assertTrue(r.maxBatchPixels() >= 512 * 512 && r.maxBatchPixels() <= 16L * 512 * 512, r.toString());
        assertEquals(4L * 512 * 512 * 1000, r.maxWork());
        assertEquals(GenerationRequest.MAX_STEPS, r.maxSteps());
        assertEquals(GenerationRequest.MAX_IMAGES, r.maxImages());
        // explicit values win
        RequestLimits e = RequestLimits.of(100, 200, 300, 4, 2).resolve(512, 512);
        assertEquals(RequestLimits.of(100, 200, 300, 4, 2), e);
    }

    @Test
    void eachLimitIsNamedWithTheFieldToChange() {
        RequestLimits l = RequestLimits.auto();
        RequestLimitException e = over(l, GenerationRequest.builder("a").height(100000).width(100000).build(), 64, 64);
        assertEquals("max_image_pixels", e.limit());
        assertEquals("height", e.field());
        assertTrue(e.getMessage().contains("max_image_pixels = 16384"), e.getMessage());
        e = over(l, GenerationRequest.builder("a").width(2048).build(), 64, 64);
        assertEquals("width", e.field());
        l.check(GenerationRequest.builder("a").height(128).width(128).build(), 64, 64);  // 4x: allowed
        e = over(l.withMaxBatchPixels(3 * 4096), GenerationRequest.builder("a").numImages(4).build(), 64, 64);
        assertEquals("max_batch_pixels", e.limit());
        assertEquals("num_images_per_prompt", e.field());
        e = over(l, GenerationRequest.builder("a").numImages(16).steps(1000).build(), 64, 64);
        assertEquals("max_work", e.limit());
        assertEquals("num_inference_steps", e.field());
        e = over(l.withMaxSteps(50), GenerationRequest.builder("a").steps(51).build(), 64, 64);
        assertEquals("max_steps", e.limit());
        e = over(l.withMaxImages(2), GenerationRequest.builder("a").numImages(3).build(), 64, 64);
        assertEquals("max_images", e.limit());
        // the largest request that fits every derived limit passes
        l.check(GenerationRequest.builder("a").numImages(4).steps(1000).build(), 64, 64);
    }

    @Test
    void invalidLimitsAreRejected() {
        assertThrows(InvalidRequestException.class, () -> RequestLimits.of(-1, 0, 0, 0, 0));
        assertThrows(InvalidRequestException.class, () -> RequestLimits.auto().withMaxSteps(1001));
        assertThrows(InvalidRequestException.class, () -> RequestLimits.auto().withMaxImages(17));
        assertEquals(RequestLimits.auto(), LoadOptions.defaults().withLimits(null).limits());
    }

    /** The library checks the budget before any work: a 100000x100000 request fails at once, nothing allocated. */
    @Test
    void stableDiffusionEnforcesTheLimitsBeforeAnyWork() {
        try (StableDiffusion sd = StableDiffusion.loadDefault(LoadOptions.defaults().withThreads(1))) {
            long t0 = System.nanoTime();
            RequestLimitException e = assertThrows(RequestLimitException.class, () -> sd.generate(
                    GenerationRequest.builder("a").height(100000).width(100000).steps(1).build()));
            assertEquals("max_image_pixels", e.limit());
            assertThrows(RequestLimitException.class, () -> sd.generate(
                    GenerationRequest.builder("a").height(1024).width(1024).steps(1).build()));
            assertTrue(System.nanoTime() - t0 < 1_000_000_000L, "refused up front");
        }
        try (StableDiffusion sd = StableDiffusion.loadDefault(LoadOptions.defaults().withThreads(1)
                .withLimits(RequestLimits.auto().withMaxSteps(2)))) {
            assertEquals("max_steps", assertThrows(RequestLimitException.class, () -> sd.generate(
                    GenerationRequest.builder("a").steps(3).build())).limit());
            assertEquals(2, sd.generate(GenerationRequest.builder("a").steps(2).seed(1L).build()).timings().steps());
        }
    }
}
