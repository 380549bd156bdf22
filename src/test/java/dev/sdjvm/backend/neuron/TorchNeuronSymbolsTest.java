package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TorchNeuronSymbols' ELF symbol checks on real shared libraries built by gcc (torch imports against stand-in
 * libtorch libraries, nrt_* imports and symbol versions against stand-in libnrt.so files), and the
 * {@code /proc/self/maps} parsing that finds the loaded libtorch.
 */
class TorchNeuronSymbolsTest {
    @TempDir
    Path tmp;

    @Test
    void symbolCheckFindsImportsTheTorchLibrariesDoNotDefine() throws Exception {
        Gcc.assumeAvailable();
        Path sp = tmp.resolve("e/site-packages");
        Path lib = FakeTorchNeuron.install(sp,
                "extern int _ZN3c106absentEv(void);\nint h(void){return _ZN3c106absentEv();}\n"
                + "extern int _ZN2at4weakEv(void) __attribute__((weak));\nint w(void){return _ZN2at4weakEv ? 1 : 0;}\n");
        List<Path> torch = List.of(sp.resolve("torch/lib/libtorch_cpu.so"), sp.resolve("torch/lib/libc10.so"));
        assertEquals(List.of("_ZN3c106absentEv"), TorchNeuronSymbols.missingTorchSymbols(lib, torch));
        Path ok = FakeTorchNeuron.install(tmp.resolve("f/site-packages"), "");
        assertEquals(List.of(), TorchNeuronSymbols.missingTorchSymbols(ok, torch));
        assertEquals(List.of("_ZN3c105probeEv"), TorchNeuronSymbols.missingTorchSymbols(ok, List.of()));
    }

    @Test
    void runtimeCheckFindsAnOlderLibnrt() throws Exception {
        Gcc.assumeAvailable();
        // a runtime that versions its symbols NRT_2.0.0 and has nrt_tensor_copy, and an older one without either
        Path map = tmp.resolve("nrt.map");
        Files.writeString(map, "NRT_2.0.0 { global: nrt_*; local: *; };\n");
        String fns = "int nrt_get_version(void *v, unsigned long n) { return 0; }\n";
        Path newNrt = Gcc.sharedLibrary(tmp.resolve("nrt-new"), "libnrt.so",
                fns + "int nrt_tensor_copy(void *a, void *b) { return 0; }\n", "-Wl,-soname,libnrt.so.1",
                "-Wl,--version-script=" + map);
        Path oldNrt = Gcc.sharedLibrary(tmp.resolve("nrt-old"), "libnrt.so", fns, "-Wl,-soname,libnrt.so.1");
        Path sp = tmp.resolve("g/site-packages");
        Path lib = FakeTorchNeuron.install(sp, "extern int nrt_tensor_copy(void *, void *);\n"
                + "extern int nrt_get_version(void *, unsigned long);\n"
                + "int copy(void) { return nrt_tensor_copy(0, 0) + nrt_get_version(0, 0); }\n",
                "-L" + newNrt.getParent(), "-lnrt");
        TorchNeuronPackaging.Inspection insp = TorchNeuronPackaging.inspect(lib);
        assertTrue(insp.needed().contains("libnrt.so.1"), insp.needed().toString());
        assertTrue(insp.versionNeeds().stream().anyMatch(v -> v.file().equals("libnrt.so.1")
                && v.versions().contains("NRT_2.0.0")), insp.versionNeeds().toString());
        assertEquals(List.of(), TorchNeuronSymbols.runtimeProblems(insp, newNrt));
        List<String> problems = TorchNeuronSymbols.runtimeProblems(insp, oldNrt);
        assertEquals(2, problems.size(), problems.toString());
        assertTrue(problems.get(0).contains("NRT_2.0.0"), problems.get(0));
        assertTrue(problems.get(1).contains("[nrt_tensor_copy]"), problems.get(1));
    }

    @Test
    void procMapsParsing() throws Exception {
        Path maps = tmp.resolve("maps");
        Files.writeString(maps, """
                7f00-7f01 r-xp 00000000 08:01 1 /home/u/.javacpp/cache/pytorch.jar/org/bytedeco/pytorch/linux-x86_64/libtorch_cpu.so
                7f01-7f02 r--p 00000000 08:01 1 /home/u/.javacpp/cache/pytorch.jar/org/bytedeco/pytorch/linux-x86_64/libtorch_cpu.so
                7f02-7f03 r-xp 00000000 08:01 2 /x/libc10.so (deleted)
                7f03-7f04 rw-p 00000000 00:00 0 [heap]
                7f04-7f05 r-xp 00000000 08:01 3 /usr/lib/libc.so.6
                """);
        List<Path> libs = TorchNeuronSymbols.torchLibrariesIn(maps);
        assertEquals(2, libs.size());
        assertNotNull(libs.get(0).getFileName());
        assertEquals("libc10.so", libs.get(1).getFileName().toString());
    }
}
