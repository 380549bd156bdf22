package dev.sdjvm.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.TestModels;
import dev.sdjvm.errors.GenerationCancelledException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.model.Manifest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/** Behaviour of the pipeline on the reference tiny model (random weights, 128x128): what diffusers users rely on. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PipelineBehaviourTest {
    private StableDiffusion sd;

    @BeforeAll
    void load() {
        sd = StableDiffusion.load(TestModels.referenceTiny());
    }

    @AfterAll
    void close() {
        sd.close();
    }

    private static GenerationRequest.Builder req() {
        return GenerationRequest.builder("a watercolor painting of a lighthouse").steps(6).seed(7L);
    }

    static int maxDiff(byte[] a, byte[] b) {
        int m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs((a[i] & 0xff) - (b[i] & 0xff)));
        }
        return m;
    }

    @Test
    void sameSeedSameImageOtherSeedOtherImage() {
        GenerationResult a = sd.generate(req().build());
        GenerationResult b = sd.generate(req().build());
        GenerationResult c = sd.generate(req().seed(8L).build());
        assertArrayEquals(a.images().get(0).rgb(), b.images().get(0).rgb(), "same seed, same image");
        assertTrue(maxDiff(a.images().get(0).rgb(), c.images().get(0).rgb()) > 10, "another seed, another image");
    }

    @Test
    void stochasticSchedulersDrawFromTheSeededGenerator() {
        // Euler ancestral draws noise every step from the generator that drew the latents (diffusers passes it to step)
        GenerationResult a = sd.generate(req().scheduler("euler_a").build());
        GenerationResult b = sd.generate(req().scheduler("euler_a").build());
        GenerationResult c = sd.generate(req().scheduler("euler").build());
        assertArrayEquals(a.latents(), b.latents(), "same seed, same noise");
        assertTrue(maxDiff(a.images().get(0).rgb(), c.images().get(0).rgb()) > 0, "ancestral noise changes the result");
        GenerationResult sde = sd.generate(req().scheduler("dpm++2m-sde").build());
        assertArrayEquals(sde.latents(), sd.generate(req().scheduler("dpm++2m-sde").build()).latents());
    }

    @Test
    void randomSeedIsReportedAndReproduces() {
        GenerationResult a = sd.generate(req().seed((Long) null).build());
        GenerationResult b = sd.generate(req().seed(a.seed()).build());
        assertArrayEquals(a.images().get(0).rgb(), b.images().get(0).rgb());
    }

    @Test
    void guidanceChangesTheImage() {
        GenerationResult g1 = sd.generate(req().guidanceScale(1.0).build());
        GenerationResult g75 = sd.generate(req().guidanceScale(7.5).build());
        assertTrue(maxDiff(g1.images().get(0).rgb(), g75.images().get(0).rgb()) > 10);
        // at g = 1 there is no CFG: the negative prompt is ignored, as diffusers does
        GenerationResult g1neg = sd.generate(req().guidanceScale(1.0).negativePrompt("low quality").build());
        assertArrayEquals(g1.images().get(0).rgb(), g1neg.images().get(0).rgb());
    }

    @Test
    void injectedLatentsEqualTheSeededDraw() {
        GenerationResult a = sd.generate(req().build());
        float[] init = dev.sdjvm.backend.torch.Tensors.randn(dev.sdjvm.backend.torch.Tensors.generator(7), 1, 4, 16, 16);
        GenerationResult b = sd.generate(req().seed(123L).latents(init).build());
        assertArrayEquals(a.latents(), b.latents());
    }

    @Test
    void severalImagesPerPromptAreTheBatchedDraw() {
        GenerationResult two = sd.generate(req().numImages(2).build());
        assertEquals(2, two.images().size());
        // diffusers draws randn([2,4,h,w]) once: image 0 uses the first half of that draw
        float[] both = dev.sdjvm.backend.torch.Tensors.randn(dev.sdjvm.backend.torch.Tensors.generator(7), 2, 4, 16, 16);
        GenerationResult first = sd.generate(req().latents(Arrays.copyOf(both, 1024)).build());
        assertTrue(maxDiff(first.images().get(0).rgb(), two.images().get(0).rgb()) <= 1);
        assertTrue(maxDiff(two.images().get(0).rgb(), two.images().get(1).rgb()) > 10);
    }

    @Test
    void staticBatchOneUnetGivesTheSameImage(@TempDir Path tmp) throws Exception {
        Path dir = TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m"));
        writeManifest(dir, 1);
        GenerationResult dynamic = sd.generate(req().build());
        try (StableDiffusion b1 = StableDiffusion.load(dir)) {
            assertEquals(1, b1.info().artifacts().get("unet").batch());
            GenerationResult two = b1.generate(req().build());
            // B=2 equals two B=1 calls to within 1.9e-6 (reference README): images agree to rounding
            assertTrue(maxDiff(dynamic.images().get(0).rgb(), two.images().get(0).rgb()) <= 1);
        }
    }

    @Test
    void twoReplicasRunTheCfgHalvesConcurrentlyAndGiveTheSameImage(@TempDir Path tmp) throws Exception {
        Path dir = TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m"));
        writeManifest(dir, 1);
        byte[] sequential;
        try (StableDiffusion one = StableDiffusion.load(dir)) {
            sequential = one.generate(req().build()).images().get(0).rgb();
        }
        List<long[]> spans = Collections.synchronizedList(new ArrayList<>());
        // proof of concurrency that does not depend on timing: each chunk waits at a barrier before its forward
        // call; with sequential calls the barrier would time out
        java.util.concurrent.CyclicBarrier barrier = new java.util.concurrent.CyclicBarrier(2);
        java.util.Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
        try (StableDiffusion two = StableDiffusion.load(dir, LoadOptions.defaults().withUnetReplicas(2))) {
            UNetRunner.observer = new UNetRunner.ChunkObserver() {
                @Override
                public void onStart(int chunk) {
                    threads.add(chunk + ":" + Thread.currentThread().getName());
                    try {
                        barrier.await(20, java.util.concurrent.TimeUnit.SECONDS);
                    } catch (Exception e) {
                        throw new IllegalStateException("the other CFG half did not run concurrently", e);
                    }
                }

                @Override
                public void onChunk(int chunk, long s, long e) {
                    spans.add(new long[] {chunk, s, e});
                }
            };
            byte[] parallel = two.generate(req().build()).images().get(0).rgb();
            UNetRunner.observer = null;
            assertArrayEquals(sequential, parallel, "replicas compute the same chunks: bitwise equal");
            assertEquals(12, spans.size());
            assertEquals(2, threads.size(), "chunk 0 and chunk 1 always ran on their own threads: " + threads);
        } finally {
            UNetRunner.observer = null;
        }
    }

    static void writeManifest(Path dir, int unetBatch) throws Exception {
        String m = "{\"format\": \"" + Manifest.FORMAT + "\", \"target\": \"cpu\", \"created_by\": \"test\","
                + "\"artifacts\": {\"unet\": {\"file\": \"unet.pt\", \"batch\": " + unetBatch + ", \"inputs\": ["
                + "{\"name\": \"sample\", \"dtype\": \"float32\", \"shape\": [1,4,16,16]},"
                + "{\"name\": \"timestep\", \"dtype\": \"float32\", \"shape\": [1]},"
                + "{\"name\": \"encoder_hidden_states\", \"dtype\": \"float32\", \"shape\": [1,77,16]}]}}}";
        Files.writeString(dir.resolve("compiled_models").resolve(Manifest.FILE_NAME), m);
    }

    @Test
    void otherSizesWorkWithCpuTracedArtifactsOnly(@TempDir Path tmp) throws Exception {
        GenerationResult r = sd.generate(req().steps(2).height(64).width(192).build());
        assertEquals(192, r.images().get(0).width());
        assertEquals(64, r.images().get(0).height());
        assertEquals(4 * 8 * 24, r.latents().length);
        Path dir = TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m"));
        writeManifest(dir, 1);
        try (StableDiffusion fixed = StableDiffusion.load(dir)) {
            var e = assertThrows(InvalidRequestException.class, () -> fixed.generate(req().height(64).build()));
            assertEquals("height", e.field());
        }
    }

    @Test
    void listenerSeesEveryStepAndCanCancel() {
        AtomicInteger seen = new AtomicInteger();
        sd.generate(req().listener((k, n, t, ns) -> {
            assertEquals(seen.incrementAndGet(), k);
            assertEquals(6, n);
            return true;
        }).build());
        assertEquals(6, seen.get());
        var e = assertThrows(GenerationCancelledException.class,
                () -> sd.generate(req().listener((k, n, t, ns) -> k < 3).build()));
        assertTrue(e.getMessage().contains("step 3"), e.getMessage());
        assertThrows(GenerationCancelledException.class,
                () -> sd.generate(req().deadline(java.time.Instant.now().minusSeconds(1)).build()));
        // still usable afterwards
        assertEquals(1, sd.generate(req().steps(2).build()).images().size());
    }

    @Test
    void requestsThatDoNotFitTheModelAreRejectedWithTheField() {
        // the checks a request cannot make on its own (GenerationRequestTest has the others): the latents' length
        // and the scheduler config merged with the overrides
        var e = assertThrows(InvalidRequestException.class, () -> sd.generate(req().latents(new float[3]).build()));
        assertEquals("latents", e.field(), e.getMessage());
        e = assertThrows(InvalidRequestException.class, () -> sd.generate(
                req().scheduler("ddim").schedulerOverrides(java.util.Map.of("timestep_spacing", "sideways")).build()));
        assertEquals("timestep_spacing", e.field(), e.getMessage());
        assertThrows(InvalidRequestException.class, () -> sd.generate((GenerationRequest) null));
    }

    @Test
    void longPromptIsTruncatedAndReported() {
        String p = String.join(" ", Collections.nCopies(120, "lighthouse"));
        GenerationResult r = sd.generate(GenerationRequest.builder(p).steps(2).seed(1L).build());
        assertTrue(r.promptTruncated());
        assertFalse(sd.generate(req().steps(2).build()).promptTruncated());
    }

    @Test
    void concurrentCallsAreDeterministicPerSeed() throws Exception {
        byte[] s1 = sd.generate(req().seed(1L).build()).images().get(0).rgb();
        byte[] s2 = sd.generate(req().seed(2L).build()).images().get(0).rgb();
        try (StableDiffusion shared = StableDiffusion.load(TestModels.referenceTiny(),
                LoadOptions.defaults().withMaxConcurrent(3))) {
            ExecutorService ex = Executors.newFixedThreadPool(4);
            try {
                List<Future<byte[]>> fs = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    long seed = 1 + (i % 2);
                    fs.add(ex.submit(() -> shared.generate(req().seed(seed).build()).images().get(0).rgb()));
                }
                for (int i = 0; i < fs.size(); i++) {
                    assertArrayEquals(i % 2 == 0 ? s1 : s2, fs.get(i).get(), "call " + i);
                }
            } finally {
                ex.shutdownNow();
            }
        }
        assertNotEquals(Arrays.hashCode(s1), Arrays.hashCode(s2));
        // throughput mode: two independent pipelines serve concurrent requests with the same results
        try (StableDiffusion pool = StableDiffusion.load(TestModels.referenceTiny(),
                LoadOptions.defaults().withPipelines(2))) {
            assertEquals(2, pool.info().pipelines());
            ExecutorService ex = Executors.newFixedThreadPool(3);
            try {
                List<Future<byte[]>> fs = new ArrayList<>();
                for (int i = 0; i < 6; i++) {
                    long seed = 1 + (i % 2);
                    fs.add(ex.submit(() -> pool.generate(req().seed(seed).build()).images().get(0).rgb()));
                }
                for (int i = 0; i < fs.size(); i++) {
                    assertArrayEquals(i % 2 == 0 ? s1 : s2, fs.get(i).get(), "pooled call " + i);
                }
            } finally {
                ex.shutdownNow();
            }
        }
    }

    @Test
    void closedInstanceRefusesCallsAndCloseIsIdempotent() {
        StableDiffusion x = StableDiffusion.load(TestModels.referenceTiny(), LoadOptions.defaults().withWarmup(false));
        x.generate(req().steps(1).build());
        x.close();
        x.close();
        assertThrows(IllegalStateException.class, () -> x.generate(req().build()));
    }
}
