package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * 200 generations on the reference tiny model keep the resident set flat: every native tensor of a step lives in a
 * PointerScope (without scopes RSS climbs by GBs over such a run). Linux only (reads /proc/self/status).
 */
class NativeMemoryTest {
    /**
     * Native resident memory: RSS minus the committed Java heap, after two GCs and glibc's {@code malloc_trim(0)}.
     * Loading a model makes heap garbage (tokenizer JSON, archive scans) that G1 absorbs by growing the heap and
     * gives back only after a full GC; and glibc keeps freed native memory in its arenas. Both would look like native
     * growth: without the settling, 40 load/close cycles showed +500 MB; with it, +9 MB.
     */
    static long settledRssKb() throws Exception {
        for (int i = 0; i < 2; i++) {
            System.gc();
            Thread.sleep(500);
        }
        try {
            com.sun.jna.NativeLibrary.getInstance("c").getFunction("malloc_trim").invokeInt(new Object[] {0L});
        } catch (UnsatisfiedLinkError e) {
            // not glibc: measure as is
        }
        return rssKb() - (Runtime.getRuntime().totalMemory() >> 10);
    }

    static long rssKb() throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IllegalStateException("no VmRSS");
    }

    @Test
    void twoHundredGenerationsKeepRssFlat() throws Exception {
        Assumptions.assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "needs Linux /proc");
        try (StableDiffusion sd = StableDiffusion.load(TestModels.referenceTiny())) {
            GenerationRequest.Builder b = GenerationRequest.builder("a lighthouse").negativePrompt("fog").steps(3);
            for (int i = 0; i < 20; i++) {
                sd.generate(b.seed((long) i).build());
            }
            long before = settledRssKb();
            for (int i = 0; i < 200; i++) {
                sd.generate(b.seed((long) i).build());
            }
            long after = settledRssKb();
            System.out.printf("native RSS after 20 warm-up generations: %d MB; after 200 more: %d MB%n", before / 1024,
                    after / 1024);
            // one generation's native tensors are ~1 MB here; a leak of even one step's tensors would add > 100 MB
            assertTrue(after - before < 48 * 1024, "RSS grew by " + (after - before) / 1024 + " MB over 200 generations");
        }
    }

    @Test
    void closingReleasesTheModules() throws Exception {
        Assumptions.assumeTrue(Files.isReadable(Path.of("/proc/self/status")), "needs Linux /proc");
        GenerationRequest r = GenerationRequest.builder("a lighthouse").steps(2).seed(1L).build();
        for (int i = 0; i < 10; i++) {
            try (StableDiffusion sd = StableDiffusion.load(TestModels.referenceTiny())) {
                sd.generate(r);
            }
        }
        long before = settledRssKb();
        for (int i = 0; i < 40; i++) {
            try (StableDiffusion sd = StableDiffusion.load(TestModels.referenceTiny())) {
                sd.generate(r);
            }
        }
        long after = settledRssKb();
        System.out.printf("native RSS after 10 load/generate/close cycles: %d MB; after 40 more: %d MB%n",
                before / 1024, after / 1024);
        // leaking the modules would keep >= 3.8 MB of weights per cycle (> 150 MB over 40 cycles)
        assertTrue(after - before < 64 * 1024, "RSS grew by " + (after - before) / 1024 + " MB over 40 load/close cycles");
    }
}
