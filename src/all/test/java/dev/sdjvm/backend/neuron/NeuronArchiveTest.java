package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.NeuronArchive;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Neuron-compiled TorchScript is recognised from its text: the selection refuses it on the CPU and names the missing NEFFs. */
class NeuronArchiveTest {
    static final Path FIXTURE = Path.of("test/resources/reference/pipeline/tiny-sd21-dev/compiled_models");

    @TempDir
    Path tmp;

    private Path zip(String name, Map<String, String> entries) throws Exception {
        Path p = tmp.resolve(name);
        try (OutputStream os = Files.newOutputStream(p); ZipOutputStream z = new ZipOutputStream(os)) {
            for (Map.Entry<String, String> e : entries.entrySet()) {
                z.putNextEntry(new ZipEntry(e.getKey()));
                z.write(e.getValue().getBytes(StandardCharsets.UTF_8));
                z.closeEntry();
            }
        }
        return p;
    }

    @Test
    void detectsNeuronCompiledArchives() throws Exception {
        // what a torch_neuronx.trace'd module's code looks like: the graph calls the neuron op on a neuron.Model
        assertTrue(NeuronArchive.isNeuronCompiled(zip("n1.pt", Map.of(
                "unet/version", "3\n",
                "unet/code/__torch__.py", "class UNetWrap(Module):\n  model : __torch__.torch.classes.neuron.Model\n"
                        + "  def forward(self, x):\n    _0 = ops.neuron.forward_v2_1([x], self.model)\n    return _0\n"))));
        assertTrue(NeuronArchive.isNeuronCompiled(zip("n2.pt", Map.of(
                "m/data.pkl", "\u0080\u0002c__torch__.torch.classes.neuron\nModel\n",
                "m/code/__torch__.py", "def forward(self, x):\n  return x\n"))));
        assertTrue(NeuronArchive.isNeuronCompiled(zip("n3.pt", Map.of(
                "code/m.py", "torch.ops.neuron.forward_v2(inputs, self.model)\n"))));
        // CPU traces: no markers, even with "neuron" in identifiers or in tensor data
        assertFalse(NeuronArchive.isNeuronCompiled(zip("c1.pt", Map.of(
                "m/code/__torch__.py", "class NeuronTextEncoder(Module):\n  neuron_text_encoder : Module\n",
                "m/data/0", "ops.neuron.forward_v2 (bytes of a tensor are not scanned)"))));
        for (String f : new String[] {"unet.pt", "text_encoder.pt", "vae_decoder.pt", "vae_post_quant_conv.pt"}) {
            assertFalse(NeuronArchive.isNeuronCompiled(FIXTURE.resolve(f)), f + " is a CPU torch.jit.trace");
        }
        Path notZip = tmp.resolve("x.pt");
        Files.writeString(notZip, "not a zip");
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> NeuronArchive.isNeuronCompiled(notZip));
        assertEquals(notZip, e.file());
        assertTrue(e.getMessage().contains("not a zip"), e.getMessage());
        assertThrows(ModelLoadException.class, () -> NeuronArchive.isNeuronCompiled(tmp.resolve("missing.pt")));
    }
}
