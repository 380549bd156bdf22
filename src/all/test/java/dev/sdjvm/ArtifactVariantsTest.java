package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.Manifest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The artifact contracts the loader must accept, on variants of models/tiny-sd21-fp32: a text encoder returning a
 * dict (the fixture), a tuple whose first element is last_hidden_state, or a bare tensor; a UNet returning a
 * 1-tuple (the fixture) or a bare tensor; directories without {@code sdjvm-manifest.json}.
 *
 * <p>models/variants/*.pt were written by {@code tools/model/make_tiny_sd.py} with the fixture's seed and only a different
 * output wrapper (see models/variants/README.md): they hold the fixture's weights bit for bit, so each variant must
 * produce exactly the fixture's image and latents. Each variant directory is assembled here from a copy of the
 * fixture with one file swapped in (the manifest's {@code output_kind} is updated to match, or the manifest deleted).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ArtifactVariantsTest {
    private static final Path FP32 = TestModels.resource("models/tiny-sd21-fp32");
    private static final Path BF16 = TestModels.resource("models/tiny-sd21-bf16");
    private static final Path VARIANTS = TestModels.resource("models/variants");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Classifier-free guidance with a negative prompt: two text encoder calls, UNet batch 2. */
    private static final GenerationRequest CFG = GenerationRequest.builder("a lighthouse on a cliff at night")
            .negativePrompt("fog").steps(10).guidanceScale(7.5).seed(11L).build();
    /** No guidance: one text encoder call, UNet batch 1. */
    private static final GenerationRequest NO_CFG = GenerationRequest.builder("a robot")
            .steps(10).guidanceScale(1.0).seed(3L).build();

    private GenerationResult baseCfg;
    private GenerationResult baseNoCfg;

    enum Variant {
        TEXT_ENCODER_TUPLE("text_encoder", "text_encoder_tuple.pt", "tuple", true),
        TEXT_ENCODER_TENSOR("text_encoder", "text_encoder_tensor.pt", "tensor", true),
        UNET_TENSOR("unet", "unet_tensor.pt", "tensor", true),
        NO_MANIFEST(null, null, null, false),
        /** What {@code make_tiny_sd.py --text-encoder-output tuple --unet-output tensor --no-manifest} writes. */
        TUPLE_TEXT_ENCODER_TENSOR_UNET_NO_MANIFEST("text_encoder", "text_encoder_tuple.pt", "tuple", false);

        final String role;
        final String file;
        final String outputKind;
        final boolean manifest;

        Variant(String role, String file, String outputKind, boolean manifest) {
            this.role = role;
            this.file = file;
            this.outputKind = outputKind;
            this.manifest = manifest;
        }
    }

    /**
     * Every applicable rewrite, unmeasured: the variants are different files, and measured decisions (which depend on
     * timings) could differ between them and change the last bits.
     */
    private static final LoadOptions EXACT = LoadOptions.defaults().withCpu(CpuOptions.defaults().withMeasure(false));

    @BeforeAll
    void base() {
        try (StableDiffusion sd = StableDiffusion.load(FP32, EXACT)) {
            baseCfg = sd.generate(CFG);
            baseNoCfg = sd.generate(NO_CFG);
        }
    }

    private static Path assemble(Variant v, Path tmp) throws IOException {
        Path dir = TestModels.copy(FP32, tmp.resolve(v.name().toLowerCase()));
        Path cm = dir.resolve("compiled_models");
        if (v.file != null) {
            Files.copy(VARIANTS.resolve(v.file), cm.resolve(v.role + ".pt"), StandardCopyOption.REPLACE_EXISTING);
        }
        if (v == Variant.TUPLE_TEXT_ENCODER_TENSOR_UNET_NO_MANIFEST) {
            Files.copy(VARIANTS.resolve("unet_tensor.pt"), cm.resolve("unet.pt"), StandardCopyOption.REPLACE_EXISTING);
        }
        Path mf = cm.resolve(Manifest.FILE_NAME);
        if (!v.manifest) {
            Files.delete(mf);
        } else if (v.outputKind != null) {
            // keep the manifest truthful about the swapped module, as make_tiny_sd.py writes it for that variant
            ObjectNode root = (ObjectNode) JSON.readTree(mf.toFile());
            ObjectNode a = (ObjectNode) root.get("artifacts").get(v.role);
            a.put("output_kind", v.outputKind);
            if (v.role.equals("text_encoder") && v.outputKind.equals("tensor")) {
                ArrayNode outs = (ArrayNode) a.get("outputs");
                while (outs.size() > 1) {
                    outs.remove(outs.size() - 1);
                }
            }
            JSON.writerWithDefaultPrettyPrinter().writeValue(mf.toFile(), root);
        }
        return dir;
    }

    @ParameterizedTest
    @EnumSource(Variant.class)
    void variantGivesTheFixtureImageExactly(Variant v, @TempDir Path tmp) throws IOException {
        Path dir = assemble(v, tmp);
        try (StableDiffusion sd = StableDiffusion.load(dir, EXACT)) {
            Map<String, ModelInfo.Artifact> specs = sd.info().artifacts();
            assertEquals(64, sd.info().height());
            assertEquals(64, sd.info().width());
            assertEquals(ModelInfo.DType.FLOAT32, specs.get("unet").dtype());
            if (!v.manifest) {
                assertNull(sd.info().manifest(), "no manifest in " + dir);
                for (ArtifactRole role : ArtifactRole.values()) {
                    if (!dev.sdjvm.model.ModelLayout.COMPILED_MODELS.requires(role)) {
                        continue;
                    }
                    assertEquals(ModelInfo.Source.PARAMETERS, specs.get(role.id()).source(), role + " source");
                    assertNull(specs.get(role.id()).batch(), role + " batch");
                }
            } else {
                assertEquals(ModelInfo.Source.MANIFEST, specs.get("unet").source());
            }
            GenerationResult cfg = sd.generate(CFG);
            GenerationResult noCfg = sd.generate(NO_CFG);
            assertArrayEquals(baseCfg.latents(), cfg.latents(), v + ": CFG latents differ from the fixture's");
            assertArrayEquals(baseCfg.images().get(0).rgb(), cfg.images().get(0).rgb(), v + ": CFG image differs");
            assertArrayEquals(baseNoCfg.latents(), noCfg.latents(), v + ": latents without CFG differ");
            assertArrayEquals(baseNoCfg.images().get(0).rgb(), noCfg.images().get(0).rgb(), v + ": image without CFG differs");
            System.out.printf("%s: loaded (unet %s from %s, batch %s), CFG and no-CFG images bitwise equal to the fixture's%n",
                    v, specs.get("unet").dtype(), specs.get("unet").source(), specs.get("unet").batch());
        }
    }

    @Test
    void variantFilesAreNotTheFixtureFiles() throws IOException {
        // the equality above must come from equal weights behind a different output wrapper, not from a copy
        assertFalse(Arrays.equals(Files.readAllBytes(VARIANTS.resolve("text_encoder_tuple.pt")),
                Files.readAllBytes(FP32.resolve("compiled_models/text_encoder.pt"))));
        assertFalse(Arrays.equals(Files.readAllBytes(VARIANTS.resolve("text_encoder_tensor.pt")),
                Files.readAllBytes(FP32.resolve("compiled_models/text_encoder.pt"))));
        assertFalse(Arrays.equals(Files.readAllBytes(VARIANTS.resolve("unet_tensor.pt")),
                Files.readAllBytes(FP32.resolve("compiled_models/unet.pt"))));
    }

    @Test
    void bf16WithoutManifestTakesBfloat16FromItsParameters(@TempDir Path tmp) throws IOException {
        Path dir = TestModels.copy(BF16, tmp.resolve("bf16-no-manifest"));
        Files.delete(dir.resolve("compiled_models").resolve(Manifest.FILE_NAME));
        GenerationResult withManifest;
        try (StableDiffusion sd = StableDiffusion.load(BF16, EXACT)) {
            withManifest = sd.generate(CFG);
        }
        try (StableDiffusion sd = StableDiffusion.load(dir, EXACT)) {
            ModelInfo.Artifact unet = sd.info().artifacts().get("unet");
            assertNull(sd.info().manifest());
            assertEquals(ModelInfo.DType.BFLOAT16, unet.dtype());
            assertEquals(ModelInfo.Source.PARAMETERS, unet.source());
            assertNull(unet.batch());
            assertEquals(ModelInfo.DType.FLOAT32, sd.info().artifacts().get("vae_decoder").dtype());
            assertEquals(64, sd.info().height());
            GenerationResult r = sd.generate(CFG);
            assertTrue(r.images().get(0).rgb().length == 64 * 64 * 3);
            assertArrayEquals(withManifest.latents(), r.latents(), "bf16 latents with and without manifest");
            assertArrayEquals(withManifest.images().get(0).rgb(), r.images().get(0).rgb(),
                    "bf16 image with and without manifest");
            System.out.printf("bf16 without manifest: unet %s from %s, batch %s; image bitwise equal to the manifest run%n",
                    unet.dtype(), unet.source(), unet.batch());
        }
    }
}
