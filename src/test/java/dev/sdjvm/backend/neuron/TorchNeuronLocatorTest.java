package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** TorchNeuronLocator's candidate list on a fake file-system root. */
class TorchNeuronLocatorTest {
    @TempDir
    Path tmp;

    @Test
    void candidatesIncludeDlamiVenvsAndOverrides() throws Exception {
        Path root = tmp.resolve("root");
        Path dlami = root.resolve("opt/aws_neuronx_venv_pytorch_2_5/lib/python3.10/site-packages/torch_neuronx/lib");
        Files.createDirectories(dlami);
        Files.createDirectories(root.resolve("usr/local/lib/python3.11"));
        Path override = Files.createDirectories(tmp.resolve("override"));
        List<Path> c = TorchNeuronLocator.candidates(root, override.toString(), Map.of("VIRTUAL_ENV", "/venv/x"));
        assertEquals(override.resolve("libtorchneuron.so"), c.get(0));
        assertTrue(c.contains(dlami.resolve("libtorchneuron.so")), c.toString());
        assertTrue(c.contains(root.resolve("usr/local/lib/python3.11/dist-packages/torch_neuronx/lib/libtorchneuron.so")));
        assertTrue(c.indexOf(dlami.resolve("libtorchneuron.so"))
                < c.indexOf(root.resolve("usr/local/lib/python3.11/site-packages/torch_neuronx/lib/libtorchneuron.so")));
    }

}
