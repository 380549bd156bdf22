package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.BackendException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.bytedeco.javacpp.Loader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole load path against the real libtorch of org.bytedeco:pytorch: libtorch is loaded by JavaCPP, its
 * libc10.so is found in /proc/self/maps, and two extension libraries are built with gcc against that very
 * libc10.so: one importing a c10 function libc10.so really exports (loads with System.load), one importing a
 * c10 symbol that does not exist (refused before dlopen, the JVM survives). Nothing Neuron-specific runs: this is
 * the mechanism a real libtorchneuron.so goes through.
 */
class TorchNeuronRealLoadTest {
    @TempDir
    Path tmp;

    @Test
    void loadsACompatibleExtensionAndRefusesAnIncompatibleOne() throws Exception {
        Gcc.assumeAvailable();
        Loader.load(org.bytedeco.pytorch.global.torch.class);
        List<Path> torchLibs = TorchNeuronSymbols.loadedTorchLibraries();
        Path c10 = torchLibs.stream().filter(p -> p.getFileName().toString().equals("libc10.so")).findFirst()
                .orElse(null);
        assertNotNull(c10, "libc10.so mapped after Loader.load: " + torchLibs);

        AtomicReference<String> real = new AtomicReference<>();
        ElfFile.read(c10).forEachDynamicSymbol(s -> {
            if (s.defined() && s.type() == 2 && s.name().startsWith("_ZN3c10") && s.name().matches("[A-Za-z0-9_]+")) {
                real.set(s.name());
                return false;
            }
            return true;
        });
        assertNotNull(real.get(), "libc10.so exports c10 functions");

        String series = TorchNeuronPackaging.libtorchVersion().torch().series();
        Path good = build("good", "extern void " + real.get() + "(void);\nvoid *sdjvm_ref = (void *) &" + real.get()
                + ";\n", c10, series);
        Path bad = build("bad", "extern void _ZN3c1012sdjvm_absentEv(void);\n"
                + "int sdjvm_call(void) { _ZN3c1012sdjvm_absentEv(); return 0; }\n", c10, series);

        BackendException e = assertThrows(BackendException.class, () -> TorchNeuronLoader.load(bad));
        assertTrue(e.getMessage().contains("_ZN3c1012sdjvm_absentEv") && e.getMessage().contains("1 torch symbol"),
                e.getMessage());
        assertFalse(TorchNeuronLoader.isLoaded() && bad.equals(TorchNeuronLoader.loadedPath()));

        if (TorchNeuronLoader.isLoaded()) {
            System.out.println("SKIPPED part: a libtorchneuron was already loaded in this JVM from "
                    + TorchNeuronLoader.loadedPath());
            return;
        }
        TorchNeuronLoader.load(good);
        assertTrue(TorchNeuronLoader.isLoaded());
        assertEquals(good.toAbsolutePath().normalize(), TorchNeuronLoader.loadedPath());
        TorchNeuronLoader.load(good); // idempotent
        assertTrue(Files.readString(Path.of("/proc/self/maps")).contains(good.toString()), "mapped by System.load");
        assertTrue(assertThrows(BackendException.class, () -> TorchNeuronLoader.load(bad)).getMessage()
                .contains("already loaded"));
    }

    private Path build(String name, String source, Path c10, String series) throws Exception {
        Path sp = tmp.resolve(name + "/site-packages");
        Path d = Files.createDirectories(sp.resolve("torch_neuronx-" + series + ".0.2.0.0.dist-info"));
        Files.writeString(d.resolve("METADATA"), "Name: torch-neuronx\nVersion: " + series + ".0.2.0.0\n"
                + "Requires-Dist: torch==" + series + ".*\n");
        return Gcc.sharedLibrary(sp.resolve("torch_neuronx/lib"), "libtorchneuron.so", source,
                "-L" + c10.getParent(), "-Wl,--no-as-needed", "-lc10");
    }
}
