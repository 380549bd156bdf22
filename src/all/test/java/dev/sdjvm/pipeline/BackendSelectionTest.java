package dev.sdjvm.pipeline;

import dev.sdjvm.Backend;
import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.TestModels;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ModelDirectory;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Backend choice on a machine without NeuronCores (this one and CI): CPU for CPU-traced artifacts, clear errors otherwise. */
class BackendSelectionTest {
    @TempDir
    Path tmp;

    @Test
    void cpuTracedArtifactsRunOnCpu() {
        ModelDirectory dir = ModelDirectory.open(TestModels.referenceTiny());
        BackendSelection.Plan auto = BackendSelection.plan(dir, BackendSelection.Kind.AUTO);
        assertEquals(BackendSelection.Kind.CPU, auto.backend());
        assertTrue(auto.neffs().get(ArtifactRole.UNET).isEmpty(), "the CPU archive was scanned and holds no NEFF");
        assertEquals(BackendSelection.Kind.CPU, BackendSelection.plan(dir, BackendSelection.Kind.CPU).backend());
    }

    @Test
    void neuronRequestedForArtifactsWithoutNeffIsAClearError() {
        ModelDirectory dir = ModelDirectory.open(TestModels.referenceTiny());
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> BackendSelection.plan(dir, BackendSelection.Kind.NEURON));
        assertTrue(e.getMessage().contains("holds no NEFF"), e.getMessage());
        assertTrue(e.getMessage().contains("unet.pt"), e.getMessage());
        // through the facade too, before any artifact is loaded
        assertThrows(ModelLoadException.class, () -> StableDiffusion.load(TestModels.referenceTiny(),
                LoadOptions.defaults().withBackend(Backend.NEURON)));
    }

    @Test
    void neuronCompiledTorchScriptWithoutNeffIsAClearError() throws Exception {
        Path d = TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m"));
        Files.writeString(d.resolve("compiled_models/sdjvm-manifest.json"),
                "{\"format\": \"sdjvm-manifest/1\", \"target\": \"neuron\", \"artifacts\": {}}");
        ModelDirectory dir = ModelDirectory.open(d);
        ModelLoadException auto = assertThrows(ModelLoadException.class, () -> BackendSelection.plan(dir, BackendSelection.Kind.AUTO));
        assertTrue(auto.getMessage().contains("compiled for Neuron, but no NEFF was found"), auto.getMessage());
        assertTrue(auto.getMessage().contains("beside it as compiled_models/<name>.neff"), auto.getMessage());
        BackendException cpu = assertThrows(BackendException.class, () -> BackendSelection.plan(dir, BackendSelection.Kind.CPU));
        assertTrue(cpu.getMessage().contains("is compiled for Neuron"), cpu.getMessage());
    }
}
