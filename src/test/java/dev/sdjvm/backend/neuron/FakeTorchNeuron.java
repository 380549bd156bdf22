package dev.sdjvm.backend.neuron;

import java.nio.file.Path;

/**
 * A fake pip installation for the libtorchneuron checks, built with gcc: {@code site-packages/torch/lib} with
 * libtorch_cpu.so + libc10.so stand-ins and a {@code site-packages/torch_neuronx/lib/libtorchneuron.so} needing them.
 */
final class FakeTorchNeuron {
    private FakeTorchNeuron() {}

    /** Builds the stand-ins under {@code sp}; {@code extraSource} and {@code extraGcc} go into libtorchneuron.so. */
    static Path install(Path sp, String extraSource, String... extraGcc) throws Exception {
        Path torchLib = sp.resolve("torch/lib");
        Gcc.sharedLibrary(torchLib, "libc10.so", "int _ZN3c105probeEv(void) { return 7; }\n", "-Wl,-soname,libc10.so");
        Gcc.sharedLibrary(torchLib, "libtorch_cpu.so", "int torch_cpu_probe(void) { return 1; }\n",
                "-Wl,-soname,libtorch_cpu.so");
        String src = "extern int _ZN3c105probeEv(void);\nextern int torch_cpu_probe(void);\n"
                + "int neuron_probe(void) { return _ZN3c105probeEv() + torch_cpu_probe(); }\n" + extraSource;
        String[] args = new String[extraGcc.length + 4];
        args[0] = "-L" + torchLib;
        args[1] = "-ltorch_cpu";
        args[2] = "-lc10";
        args[3] = "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../../torch/lib";
        System.arraycopy(extraGcc, 0, args, 4, extraGcc.length);
        return Gcc.sharedLibrary(sp.resolve("torch_neuronx/lib"), "libtorchneuron.so", src, args);
    }
}
