package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NeuronPlatformTest {
    static final Path FIXTURE = Path.of("src/test/resources/reference/pipeline/tiny-sd21-dev/compiled_models");

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
        assertTrue(NeuronPlatform.isNeuronCompiled(zip("n1.pt", Map.of(
                "unet/version", "3\n",
                "unet/code/__torch__.py", "class UNetWrap(Module):\n  model : __torch__.torch.classes.neuron.Model\n"
                        + "  def forward(self, x):\n    _0 = ops.neuron.forward_v2_1([x], self.model)\n    return _0\n"))));
        assertTrue(NeuronPlatform.isNeuronCompiled(zip("n2.pt", Map.of(
                "m/data.pkl", "\u0080\u0002c__torch__.torch.classes.neuron\nModel\n",
                "m/code/__torch__.py", "def forward(self, x):\n  return x\n"))));
        assertTrue(NeuronPlatform.isNeuronCompiled(zip("n3.pt", Map.of(
                "code/m.py", "torch.ops.neuron.forward_v2(inputs, self.model)\n"))));
        // CPU traces: no markers, even with "neuron" in identifiers or in tensor data
        assertFalse(NeuronPlatform.isNeuronCompiled(zip("c1.pt", Map.of(
                "m/code/__torch__.py", "class NeuronTextEncoder(Module):\n  neuron_text_encoder : Module\n",
                "m/data/0", "ops.neuron.forward_v2 (bytes of a tensor are not scanned)"))));
        for (String f : new String[] {"unet.pt", "text_encoder.pt", "vae_decoder.pt", "vae_post_quant_conv.pt"}) {
            assertFalse(NeuronPlatform.isNeuronCompiled(FIXTURE.resolve(f)), f + " is a CPU torch.jit.trace");
        }
        Path notZip = tmp.resolve("x.pt");
        Files.writeString(notZip, "not a zip");
        ModelLoadException e = assertThrows(ModelLoadException.class, () -> NeuronPlatform.isNeuronCompiled(notZip));
        assertEquals(notZip, e.file());
        assertTrue(e.getMessage().contains("not a zip"), e.getMessage());
        assertThrows(ModelLoadException.class, () -> NeuronPlatform.isNeuronCompiled(tmp.resolve("missing.pt")));
    }

    @Test
    void thisMachineHasNoNeuronAndSaysWhat() {
        NeuronPlatform p = NeuronPlatform.detect();
        System.out.println("Neuron on this machine: " + p);
        if (Files.exists(Path.of("/dev/neuron0"))) {
            System.out.println("SKIPPED: /dev/neuron0 exists; the 'no Neuron' expectations do not apply");
            return;
        }
        assertFalse(p.available());
        assertTrue(p.reason().contains("no Neuron device"), p.reason());
        BackendException e = assertThrows(BackendException.class, p::requireAvailable);
        assertTrue(e.getMessage().startsWith("Neuron backend requested but not available: no Neuron device"),
                e.getMessage());
        assertThrows(BackendException.class, p::loadTorchNeuron);
    }

    private Path fakeSitePackages(String name, String torchRequirement) throws Exception {
        Path sp = tmp.resolve(name + "/lib/python3.10/site-packages");
        Path torchLib = sp.resolve("torch/lib");
        Gcc.sharedLibrary(torchLib, "libc10.so", "int _ZN3c105probeEv(void) { return 7; }\n", "-Wl,-soname,libc10.so");
        Path lib = Gcc.sharedLibrary(sp.resolve("torch_neuronx/lib"), "libtorchneuron.so",
                "extern int _ZN3c105probeEv(void);\nint f(void){return _ZN3c105probeEv();}\n", "-L" + torchLib, "-lc10");
        Path d = Files.createDirectories(sp.resolve("torch_neuronx-9.9.9.2.0.0.dist-info"));
        Files.writeString(d.resolve("METADATA"), "Name: torch-neuronx\nVersion: 9.9.9.2.0.0\nRequires-Dist: torch ("
                + torchRequirement + ")\n");
        return lib;
    }

    @Test
    void fakeInstanceWithEverythingIsAvailable() throws Exception {
        Gcc.assumeAvailable();
        Path root = tmp.resolve("root");
        for (int i = 0; i < 1; i++) {
            Files.createDirectories(root.resolve("dev"));
            Files.writeString(root.resolve("dev/neuron" + i), "");
            Path s = Files.createDirectories(root.resolve("sys/devices/virtual/neuron_device/neuron" + i));
            Files.writeString(s.resolve("core_count"), "2\n");
        }
        Path nrt = Gcc.sharedLibrary(tmp.resolve("nrt"), "libnrt.so", NeuronRuntimeTest.FAKE_NRT,
                "-I" + Path.of("include").toAbsolutePath());
        String series = TorchNeuronPackaging.libtorchVersion().torch().series();
        Path good = fakeSitePackages("good", "==" + series + ".*");

        NeuronPlatform p = NeuronPlatform.detect(root, Map.of("NEURON_RT_VISIBLE_CORES", "1"), List.of(nrt),
                List.of(tmp.resolve("absent.so"), good), false);
        assertTrue(p.available(), p.reason());
        assertEquals("available", p.reason());
        assertEquals(List.of(1), p.devices().visibleCores());
        assertEquals(22, p.runtimeVersion().minor());
        assertEquals(good, p.torchNeuronLibrary());
        assertNotNull(p.torchNeuronInspection());
        p.requireAvailable();
        // the stand-in imports a c10 symbol the real libtorch lacks: loading is refused before dlopen
        boolean otherLoaded = TorchNeuronLoader.isLoaded(); // an earlier test of this JVM loaded one
        BackendException e = assertThrows(BackendException.class, p::loadTorchNeuron);
        assertTrue(e.getMessage().contains(otherLoaded ? "already loaded" : "_ZN3c105probeEv"), e.getMessage());

        Path bad = fakeSitePackages("bad", "==2.5.*");
        NeuronPlatform q = NeuronPlatform.detect(root, Map.of(), List.of(nrt), List.of(bad), false);
        assertFalse(q.available());
        assertTrue(q.reason().contains("==2.5.*") && q.reason().contains("-Dpytorch.version=2.5.1-1.5.11"), q.reason());

        NeuronPlatform r = NeuronPlatform.detect(tmp.resolve("empty"), Map.of(), List.of(tmp.resolve("no/libnrt.so")),
                List.of(), false);
        assertEquals(3, r.problems().size(), r.problems().toString());
        String msg = assertThrows(BackendException.class, r::requireAvailable).getMessage();
        assertTrue(msg.contains("no Neuron device") && msg.contains("libnrt.so") && msg.contains("libtorchneuron.so"),
                msg);
    }
}
