package dev.sdjvm.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.TestModels;
import dev.sdjvm.backend.BackendProvider;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.ModelDirectory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The backends are found with ServiceLoader: this module (core + CPU + Neuron) has both; with one missing (the map of
 * installed providers given explicitly), the plan still says what the model needs and opening it names the artifact to
 * add. The consumer build (ModulePathIT) checks the same with a real core + Neuron class path.
 */
class BackendProvidersTest {
    private static final BackendSelection.Options OPTIONS = new BackendSelection.Options(1, false, false, null, false,
            false, false, true);

    @TempDir
    Path tmp;

    private static Map<BackendProvider.Type, BackendProvider> only(BackendProvider.Type type) {
        Map<BackendProvider.Type, BackendProvider> m = new EnumMap<>(BackendProvider.Type.class);
        m.put(type, BackendSelection.installed().get(type));
        return m;
    }

    @Test
    void bothBackendsAreInstalledThroughTheirServiceFiles() {
        Map<BackendProvider.Type, BackendProvider> installed = BackendSelection.installed();
        assertEquals(java.util.Set.of(BackendProvider.Type.CPU, BackendProvider.Type.NEURON), installed.keySet());
        assertEquals("dev.sdjvm.backend.torch.TorchBackendProvider", installed.get(BackendProvider.Type.CPU).getClass()
                .getName());
        assertEquals("dev.sdjvm.backend.neuron.NeuronBackendProvider", installed.get(BackendProvider.Type.NEURON)
                .getClass().getName());
        assertTrue(BackendSelection.libtorchVersion().matches("\\d+\\.\\d+.*"), BackendSelection.libtorchVersion());
    }

    @Test
    void aCpuModelWithoutTheCpuBackendNamesItsArtifact() {
        ModelDirectory dir = ModelDirectory.open(TestModels.referenceTiny());
        Map<BackendProvider.Type, BackendProvider> neuronOnly = only(BackendProvider.Type.NEURON);
        BackendSelection.Plan plan = BackendSelection.plan(dir, BackendSelection.Kind.AUTO, neuronOnly);
        assertEquals(BackendSelection.Kind.CPU, plan.backend());
        BackendException e = assertThrows(BackendException.class, () -> BackendSelection.open(dir, plan, OPTIONS,
                neuronOnly));
        assertTrue(e.getMessage().startsWith("CPU backend not found: add dev.sdjvm:stable-diffusion-jvm-cpu to the "
                + "class or module path"), e.getMessage());
        assertTrue(e.getMessage().contains(dir.root().toString()), e.getMessage());
    }

    @Test
    void aNeuronModelWithoutTheNeuronBackendNamesItsArtifact() throws Exception {
        Path d = TestModels.copy(TestModels.referenceTiny(), tmp.resolve("m"));
        Files.writeString(d.resolve("compiled_models/sdjvm-manifest.json"),
                "{\"format\": \"sdjvm-manifest/1\", \"target\": \"neuron\", \"artifacts\": {}}");
        ModelDirectory dir = ModelDirectory.open(d);
        Map<BackendProvider.Type, BackendProvider> cpuOnly = only(BackendProvider.Type.CPU);
        BackendSelection.Plan plan = BackendSelection.plan(dir, BackendSelection.Kind.AUTO, cpuOnly);
        assertEquals(BackendSelection.Kind.NEURON, plan.backend());
        assertTrue(plan.reason().contains("compiled for Neuron"), plan.reason());
        BackendException e = assertThrows(BackendException.class, () -> BackendSelection.open(dir, plan, OPTIONS, cpuOnly));
        assertTrue(e.getMessage().startsWith("Neuron backend not found: add dev.sdjvm:stable-diffusion-jvm-neuron"),
                e.getMessage());
        // asked for explicitly, without the backend installed
        BackendSelection.Plan asked = BackendSelection.plan(ModelDirectory.open(TestModels.referenceTiny()),
                BackendSelection.Kind.NEURON, cpuOnly);
        assertThrows(BackendException.class, () -> BackendSelection.open(dir, asked, OPTIONS, cpuOnly));
    }

    @Test
    void withoutTheNeuronBackendCpuTracedArtifactsStillRunOnTheCpu() {
        ModelDirectory dir = ModelDirectory.open(TestModels.referenceTiny());
        BackendSelection.Plan plan = BackendSelection.plan(dir, BackendSelection.Kind.AUTO,
                only(BackendProvider.Type.CPU));
        assertEquals(BackendSelection.Kind.CPU, plan.backend());
        assertTrue(plan.neffs().isEmpty(), "no NEFF is looked for without the Neuron backend");
    }
}
