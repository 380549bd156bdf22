package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdjvm.backend.torch.Tensors;
import dev.sdjvm.model.DType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * End-to-end parity on the project's own fixtures (models/tiny-sd21-fp32 and models/tiny-sd21-bf16): the Java
 * pipeline against models/cases/cases.json, which tools/reference/make_pipeline_references.py made with the Python reference
 * sampler tools/reference/sd_sampler.py (torch 1.13; see models/cases/README.md). Tolerances come from the cases file's
 * {@code meta.tolerances}, which are those of reference/pipeline/README.md section 5: float32 image max |d| &lt;= 2
 * and mean |d| &lt;= 0.05, latents max |d| &lt;= 1e-4 x max|ref|; bfloat16 image mean |d| &lt;= 4, PSNR &gt;= 32 dB,
 * at most 2% of values off by more than 16, latents max |d| &lt;= 0.15 x max|ref|; initial latents bitwise for both.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FixtureParityTest {
    private static final Path CASES = TestModels.resource("models/cases/cases.json");
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Map<String, StableDiffusion> models = new LinkedHashMap<>();
    private final JsonNode tolerances;

    FixtureParityTest() throws Exception {
        tolerances = JSON.readTree(CASES.toFile()).get("meta").get("tolerances");
    }

    @AfterAll
    void close() {
        models.values().forEach(StableDiffusion::close);
    }

    private StableDiffusion model(String name) {
        return models.computeIfAbsent(name, n -> StableDiffusion.load(TestModels.resource("models/" + n)));
    }

    static Stream<JsonNode> cases() throws Exception {
        List<JsonNode> out = new ArrayList<>();
        JSON.readTree(CASES.toFile()).get("cases").forEach(out::add);
        return out.stream();
    }


    @Test
    void bf16FixtureRunsItsUnetAndTextEncoderInBfloat16() {
        StableDiffusion sd = model("tiny-sd21-bf16");
        assertEquals(ModelInfo.DType.BFLOAT16, sd.info().artifacts().get("unet").dtype());
        assertEquals(ModelInfo.Source.MANIFEST, sd.info().artifacts().get("unet").source());
        assertEquals(ModelInfo.DType.FLOAT32, sd.info().artifacts().get("vae_decoder").dtype());
        assertEquals(ModelInfo.DType.FLOAT32, model("tiny-sd21-fp32").info().artifacts().get("unet").dtype());
    }

    @ParameterizedTest(name = "{index}: {0}")
    @MethodSource("cases")
    void matchesPythonReference(JsonNode c) throws Exception {
        Path dir = CASES.getParent();
        String id = c.get("id").asText();
        StableDiffusion sd = model(c.get("model").asText());
        JsonNode tol = tolerances.get(c.get("variant").asText());
        String prompt = c.get("prompt").asText();
        String neg = c.get("negative_prompt").isNull() ? null : c.get("negative_prompt").asText();
        long seed = c.get("seed").asLong();
        int h = c.get("height").asInt();
        int w = c.get("width").asInt();
        assertEquals(h, sd.info().height());
        assertEquals(w, sd.info().width());

        assertArrayEquals(JSON.convertValue(c.get("ids_prompt"), int[].class),
                sd.tokenizer().tokenize(prompt).inputIds(), "prompt ids");
        if (!c.get("ids_negative").isNull()) {
            assertArrayEquals(JSON.convertValue(c.get("ids_negative"), int[].class),
                    sd.tokenizer().tokenize(neg == null ? "" : neg).inputIds(), "negative prompt ids");
        }

        float[] init = Parity.readF32(dir.resolve(c.get("init_latents_f32").asText()));
        assertArrayEquals(init, Tensors.randn(Tensors.generator(seed), 1, 4, h / 8, w / 8),
                "initial latents must be bitwise equal");

        GenerationResult r = sd.generate(GenerationRequest.builder(prompt).negativePrompt(neg)
                .steps(c.get("steps").asInt()).guidanceScale(c.get("guidance_scale").asDouble()).seed(seed)
                .scheduler(c.get("scheduler").asText()).build());
        assertEquals(seed, r.seed());

        float[] ref = Parity.readF32(dir.resolve(c.get("latents_f32").asText()));
        Parity.LatentDiff ld = Parity.latents(ref, r.latents());
        float maxD = ld.maxAbs();
        float maxRef = ld.maxRef();

        byte[] refRgb = Files.readAllBytes(dir.resolve(c.get("rgb_u8").asText()));
        assertEquals(h * w * 3, refRgb.length);
        Parity.ImageDiff diff = Parity.images(refRgb, r.images().get(0).rgb());
        int max = diff.max();
        double mean = diff.mean();
        double psnr = diff.psnr();
        double fracOver16 = diff.fractionOver16();
        System.out.printf("%s: latents max|d| %.3g (%.3g x max|ref| %.3g); %s%n", id, maxD, ld.relative(), maxRef, diff);

        double relTol = tol.get("latents_max_abs_rel").asDouble();
        assertTrue(maxD <= relTol * maxRef, id + ": final latents max |d| " + maxD + " > " + relTol + " x " + maxRef);
        if (tol.has("image_max_abs")) {
            assertTrue(max <= tol.get("image_max_abs").asInt(), id + ": image max |d| " + max);
        }
        assertTrue(mean <= tol.get("image_mean_abs").asDouble(), id + ": image mean |d| " + mean);
        if (tol.has("image_psnr_db_min")) {
            assertTrue(psnr >= tol.get("image_psnr_db_min").asDouble(), id + ": PSNR " + psnr + " dB");
        }
        if (tol.has("image_frac_abs_gt16_max")) {
            assertTrue(fracOver16 <= tol.get("image_frac_abs_gt16_max").asDouble(),
                    id + ": fraction of values off by more than 16: " + fracOver16);
        }
    }
}
