package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdjvm.errors.BackendException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * TorchNeuronPackaging's pre-load checks on real ELF files built by gcc in a fake pip layout
 * ({@code site-packages/torch_neuronx/lib/libtorchneuron.so} + dist-info METADATA), and the libtorch version read
 * from the class path compared with the pom's {@code pytorch.version}.
 */
class TorchNeuronPackagingTest {
    @TempDir
    Path tmp;

    private static void distInfo(Path sp, String dirName, String metadata) throws Exception {
        Path d = Files.createDirectories(sp.resolve(dirName));
        Files.writeString(d.resolve("METADATA"), metadata);
    }

    private static TorchNeuronPackaging.LibtorchVersion libtorch(String maven) {
        return new TorchNeuronPackaging.LibtorchVersion(TorchVersion.parse(maven), maven, "test");
    }

    @Test
    void requiresDistPinsTheTorchSeries() throws Exception {
        Gcc.assumeAvailable();
        Path sp = tmp.resolve("venv/lib/python3.10/site-packages");
        Path lib = FakeTorchNeuron.install(sp, "");
        distInfo(sp, "torch_neuronx-2.5.1.2.4.0.dist-info", """
                Metadata-Version: 2.1
                Name: torch-neuronx
                Version: 2.5.1.2.4.0
                Requires-Dist: torch-xla (==2.5.1)
                Requires-Dist: torch (==2.5.*)
                Requires-Dist: pytest ; extra == 'test'

                Requires-Dist: torch==9.9 (description text, ignored)
                """);
        TorchNeuronPackaging.Inspection insp = TorchNeuronPackaging.inspect(lib);
        assertTrue(insp.needed().containsAll(List.of("libtorch_cpu.so", "libc10.so")), insp.needed().toString());
        assertEquals(List.of("$ORIGIN/../../torch/lib"), insp.runPath());
        assertEquals("2.5.1.2.4.0", insp.torchNeuronxVersion());
        assertEquals("==2.5.*", insp.requirement().spec());
        assertTrue(insp.requirement().source().contains("METADATA"));

        BackendException e = assertThrows(BackendException.class,
                () -> TorchNeuronPackaging.checkVersion(insp, libtorch("2.10.0-1.5.13"), false));
        String m = e.getMessage();
        assertTrue(m.contains("==2.5.*") && m.contains("2.10.0") && m.contains("2.10.0-1.5.13")
                && m.contains("-Dpytorch.version=2.5.1-1.5.11") && m.contains("pytorch.version"), m);
        assertDoesNotThrow(() -> TorchNeuronPackaging.checkVersion(insp, libtorch("2.5.1-1.5.11"), false));
        // assumeCompatible does not override a known mismatch
        assertThrows(BackendException.class,
                () -> TorchNeuronPackaging.checkVersion(insp, libtorch("2.7.1-1.5.12"), true));
    }

    @Test
    void versionSchemeAndInstalledTorchFallbacks() throws Exception {
        Gcc.assumeAvailable();
        Path sp = tmp.resolve("a/site-packages");
        Path lib = FakeTorchNeuron.install(sp, "");
        distInfo(sp, "torch_neuronx-2.7.0.2.9.9.dist-info", "Name: torch-neuronx\nVersion: 2.7.0.2.9.9\n");
        TorchNeuronPackaging.Inspection insp = TorchNeuronPackaging.inspect(lib);
        assertEquals("==2.7.0", insp.requirement().spec());
        // same series, other patch: allowed (the symbol check decides at load time)
        assertDoesNotThrow(() -> TorchNeuronPackaging.checkVersion(insp, libtorch("2.7.1-1.5.12"), false));
        String m = assertThrows(BackendException.class,
                () -> TorchNeuronPackaging.checkVersion(insp, libtorch("2.10.0-1.5.13"), false)).getMessage();
        assertTrue(m.contains("-Dpytorch.version=2.7.1-1.5.12"), m);

        Path sp2 = tmp.resolve("b/site-packages");
        Path lib2 = FakeTorchNeuron.install(sp2, "");
        distInfo(sp2, "torch-2.8.0+cpu.dist-info", "Name: torch\nVersion: 2.8.0+cpu\n");
        TorchNeuronPackaging.Inspection insp2 = TorchNeuronPackaging.inspect(lib2);
        assertNull(insp2.torchNeuronxVersion());
        assertEquals(TorchVersion.parse("2.8.0"), insp2.installedTorch());
        assertEquals("==2.8.*", insp2.requirement().spec());
        String m2 = assertThrows(BackendException.class,
                () -> TorchNeuronPackaging.checkVersion(insp2, libtorch("2.10.0-1.5.13"), false)).getMessage();
        assertTrue(m2.contains("no org.bytedeco:pytorch release exists for torch 2.8"), m2);
    }

