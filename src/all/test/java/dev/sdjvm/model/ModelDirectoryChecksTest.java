package dev.sdjvm.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdjvm.TestModels;
import dev.sdjvm.errors.ModelLoadException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reading a model directory bounds what it declares before anything is allocated: a scheduler config with an
 * invalid value fails the load naming the file and the key (instead of every request failing with a 400), and a
 * manifest or UNet config with absurd sizes is a {@link ModelLoadException}, not a native allocation failure.
 */
class ModelDirectoryChecksTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static void edit(Path json, String key, Object value) throws Exception {
        ObjectNode n = (ObjectNode) JSON.readTree(json.toFile());
        n.set(key, JSON.valueToTree(value));
        JSON.writeValue(json.toFile(), n);
    }

    @Test
    void anInvalidSchedulerConfigFailsTheLoadNamingTheKey(@TempDir Path tmp) throws Exception {
        Path d = TestModels.copy(TestModels.resource("models/tiny-sd21-fp32"), tmp.resolve("m"));
        ModelDirectory.open(d);  // the fixture itself is fine
        Path cfg = d.resolve("scheduler/scheduler_config.json");
        Object[][] bad = {{"steps_offset", 100000}, {"num_train_timesteps", 2_000_000_000}, {"beta_end", 3},
            {"timestep_spacing", "sideways"}, {"num_train_timesteps", "many"}};
        for (Object[] b : bad) {
            Path m = TestModels.copy(d, tmp.resolve("m-" + b[0] + "-" + b[1]));
            Path f = m.resolve("scheduler/scheduler_config.json");
            edit(f, (String) b[0], b[1]);
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(m), b[0] + "");
            assertEquals(f, e.file());
            assertTrue(e.getMessage().contains((String) b[0]), e.getMessage());
        }
        // keys of other scheduler classes are still ignored, as diffusers' from_config does
        edit(cfg, "skip_prk_steps", true);
        edit(cfg, "some_future_key", 1);
        ModelDirectory.open(d);
    }

    @Test
    void absurdManifestSizesAreALoadError(@TempDir Path tmp) throws Exception {
        Path src = TestModels.resource("models/tiny-sd21-fp32");
        Object[][] bad = {{"height", 1_000_000_000_000L}, {"width", 100000}, {"height", 0}, {"width", 64.5}};
        for (Object[] b : bad) {
            Path m = TestModels.copy(src, tmp.resolve("m-" + b[0] + "-" + b[1]));
            Path f = m.resolve("compiled_models/" + Manifest.FILE_NAME);
            edit(f, (String) b[0], b[1]);
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(m));
            assertEquals(f, e.file());
            assertTrue(e.getMessage().contains((String) b[0]), e.getMessage());
        }
        Path m = TestModels.copy(src, tmp.resolve("batch"));
        Path f = m.resolve("compiled_models/" + Manifest.FILE_NAME);
        ObjectNode n = (ObjectNode) JSON.readTree(f.toFile());
        ((ObjectNode) n.get("artifacts").get("unet")).put("batch", 1_000_000_000);
        JSON.writeValue(f.toFile(), n);
        assertTrue(assertThrows(ModelLoadException.class, () -> ModelDirectory.open(m)).getMessage()
                .contains("unet.batch"));
    }

    @Test
    void absurdUnetSampleSizeIsALoadError(@TempDir Path tmp) throws Exception {
        Path m = TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m"));
        Files.deleteIfExists(m.resolve("compiled_models/" + Manifest.FILE_NAME));
        edit(m.resolve("unet/config.json"), "sample_size", 1_000_000);
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(m));
        assertEquals(m.resolve("unet/config.json"), e.file());
    }

    @Test
    void latentChannelsComeFromTheVaeAndTheUnetInputChannelsAreKeptApart(@TempDir Path tmp) throws Exception {
        ModelDirectory plain = ModelDirectory.open(TestModels.resource("models/tiny-sd21-fp32"));
        assertEquals(4, plain.latentChannels());
        assertEquals(4, plain.unetInChannels());
        assertTrue(!plain.inpaintingUnet());
        ModelDirectory inpaint = ModelDirectory.open(TestModels.resource("models/tiny-sd21-inpaint-fp32"));
        assertEquals(4, inpaint.latentChannels(), "vae/config.json latent_channels, not the UNet's 9");
        assertEquals(9, inpaint.unetInChannels());
        assertTrue(inpaint.inpaintingUnet());
        // a UNet input that fits neither the latents nor the inpainting layout, and a bad latent_channels
        Object[][] bad = {{"unet/config.json", "in_channels", 5}, {"vae/config.json", "latent_channels", 0},
            {"vae/config.json", "latent_channels", "four"}};
        for (Object[] b : bad) {
            Path m = TestModels.copy(TestModels.resource("models/tiny-sd21-fp32"), tmp.resolve("m-" + b[1] + "-" + b[2]));
            edit(m.resolve((String) b[0]), (String) b[1], b[2]);
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(m));
            assertEquals(m.resolve((String) b[0]), e.file());
            assertTrue(e.getMessage().contains((String) b[1]), e.getMessage());
        }
    }

    /**
     * An unreadable scheduler config or tokenizer directory says "permission denied", not "invalid JSON" or "not
     * found". Permissions do not bind root (CI's user): skipped there, after checking that chmod had no effect.
     */
    @Test
    void unreadableFilesSayPermissionDenied(@TempDir Path tmp) throws Exception {
        Path m = TestModels.copy(TestModels.resource("models/tiny-sd21-fp32"), tmp.resolve("m"));
        Path sched = m.resolve("scheduler").resolve("scheduler_config.json");
        Files.setPosixFilePermissions(sched, java.util.Set.of());
        try {
            org.junit.jupiter.api.Assumptions.assumeFalse(Files.isReadable(sched), "permissions do not bind this user");
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(m));
            assertEquals(sched, e.file());
            assertTrue(e.getMessage().contains("permission denied"), e.getMessage());
        } finally {
            Files.setPosixFilePermissions(sched, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        }
        Path tok = m.resolve("tokenizer");
        Files.setPosixFilePermissions(tok, java.util.Set.of());
        try {
            ModelLoadException e = assertThrows(ModelLoadException.class, () -> ModelDirectory.open(m));
            assertEquals(tok, e.file());
            assertTrue(e.getMessage().contains("permission denied"), e.getMessage());
        } finally {
            Files.setPosixFilePermissions(tok, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        }
    }
}
