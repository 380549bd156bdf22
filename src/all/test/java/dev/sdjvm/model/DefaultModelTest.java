package dev.sdjvm.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import java.io.OutputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The embedded model: used in place from a classes directory, extracted once (content-addressed) from a jar. */
class DefaultModelTest {
    @Test
    void embeddedModelLoadsAndGenerates() {
        Path p = DefaultModel.path();
        assertTrue(Files.isRegularFile(p.resolve("compiled_models/unet.pt")), p.toString());
        try (StableDiffusion sd = StableDiffusion.loadDefault(LoadOptions.defaults())) {
            var r = sd.generate(GenerationRequest.builder("a red circle on a blue background").steps(4).seed(1L).build());
            assertEquals(sd.info().width(), r.images().get(0).width());
        }
    }

    @Test
    void extractsFromAJarOnceIntoTheCache(@TempDir Path tmp) throws Exception {
        Path jar = tmp.resolve("lib.jar");
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar))) {
            for (String name : new String[] {"model_index.json", "compiled_models/unet.pt", "tokenizer/vocab.json"}) {
                out.putNextEntry(new JarEntry(DefaultModel.RESOURCE + "/" + name));
                out.write(("content of " + name).getBytes(java.nio.charset.StandardCharsets.UTF_8));
                out.closeEntry();
            }
        }
        String old = System.getProperty("sdjvm.cache");
        System.setProperty("sdjvm.cache", tmp.resolve("cache").toString());
        try {
            URI entry = URI.create("jar:" + jar.toUri() + "!/" + DefaultModel.RESOURCE + "/model_index.json");
            Path a = DefaultModel.extract(entry);
            assertTrue(a.startsWith(tmp.resolve("cache")), a.toString());
            assertEquals("content of compiled_models/unet.pt", Files.readString(a.resolve("compiled_models/unet.pt")));
            long mtime = Files.getLastModifiedTime(a.resolve("model_index.json")).toMillis();
            Path b = DefaultModel.extract(entry);
            assertEquals(a, b, "same content, same folder");
            assertEquals(mtime, Files.getLastModifiedTime(b.resolve("model_index.json")).toMillis(), "not extracted twice");
        } finally {
            if (old == null) {
                System.clearProperty("sdjvm.cache");
            } else {
                System.setProperty("sdjvm.cache", old);
            }
        }
    }
}
