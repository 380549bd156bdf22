package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.backend.torch.Tensors;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * End-to-end parity with diffusers: the images and latents of reference/pipeline/cases.json, which diffusers'
 * StableDiffusionPipeline logic (commit 58eb52c0, torch 1.13) made from the tiny-sd21-dev artifacts. Tolerances are
 * the ones its README states (section 5): image max |d| &lt;= 2 and mean |d| &lt;= 0.05 levels, final latents max |d|
 * &lt;= 1e-4 x max|ref|, initial latents bitwise. Every case runs twice: with the load-time graph optimization
 * ({@link LoadOptions#optimize()}, the default) and with the artifacts as traced.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ReferencePipelineTest {
    private static final Path CASES = TestModels.resource("reference/pipeline/cases.json");
    private final java.util.Map<String, StableDiffusion> models = new java.util.HashMap<>();

    /** The case's model directory (field "model", beside cases.json), loaded once per optimization setting. */
    private StableDiffusion model(JsonNode c, boolean optimize) {
        Path dir = CASES.getParent().resolve(c.path("model").asText("tiny-sd21-dev"));
        return models.computeIfAbsent(dir + "|" + optimize,
                k -> StableDiffusion.load(dir, LoadOptions.defaults().withOptimize(optimize)));
    }

    @AfterAll
    void close() {
        models.values().forEach(StableDiffusion::close);
    }

    static Stream<Arguments> cases() throws Exception {
        JsonNode root = new ObjectMapper().readTree(CASES.toFile());
        List<Arguments> out = new ArrayList<>();
        for (boolean optimize : new boolean[] {true, false}) {
            root.get("cases").forEach(c -> out.add(Arguments.of(c, optimize)));
        }
        return out.stream();
    }


    @ParameterizedTest(name = "{index}: {0}, optimize {1}")
    @MethodSource("cases")
    void matchesDiffusers(JsonNode c, boolean optimize) throws Exception {
        Path dir = CASES.getParent();
        String prompt = c.get("prompt").asText();
        String neg = c.hasNonNull("negative_prompt") ? c.get("negative_prompt").asText() : null;
        long seed = c.get("seed").asLong();
        StableDiffusion sd = model(c, optimize);
        boolean bf16 = c.path("variant").asText("fp32").startsWith("bf16");

        // token ids as the reference fed the text encoder
        int[] ids = new ObjectMapper().convertValue(c.get("ids_prompt"), int[].class);
        assertArrayEquals(ids, sd.tokenizer().tokenize(prompt).inputIds(), "prompt ids");

        // initial latents: torch.randn with a seeded CPU generator, bitwise
        float[] init = Parity.readF32(dir.resolve(c.get("init_latents_f32").asText()));
        float[] drawn = Tensors.randn(Tensors.generator(seed), init.length);  // randn depends only on numel
        assertArrayEquals(init, drawn, "initial latents must be bitwise equal");

        @SuppressWarnings("unchecked")
        java.util.Map<String, Object> overrides = c.hasNonNull("scheduler_overrides")
                ? new ObjectMapper().convertValue(c.get("scheduler_overrides"), java.util.Map.class) : java.util.Map.of();
        GenerationResult r = sd.generate(GenerationRequest.builder(prompt).negativePrompt(neg)
                .steps(c.get("steps").asInt()).guidanceScale(c.get("guidance_scale").asDouble()).seed(seed)
                .scheduler(c.path("scheduler").asText(null)).schedulerOverrides(overrides)
                .numImages(c.path("num_images_per_prompt").asInt(1))
                .height(c.hasNonNull("height") ? c.get("height").asInt() : null)
                .width(c.hasNonNull("width") ? c.get("width").asInt() : null).build());
        assertEquals(seed, r.seed());

        float[] ref = Parity.readF32(dir.resolve(c.get("latents_f32").asText()));
        Parity.LatentDiff ld = Parity.latents(ref, r.latents());
        double latTol = bf16 ? 0.15 : 1e-4;  // README section 5 / meta.recommended_tolerances
        assertTrue(ld.maxAbs() <= latTol * ld.maxRef(), "final latents max |d| " + ld.maxAbs() + " > " + latTol
                + " x " + ld.maxRef());

        byte[] refRgb = Files.readAllBytes(dir.resolve(c.get("rgb_u8").asText()));
        byte[] got = new byte[refRgb.length];
        int off = 0;
        for (var img : r.images()) {
            System.arraycopy(img.rgb(), 0, got, off, Math.min(img.rgb().length, got.length - off));
            off += img.rgb().length;
        }
        assertEquals(refRgb.length, off, "image bytes");
        Parity.ImageDiff diff = Parity.images(refRgb, got);
        int max = diff.max();
        double mean = diff.mean();
        double psnr = diff.psnr();
        System.out.printf("%s (optimize %s): latents max|d| %.3g (max|ref| %.3g), %s%n", c.get("id").asText(), optimize, ld.maxAbs(),
                ld.maxRef(), diff);
        if (bf16) {
            assertTrue(mean <= 4.0, "image mean |d| " + mean + " > 4");
            assertTrue(psnr >= 32, "PSNR " + psnr + " < 32 dB");
            assertTrue(diff.fractionOver16() <= 0.02, diff.fractionOver16() + " of the values off by more than 16 (> 2%)");
        } else {
            assertTrue(max <= 2, "image max |d| " + max + " > 2");
            assertTrue(mean <= 0.05, "image mean |d| " + mean + " > 0.05");
        }
    }
}
