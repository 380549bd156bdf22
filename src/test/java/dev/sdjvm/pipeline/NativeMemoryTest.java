package dev.sdjvm.pipeline;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.TestModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * 200 generations on the reference tiny model keep the resident set flat: every native tensor of a step lives in a
 * PointerScope (without scopes RSS climbs by GBs over such a run). Linux only (reads /proc/self/status).
 */
class NativeMemoryTest {
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
            System.gc();
            long before = rssKb();
            for (int i = 0; i < 200; i++) {
                sd.generate(b.seed((long) i).build());
            }
            System.gc();
            long after = rssKb();
            System.out.printf("RSS after 20 warm-up generations: %d MB; after 200 more: %d MB%n", before / 1024, after / 1024);
            // one generation's native tensors are ~1 MB here; a leak of even one step's tensors would add > 100 MB
            assertTrue(after - before < 48 * 1024, "RSS grew by " + (after - before) / 1024 + " MB over 200 generations");
        }
    }
}
