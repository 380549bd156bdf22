package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

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
        assertEquals(Backend.CPU, BackendSelection.select(dir, Backend.AUTO));
        assertEquals(Backend.CPU, BackendSelection.select(dir, Backend.CPU));
    }

    @Test
    void neuronRequestedWithoutNeuronIsAClearError() {
        assumeFalse(Files.exists(Path.of("/dev/neuron0")), "this machine has NeuronCores");
        ModelDirectory dir = ModelDirectory.open(TestModels.referenceTiny());
        BackendException e = assertThrows(BackendException.class, () -> BackendSelection.select(dir, Backend.NEURON));
        assertTrue(e.getMessage().contains("backend NEURON requested, but Neuron is not available here"), e.getMessage());
        assertTrue(e.getMessage().contains("/dev/neuron"), e.getMessage());
        // through the facade too, before any artifact is loaded
        assertThrows(BackendException.class, () -> StableDiffusion.load(TestModels.referenceTiny(),
                LoadOptions.defaults().withBackend(Backend.NEURON)));
    }

    @Test
    void neuronCompiledArtifactsNeedNeuron() throws Exception {
        assumeFalse(Files.exists(Path.of("/dev/neuron0")), "this machine has NeuronCores");
        Path d = TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m"));
        Files.writeString(d.resolve("compiled_models/sdjvm-manifest.json"),
                "{\"format\": \"sdjvm-manifest/1\", \"target\": \"neuron\", \"artifacts\": {}}");
        ModelDirectory dir = ModelDirectory.open(d);
        BackendException auto = assertThrows(BackendException.class, () -> BackendSelection.select(dir, Backend.AUTO));
        assertTrue(auto.getMessage().contains("are compiled for Neuron"), auto.getMessage());
        BackendException cpu = assertThrows(BackendException.class, () -> BackendSelection.select(dir, Backend.CPU));
        assertTrue(cpu.getMessage().contains("is compiled for Neuron"), cpu.getMessage());
    }
}
