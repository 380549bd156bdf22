package dev.sdjvm.backend.neuron;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.bytedeco.javacpp.Loader;

/**
 * Times {@link TorchNeuronSymbols#missingTorchSymbols} in its worst case (one imported c10 symbol is absent, so all of
 * the loaded libc10.so, libtorch_cpu.so and libtorch.so are scanned). Not a test; run with
 * {@code java -cp target/test-classes:target/classes:$(cat target/test-classpath.txt) dev.sdjvm.backend.neuron.SymbolCheckTiming}.
 */
public final class SymbolCheckTiming {
    private SymbolCheckTiming() {}

    public static void main(String[] args) throws Exception {
        Loader.load(org.bytedeco.pytorch.global.torch.class);
        List<Path> libs = TorchNeuronSymbols.loadedTorchLibraries();
        Path dir = Files.createTempDirectory("symcheck");
        Path ext = Gcc.sharedLibrary(dir, "libext.so",
                "extern void _ZN3c1012sdjvm_absentEv(void);\nint f(void){ _ZN3c1012sdjvm_absentEv(); return 0; }\n");
        System.out.println("torch libraries: " + libs);
        for (Path l : libs) {
            int[] n = {0};
            ElfFile.read(l).forEachDynamicSymbol(s -> {
                n[0]++;
                return true;
            });
            System.out.println(l.getFileName() + ": " + n[0] + " dynamic symbols");
        }
        for (int i = 0; i < 5; i++) {
            long t = System.nanoTime();
            List<String> missing = TorchNeuronSymbols.missingTorchSymbols(ext, libs);
            System.out.printf("run %d: %.1f ms, missing %s%n", i, (System.nanoTime() - t) / 1e6, missing);
        }
    }
}
