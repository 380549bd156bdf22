package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.backend.torch.Torch;
import dev.sdjvm.errors.BackendException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Run by {@link TorchNeuronRealLoadTest} in a child JVM (a loaded library cannot be unloaded, and while one is loaded
 * {@link NeuronRuntime} refuses {@code nrt_init} for the rest of the process). Builds the extension libraries in
 * {@code args[0]}, runs the whole load path, throws on the first failed assertion and prints {@value #DONE} at the end.
 */
public final class TorchNeuronRealLoadMain {
    static final String DONE = "REAL LOAD CHECKS PASSED";

    private TorchNeuronRealLoadMain() {}

    public static void main(String[] args) throws Exception {
        Path tmp = Path.of(args[0]);
        assertFalse(TorchNeuronLoader.isLoaded(), "a fresh JVM has no libtorchneuron");
        Torch.load();
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
        Path good = build(tmp, "good", "extern void " + real.get() + "(void);\nvoid *sdjvm_ref = (void *) &"
                + real.get() + ";\n", c10, series);
        Path bad = build(tmp, "bad", "extern void _ZN3c1012sdjvm_absentEv(void);\n"
                + "int sdjvm_call(void) { _ZN3c1012sdjvm_absentEv(); return 0; }\n", c10, series);

        BackendException e = assertThrows(BackendException.class, () -> TorchNeuronLoader.load(bad));
        assertTrue(e.getMessage().contains("_ZN3c1012sdjvm_absentEv") && e.getMessage().contains("1 torch symbol"),
                e.getMessage());
        assertFalse(TorchNeuronLoader.isLoaded(), "refused before dlopen");
        assertFalse(mappedExecutable(bad), "bad was not loaded (ElfFile's read-only mappings do not count)");

        TorchNeuronLoader.load(good);
        assertTrue(TorchNeuronLoader.isLoaded());
        assertEquals(good.toAbsolutePath().normalize(), TorchNeuronLoader.loadedPath());
        TorchNeuronLoader.load(good); // idempotent
        assertTrue(mappedExecutable(good), "its code is mapped by System.load");
        assertTrue(assertThrows(BackendException.class, () -> TorchNeuronLoader.load(bad)).getMessage()
                .contains("already loaded"));
        System.out.println(DONE);
    }

    /** True when /proc/self/maps has an executable mapping of {@code lib} (the dynamic linker's, not ElfFile's). */
    private static boolean mappedExecutable(Path lib) throws Exception {
        for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
            String[] f = line.trim().split("\\s+", 6);
            if (f.length == 6 && f[1].contains("x") && f[5].equals(lib.toString())) {
                return true;
            }
        }
        return false;
    }

    private static Path build(Path tmp, String name, String source, Path c10, String series) throws Exception {
        Path sp = tmp.resolve(name + "/site-packages");
        Path d = Files.createDirectories(sp.resolve("torch_neuronx-" + series + ".0.2.0.0.dist-info"));
        Files.writeString(d.resolve("METADATA"), "Name: torch-neuronx\nVersion: " + series + ".0.2.0.0\n"
                + "Requires-Dist: torch==" + series + ".*\n");
        return Gcc.sharedLibrary(sp.resolve("torch_neuronx/lib"), "libtorchneuron.so", source,
                "-L" + c10.getParent(), "-Wl,--no-as-needed", "-lc10");
    }
}
