package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.pipeline.BackendSelection;
import org.junit.jupiter.api.Test;

/**
 * The core artifact alone (this module's test class path: no backend, no embedded model): nothing native is needed to
 * get this far, no backend is found, and the embedded model is a clear error naming the artifact that has it.
 */
class CoreAloneTest {
    @Test
    void noBackendIsInstalled() {
        assertTrue(BackendSelection.installed().isEmpty(), BackendSelection.installed().toString());
        assertEquals("none", StableDiffusion.libtorchVersion());
    }

    @Test
    void theEmbeddedModelNamesTheArtifactThatHasIt() {
        ModelLoadException e = assertThrows(ModelLoadException.class, StableDiffusion::loadDefault);
        assertTrue(e.getMessage().contains("ships in dev.sdjvm:stable-diffusion-jvm "), e.getMessage());
        assertTrue(e.getMessage().contains("not in dev.sdjvm:stable-diffusion-jvm-core"), e.getMessage());
    }
}
