package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.Modifier;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * LoadOptions, CpuOptions and RequestLimits: immutable values without a public constructor (so options can be added
 * without breaking callers), each {@code with...} changing its one value, equal by value.
 */
class OptionsValuesTest {
    @Test
    void noPublicConstructors() {
        for (Class<?> c : List.of(LoadOptions.class, CpuOptions.class, RequestLimits.class)) {
            assertTrue(Modifier.isFinal(c.getModifiers()), c + " is final");
            assertFalse(c.isRecord(), c + " is not a record (a record's canonical constructor is public)");
            assertTrue(Arrays.stream(c.getConstructors()).noneMatch(k -> Modifier.isPublic(k.getModifiers())),
                    c + " has no public constructor");
        }
    }

    @Test
    void withersChangeOneValueAndEqualityIsByValue() {
        CpuOptions d = CpuOptions.defaults().withTuningCache(Path.of("/tmp/x"));
        assertEquals(d, CpuOptions.defaults().withTuningCache(Path.of("/tmp/x")));
        assertEquals(d.hashCode(), CpuOptions.defaults().withTuningCache(Path.of("/tmp/x")).hashCode());
        CpuOptions app = CpuOptions.application().withTuningCache(Path.of("/tmp/x"));
        assertEquals(app, d.withHugePages(true).withSingleThreadedBlas(true).withTrimMemory(true),
                "application() = defaults() + huge pages, one BLAS thread, malloc_trim");
        assertTrue(d.withHugePages(true).hugePages());
        assertFalse(d.withHugePages(true).trimMemory());
        assertNotEquals(d, d.withMeasure(false));
        assertNotEquals(d, d.withPassiveWait(false));
        assertTrue(d.toString().startsWith("CpuOptions[measure=true, tuningCache=/tmp/x"), d.toString());

        LoadOptions l = LoadOptions.defaults().withCpu(d);
        assertEquals(l, LoadOptions.defaults().withCpu(d));
        assertEquals(3, l.withThreads(3).threads());
        assertEquals(l.threads(), l.withUnetReplicas(2).threads());
        assertNotEquals(l, l.withWarmup(false));
        assertNotEquals(l, l.withLimits(RequestLimits.auto().withMaxSteps(10)));
        assertEquals(RequestLimits.auto(), LoadOptions.defaults().withLimits(null).limits(), "null limits = auto");

        RequestLimits r = RequestLimits.of(1, 2, 3, 4, 5);
        assertEquals(r, RequestLimits.auto().withMaxImagePixels(1).withMaxBatchPixels(2).withMaxWork(3).withMaxSteps(4)
                .withMaxImages(5));
        assertEquals("RequestLimits[maxImagePixels=1, maxBatchPixels=2, maxWork=3, maxSteps=4, maxImages=5]",
                r.toString());
    }
}
