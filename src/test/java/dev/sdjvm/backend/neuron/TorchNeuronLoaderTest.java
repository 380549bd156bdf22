package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.BackendException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TorchNeuronLoader's pre-load checks on real ELF files built by gcc in a fake pip layout
 * ({@code site-packages/torch_neuronx/lib/libtorchneuron.so} + dist-info METADATA), and the libtorch version read
 * from the class path compared with the pom's {@code pytorch.version}.
 */
class TorchNeuronLoaderTest {
    @TempDir
    Path tmp;

    /** site-packages with torch/lib/libtorch_cpu.so + libc10.so stand-ins and a libtorchneuron.so needing them. */
    private Path fakeInstall(Path sp, String extraSource, String... extraGcc) throws Exception {
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

    private static void distInfo(Path sp, String dirName, String metadata) throws Exception {
        Path d = Files.createDirectories(sp.resolve(dirName));
        Files.writeString(d.resolve("METADATA"), metadata);
    }

    private static TorchNeuronLoader.LibtorchVersion libtorch(String maven) {
        return new TorchNeuronLoader.LibtorchVersion(TorchVersion.parse(maven), maven, "test");
    }

    @Test
    void requiresDistPinsTheTorchSeries() throws Exception {
        Gcc.assumeAvailable();
        Path sp = tmp.resolve("venv/lib/python3.10/site-packages");
        Path lib = fakeInstall(sp, "");
        distInfo(sp, "torch_neuronx-2.5.1.2.4.0.dist-info", """
                Metadata-Version: 2.1
                Name: torch-neuronx
                Version: 2.5.1.2.4.0
                Requires-Dist: torch-xla (==2.5.1)
                Requires-Dist: torch (==2.5.*)
                Requires-Dist: pytest ; extra == 'test'

                Requires-Dist: torch==9.9 (description text, ignored)
                """);
        TorchNeuronLoader.Inspection insp = TorchNeuronLoader.inspect(lib);
        assertTrue(insp.needed().containsAll(List.of("libtorch_cpu.so", "libc10.so")), insp.needed().toString());
        assertEquals(List.of("$ORIGIN/../../torch/lib"), insp.runPath());
        assertEquals("2.5.1.2.4.0", insp.torchNeuronxVersion());
        assertEquals("==2.5.*", insp.requirement().spec());
        assertTrue(insp.requirement().source().contains("METADATA"));

        BackendException e = assertThrows(BackendException.class,
                () -> TorchNeuronLoader.checkVersion(insp, libtorch("2.10.0-1.5.13"), false));
        String m = e.getMessage();
        assertTrue(m.contains("==2.5.*") && m.contains("2.10.0") && m.contains("2.10.0-1.5.13")
                && m.contains("-Dpytorch.version=2.5.1-1.5.11") && m.contains("pytorch.version"), m);
        assertDoesNotThrow(() -> TorchNeuronLoader.checkVersion(insp, libtorch("2.5.1-1.5.11"), false));
        // assumeCompatible does not override a known mismatch
        assertThrows(BackendException.class, () -> TorchNeuronLoader.checkVersion(insp, libtorch("2.7.1-1.5.12"), true));
    }

    @Test
    void versionSchemeAndInstalledTorchFallbacks() throws Exception {
        Gcc.assumeAvailable();
        Path sp = tmp.resolve("a/site-packages");
        Path lib = fakeInstall(sp, "");
        distInfo(sp, "torch_neuronx-2.7.0.2.9.9.dist-info", "Name: torch-neuronx\nVersion: 2.7.0.2.9.9\n");
        TorchNeuronLoader.Inspection insp = TorchNeuronLoader.inspect(lib);
        assertEquals("==2.7.0", insp.requirement().spec());
        // same series, other patch: allowed (the symbol check decides at load time)
        assertDoesNotThrow(() -> TorchNeuronLoader.checkVersion(insp, libtorch("2.7.1-1.5.12"), false));
        String m = assertThrows(BackendException.class,
                () -> TorchNeuronLoader.checkVersion(insp, libtorch("2.10.0-1.5.13"), false)).getMessage();
        assertTrue(m.contains("-Dpytorch.version=2.7.1-1.5.12"), m);

        Path sp2 = tmp.resolve("b/site-packages");
        Path lib2 = fakeInstall(sp2, "");
        distInfo(sp2, "torch-2.8.0+cpu.dist-info", "Name: torch\nVersion: 2.8.0+cpu\n");
        TorchNeuronLoader.Inspection insp2 = TorchNeuronLoader.inspect(lib2);
        assertNull(insp2.torchNeuronxVersion());
        assertEquals(TorchVersion.parse("2.8.0"), insp2.installedTorch());
        assertEquals("==2.8.*", insp2.requirement().spec());
        String m2 = assertThrows(BackendException.class,
                () -> TorchNeuronLoader.checkVersion(insp2, libtorch("2.10.0-1.5.13"), false)).getMessage();
        assertTrue(m2.contains("no org.bytedeco:pytorch release exists for torch 2.8"), m2);
    }

    @Test
    void unknownTargetIsRefusedUnlessAssumed() throws Exception {
        Gcc.assumeAvailable();
        Path lib = fakeInstall(tmp.resolve("c/site-packages"), "");
        TorchNeuronLoader.Inspection insp = TorchNeuronLoader.inspect(lib);
        assertNull(insp.requirement());
        String m = assertThrows(BackendException.class,
                () -> TorchNeuronLoader.checkVersion(insp, libtorch("2.10.0-1.5.13"), false)).getMessage();
        assertTrue(m.contains("cannot tell which torch release") && m.contains("assumeCompatible"), m);
        assertDoesNotThrow(() -> TorchNeuronLoader.checkVersion(insp, libtorch("2.10.0-1.5.13"), true));
    }

    @Test
    void refusesNonTorchPythonBoundNonElfAndTruncatedFiles() throws Exception {
        Path text = Files.createDirectories(tmp.resolve("t")).resolve("libtorchneuron.so");
        Files.writeString(text, "INPUT(-ltorchneuron_real)\n");
        String m = assertThrows(BackendException.class, () -> TorchNeuronLoader.inspect(text)).getMessage();
        assertTrue(m.contains("not an ELF file") && m.contains(text.toString()), m);
        assertTrue(assertThrows(BackendException.class, () -> TorchNeuronLoader.inspect(tmp.resolve("none.so")))
                .getMessage().contains("no such file"));

        Gcc.assumeAvailable();
        Path plain = Gcc.sharedLibrary(tmp.resolve("p"), "libtorchneuron.so", "int f(void){return 0;}\n");
        assertTrue(assertThrows(BackendException.class, () -> TorchNeuronLoader.inspect(plain)).getMessage()
                .contains("does not link against libtorch"));

        Path py = tmp.resolve("py");
        Gcc.sharedLibrary(py, "libtorch_python.so", "int tp(void){return 0;}\n", "-Wl,-soname,libtorch_python.so");
        Path withPy = fakeInstall(tmp.resolve("d/site-packages"), "extern int tp(void);\nint g(void){return tp();}\n",
                "-L" + py, "-ltorch_python");
        assertTrue(assertThrows(BackendException.class, () -> TorchNeuronLoader.inspect(withPy)).getMessage()
                .contains("libtorch_python.so"));

        byte[] all = Files.readAllBytes(plain);
        Path cut = tmp.resolve("cut/libtorchneuron.so");
        Files.createDirectories(cut.getParent());
        Files.write(cut, Arrays.copyOf(all, 200));
        String mc = assertThrows(BackendException.class, () -> TorchNeuronLoader.inspect(cut)).getMessage();
        assertTrue(mc.contains("truncated"), mc);
    }

    @Test
    void symbolCheckFindsImportsTheTorchLibrariesDoNotDefine() throws Exception {
        Gcc.assumeAvailable();
        Path sp = tmp.resolve("e/site-packages");
        Path lib = fakeInstall(sp, "extern int _ZN3c106absentEv(void);\nint h(void){return _ZN3c106absentEv();}\n"
                + "extern int _ZN2at4weakEv(void) __attribute__((weak));\nint w(void){return _ZN2at4weakEv ? 1 : 0;}\n");
        List<Path> torch = List.of(sp.resolve("torch/lib/libtorch_cpu.so"), sp.resolve("torch/lib/libc10.so"));
        assertEquals(List.of("_ZN3c106absentEv"), TorchNeuronLoader.missingTorchSymbols(lib, torch));
        Path ok = fakeInstall(tmp.resolve("f/site-packages"), "");
        assertEquals(List.of(), TorchNeuronLoader.missingTorchSymbols(ok, torch));
        assertEquals(List.of("_ZN3c105probeEv"), TorchNeuronLoader.missingTorchSymbols(ok, List.of()));
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
        Path lib = fakeInstall(sp, "extern int nrt_tensor_copy(void *, void *);\n"
                + "extern int nrt_get_version(void *, unsigned long);\n"
                + "int copy(void) { return nrt_tensor_copy(0, 0) + nrt_get_version(0, 0); }\n",
                "-L" + newNrt.getParent(), "-lnrt");
        TorchNeuronLoader.Inspection insp = TorchNeuronLoader.inspect(lib);
        assertTrue(insp.needed().contains("libnrt.so.1"), insp.needed().toString());
        assertTrue(insp.versionNeeds().stream().anyMatch(v -> v.file().equals("libnrt.so.1")
                && v.versions().contains("NRT_2.0.0")), insp.versionNeeds().toString());
        assertEquals(List.of(), TorchNeuronLoader.runtimeProblems(insp, newNrt));
        List<String> problems = TorchNeuronLoader.runtimeProblems(insp, oldNrt);
        assertEquals(2, problems.size(), problems.toString());
        assertTrue(problems.get(0).contains("NRT_2.0.0"), problems.get(0));
        assertTrue(problems.get(1).contains("[nrt_tensor_copy]"), problems.get(1));
    }

    @Test
    void libtorchVersionMatchesThePomProperty() throws Exception {
        Matcher m = Pattern.compile("<pytorch.version>([^<]+)</pytorch.version>")
                .matcher(Files.readString(Path.of("pom.xml")));
        assertTrue(m.find(), "pom.xml declares pytorch.version");
        TorchNeuronLoader.LibtorchVersion v = TorchNeuronLoader.libtorchVersion();
        assertEquals(m.group(1), v.mavenVersion(), v.source());
        assertEquals(TorchVersion.parse(m.group(1)), v.torch());
        assertTrue(TorchNeuronLoader.BYTEDECO_PYTORCH.containsValue(v.mavenVersion()));
    }

    @Test
    void candidatesIncludeDlamiVenvsAndOverrides() throws Exception {
        Path root = tmp.resolve("root");
        Path dlami = root.resolve("opt/aws_neuronx_venv_pytorch_2_5/lib/python3.10/site-packages/torch_neuronx/lib");
        Files.createDirectories(dlami);
        Files.createDirectories(root.resolve("usr/local/lib/python3.11"));
        Path override = Files.createDirectories(tmp.resolve("override"));
        List<Path> c = TorchNeuronLoader.candidates(root, override.toString(), Map.of("VIRTUAL_ENV", "/venv/x"));
        assertEquals(override.resolve("libtorchneuron.so"), c.get(0));
        assertTrue(c.contains(dlami.resolve("libtorchneuron.so")), c.toString());
        assertTrue(c.contains(root.resolve("usr/local/lib/python3.11/dist-packages/torch_neuronx/lib/libtorchneuron.so")));
        assertTrue(c.indexOf(dlami.resolve("libtorchneuron.so"))
                < c.indexOf(root.resolve("usr/local/lib/python3.11/site-packages/torch_neuronx/lib/libtorchneuron.so")));
    }

    @Test
    void requiresDistParsing() {
        assertEquals("==2.1.*", TorchNeuronLoader.torchSpec("torch (==2.1.*)"));
        assertEquals("==2.5.*", TorchNeuronLoader.torchSpec("torch==2.5.*"));
        assertEquals(">=2.5,<2.6", TorchNeuronLoader.torchSpec("torch >=2.5, <2.6 ; python_version >= \"3.8\""));
        assertNull(TorchNeuronLoader.torchSpec("torch-xla (==2.5.1)"));
        assertNull(TorchNeuronLoader.torchSpec("torchvision==0.20"));
        assertNull(TorchNeuronLoader.torchSpec("torch==2.5 ; extra == 'x'"));
        assertNull(TorchNeuronLoader.torchSpec("torch"));
        TorchNeuronLoader.Requirement r = new TorchNeuronLoader.Requirement(">=2.5,<2.6", "t");
        assertTrue(r.admits(TorchVersion.parse("2.5.1")));
        assertFalse(r.admits(TorchVersion.parse("2.6.0")));
        assertEquals("2.5", r.pinnedSeries());
        assertTrue(new TorchNeuronLoader.Requirement("~=2.7.0", "t").admits(TorchVersion.parse("2.7.1")));
        assertFalse(new TorchNeuronLoader.Requirement("==2.7.0", "t").admits(TorchVersion.parse("2.7.1")));
        assertFalse(new TorchNeuronLoader.Requirement("!=2.7.*", "t").admits(TorchVersion.parse("2.7.1")));
        assertEquals(TorchVersion.parse("2.10.0"), TorchVersion.parse("2.10.0-1.5.13"));
        assertEquals("2.7", TorchVersion.parse("2.7.0a0+git1234").series());
        assertThrows(IllegalArgumentException.class, () -> TorchVersion.parse("torch"));
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
        List<Path> libs = TorchNeuronLoader.torchLibrariesIn(maps);
        assertEquals(2, libs.size());
        assertNotNull(libs.get(0).getFileName());
        assertEquals("libc10.so", libs.get(1).getFileName().toString());
    }
}
