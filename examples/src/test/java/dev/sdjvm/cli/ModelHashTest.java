package dev.sdjvm.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.TestModels;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The PNG's {@code Model hash}: SHA-256 of the four artifacts in role order, first 10 hex digits. */
class ModelHashTest {
    /** The same definition computed the plain way: all bytes in memory, one digest. */
    static String expectedHash(Path modelDir) throws Exception {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (String role : List.of("text_encoder", "unet", "vae_post_quant_conv", "vae_decoder")) {
            all.write(Files.readAllBytes(modelDir.resolve("compiled_models/" + role + ".pt")));
        }
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(all.toByteArray())).substring(0, 10);
    }

    private static List<Path> artifacts(Path dir) {
        return ModelHash.ROLES.stream().map(r -> dir.resolve("compiled_models/" + r + ".pt")).toList();
    }

    @Test
    void hashesTheArtifactsInRoleOrder() throws Exception {
        Path tiny = TestModels.referenceTiny();
        String h = ModelHash.ofFiles(artifacts(tiny));
        assertTrue(h.matches("[0-9a-f]{10}"), h);
        assertEquals(expectedHash(tiny), h);
        Path fp32 = TestModels.resource("models/tiny-sd21-fp32");
        assertNotEquals(h, ModelHash.ofFiles(artifacts(fp32)), "another model, another hash");
        List<Path> swapped = List.of(artifacts(tiny).get(1), artifacts(tiny).get(0), artifacts(tiny).get(2),
                artifacts(tiny).get(3));
        assertNotEquals(h, ModelHash.ofFiles(swapped), "the order is part of the definition");
    }

    @Test
    void anUnreadableArtifactIsAnIoError() {
        assertThrows(IOException.class, () -> ModelHash.ofFiles(List.of(Path.of("/nonexistent/unet.pt"))));
    }

    private static void assertThrows(Class<? extends Throwable> type, org.junit.jupiter.api.function.Executable e) {
        org.junit.jupiter.api.Assertions.assertThrows(type, e);
    }
}