    @Test
    void unknownTargetIsRefusedUnlessAssumed() throws Exception {
        Gcc.assumeAvailable();
        Path lib = FakeTorchNeuron.install(tmp.resolve("c/site-packages"), "");
        TorchNeuronPackaging.Inspection insp = TorchNeuronPackaging.inspect(lib);
        assertNull(insp.requirement());
        String m = assertThrows(BackendException.class,
                () -> TorchNeuronPackaging.checkVersion(insp, libtorch("2.10.0-1.5.13"), false)).getMessage();
        assertTrue(m.contains("cannot tell which torch release") && m.contains("assumeCompatible"), m);
        assertDoesNotThrow(() -> TorchNeuronPackaging.checkVersion(insp, libtorch("2.10.0-1.5.13"), true));
    }

    @Test
    void refusesNonTorchPythonBoundNonElfAndTruncatedFiles() throws Exception {
        Path text = Files.createDirectories(tmp.resolve("t")).resolve("libtorchneuron.so");
        Files.writeString(text, "INPUT(-ltorchneuron_real)\n");
        String m = assertThrows(BackendException.class, () -> TorchNeuronPackaging.inspect(text)).getMessage();
        assertTrue(m.contains("not an ELF file") && m.contains(text.toString()), m);
        assertTrue(assertThrows(BackendException.class, () -> TorchNeuronPackaging.inspect(tmp.resolve("none.so")))
                .getMessage().contains("no such file"));

        Gcc.assumeAvailable();
        Path plain = Gcc.sharedLibrary(tmp.resolve("p"), "libtorchneuron.so", "int f(void){return 0;}\n");
        assertTrue(assertThrows(BackendException.class, () -> TorchNeuronPackaging.inspect(plain)).getMessage()
                .contains("does not link against libtorch"));

        Path py = tmp.resolve("py");
        Gcc.sharedLibrary(py, "libtorch_python.so", "int tp(void){return 0;}\n", "-Wl,-soname,libtorch_python.so");
        Path withPy = FakeTorchNeuron.install(tmp.resolve("d/site-packages"),
                "extern int tp(void);\nint g(void){return tp();}\n", "-L" + py, "-ltorch_python");
        assertTrue(assertThrows(BackendException.class, () -> TorchNeuronPackaging.inspect(withPy)).getMessage()
                .contains("libtorch_python.so"));

        byte[] all = Files.readAllBytes(plain);
        Path cut = tmp.resolve("cut/libtorchneuron.so");
        Files.createDirectories(cut.getParent());
        Files.write(cut, Arrays.copyOf(all, 200));
        String mc = assertThrows(BackendException.class, () -> TorchNeuronPackaging.inspect(cut)).getMessage();
        assertTrue(mc.contains("truncated"), mc);
    }

    @Test
    void libtorchVersionMatchesThePomProperty() throws Exception {
        Matcher m = Pattern.compile("<pytorch.version>([^<]+)</pytorch.version>")
                .matcher(Files.readString(Path.of("pom.xml")));
        assertTrue(m.find(), "pom.xml declares pytorch.version");
        TorchNeuronPackaging.LibtorchVersion v = TorchNeuronPackaging.libtorchVersion();
        assertEquals(m.group(1), v.mavenVersion(), v.source());
        assertEquals(TorchVersion.parse(m.group(1)), v.torch());
        assertTrue(TorchNeuronPackaging.BYTEDECO_PYTORCH.containsValue(v.mavenVersion()));
    }

    @Test
    void requiresDistParsing() {
        assertEquals("==2.1.*", TorchNeuronPackaging.torchSpec("torch (==2.1.*)"));
        assertEquals("==2.5.*", TorchNeuronPackaging.torchSpec("torch==2.5.*"));
        assertEquals(">=2.5,<2.6", TorchNeuronPackaging.torchSpec("torch >=2.5, <2.6 ; python_version >= \"3.8\""));
        assertNull(TorchNeuronPackaging.torchSpec("torch-xla (==2.5.1)"));
        assertNull(TorchNeuronPackaging.torchSpec("torchvision==0.20"));
        assertNull(TorchNeuronPackaging.torchSpec("torch==2.5 ; extra == 'x'"));
        assertNull(TorchNeuronPackaging.torchSpec("torch"));
        TorchNeuronPackaging.Requirement r = new TorchNeuronPackaging.Requirement(">=2.5,<2.6", "t");
        assertTrue(r.admits(TorchVersion.parse("2.5.1")));
        assertFalse(r.admits(TorchVersion.parse("2.6.0")));
        assertEquals("2.5", r.pinnedSeries());
        assertTrue(new TorchNeuronPackaging.Requirement("~=2.7.0", "t").admits(TorchVersion.parse("2.7.1")));
        assertFalse(new TorchNeuronPackaging.Requirement("==2.7.0", "t").admits(TorchVersion.parse("2.7.1")));
        assertFalse(new TorchNeuronPackaging.Requirement("!=2.7.*", "t").admits(TorchVersion.parse("2.7.1")));
        assertEquals(TorchVersion.parse("2.10.0"), TorchVersion.parse("2.10.0-1.5.13"));
        assertEquals("2.7", TorchVersion.parse("2.7.0a0+git1234").series());
        assertThrows(IllegalArgumentException.class, () -> TorchVersion.parse("torch"));
    }

}
