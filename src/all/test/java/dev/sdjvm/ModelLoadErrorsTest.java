package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.ModelLoadException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every way a model directory can be broken gives a ModelLoadException naming the file and the problem. */
class ModelLoadErrorsTest {
    @TempDir
    Path tmp;

    private Path fixture() throws Exception {
        return TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m"));
    }

    private static ModelLoadException fails(Path dir) {
        return assertThrows(ModelLoadException.class, () -> StableDiffusion.load(dir).close());
    }

    @Test
    void missingDirectory() {
        ModelLoadException e = fails(tmp.resolve("nope"));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
        assertEquals(tmp.resolve("nope"), e.file());
    }

    @Test
    void missingArtifact() throws Exception {
        Path d = fixture();
        Files.delete(d.resolve("compiled_models/unet.pt"));
        ModelLoadException e = fails(d);
        assertEquals(d.resolve("compiled_models/unet.pt"), e.file());
        assertTrue(e.getMessage().contains("unet artifact not found"), e.getMessage());
    }

    @Test
    void missingTokenizerFileAndConfigs() throws Exception {
        Path d = fixture();
        Files.delete(d.resolve("tokenizer/merges.txt"));
        assertEquals(d.resolve("tokenizer/merges.txt"), fails(d).file());
        Path d2 = TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m2"));
        Files.delete(d2.resolve("scheduler/scheduler_config.json"));
        assertEquals(d2.resolve("scheduler/scheduler_config.json"), fails(d2).file());
        Path d3 = TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m3"));
        Files.writeString(d3.resolve("vae/config.json"), "{ not json");
        ModelLoadException e = fails(d3);
        assertEquals(d3.resolve("vae/config.json"), e.file());
        assertTrue(e.getMessage().contains("invalid JSON"), e.getMessage());
    }

    @Test
    void corruptArtifact() throws Exception {
        Path d = fixture();
        Path unet = d.resolve("compiled_models/unet.pt");
        byte[] b = Files.readAllBytes(unet);
        Files.write(unet, java.util.Arrays.copyOf(b, b.length / 3));
        ModelLoadException e = fails(d);
        assertEquals(unet, e.file());
        assertTrue(e.getMessage().contains("TorchScript"), e.getMessage());
        Files.writeString(unet, "this is not a zip archive");
        assertEquals(unet, fails(d).file());
    }

    @Test
    void wrongSignatureArtifact() throws Exception {
        Path d = fixture();
        // a VAE decoder where the UNet should be: loads, but does not take (sample, timestep, hidden states)
        Files.copy(d.resolve("compiled_models/vae_decoder.pt"), d.resolve("compiled_models/unet.pt"),
                StandardCopyOption.REPLACE_EXISTING);
        ModelLoadException e = fails(d);
        assertEquals(d.resolve("compiled_models/unet.pt"), e.file());
        assertTrue(e.getMessage().contains("unet does not accept"), e.getMessage());
    }

    @Test
    void mismatchedShapesBetweenArtifacts() throws Exception {
        Path d = fixture();
        // the VAE config says 3 upsamplings (x4) but the decoder makes x8 images
        String vae = Files.readString(d.resolve("vae/config.json")).replace("\"block_out_channels\": [\n    32,\n    32,\n    32,\n    32\n  ]",
                "\"block_out_channels\": [32, 32, 32]");
        Files.writeString(d.resolve("vae/config.json"), vae);
        ModelLoadException e = fails(d);
        assertEquals(d.resolve("compiled_models/vae_decoder.pt"), e.file());
        assertTrue(e.getMessage().contains("vae_decoder returned"), e.getMessage());
    }

    @Test
    void badManifest() throws Exception {
        Path d = fixture();
        Path m = d.resolve("compiled_models/sdjvm-manifest.json");
        Files.writeString(m, "{\"format\": \"something-else\"}");
        ModelLoadException e = fails(d);
        assertEquals(m, e.file());
        assertTrue(e.getMessage().contains("unsupported manifest format"), e.getMessage());
        Files.writeString(m, "{\"format\": \"sdjvm-manifest/1\", \"artifacts\": {\"unet\": {\"file\": \"unet.pt\", \"batch\": 0}}}");
        assertTrue(fails(d).getMessage().contains("artifacts.unet.batch"));
    }
}
