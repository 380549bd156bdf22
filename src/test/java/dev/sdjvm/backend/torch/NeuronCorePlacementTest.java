package dev.sdjvm.backend.torch;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.sdjvm.backend.neuron.TorchNeuronLoader;
import dev.sdjvm.errors.BackendException;
import org.junit.jupiter.api.Test;

/**
 * The libtorchneuron placement call goes through TorchScript's custom class registry. Without libtorchneuron (this
 * machine) {@code torch.classes.neuron.Runtime} is unknown: the call must fail with a clear error, not crash. With it,
 * the placement is exercised by the gated device test on an inf2 instance.
 */
class NeuronCorePlacementTest {
    @Test
    void withoutLibtorchneuronTheRuntimeClassIsMissingAndSaysSo() {
        assumeFalse(TorchNeuronLoader.isLoaded(), "libtorchneuron is loaded in this JVM");
        BackendException e = assertThrows(BackendException.class, () -> NeuronCorePlacement.setDefaultCores(0, 1));
        assertTrue(e.getMessage().contains("torch.classes.neuron.Runtime is not available"), e.getMessage());
        assertTrue(e.getMessage().contains("libtorchneuron"), e.getMessage());
        // the TorchScript itself compiled up to the custom class lookup (not a syntax error in our snippet)
        assertTrue(e.getCause().getMessage().contains("torch.classes.neuron.Runtime()"), e.getCause().getMessage());
        assertTrue(e.getMessage().contains("attribute lookup is not defined"), e.getMessage());
    }
}
