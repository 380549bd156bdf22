package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole load path against the real libtorch of org.bytedeco:pytorch: libtorch is loaded by JavaCPP, its
 * libc10.so is found in /proc/self/maps, and two extension libraries are built with gcc against that very
 * libc10.so: one importing a c10 function libc10.so really exports (loads with System.load), one importing a
 * c10 symbol that does not exist (refused before dlopen, the JVM survives). Nothing Neuron-specific runs: this is
 * the mechanism a real libtorchneuron.so goes through.
 *
 * <p>It runs in a child JVM ({@link TorchNeuronRealLoadMain}): a loaded library stays loaded, and while a
 * libtorchneuron is loaded {@link NeuronRuntime#attach()} refuses {@code nrt_init}, which would fail every NEFF-path
 * test that surefire's shared fork runs afterwards.
 */
class TorchNeuronRealLoadTest {
    @TempDir
    Path tmp;

    @Test
    void loadsACompatibleExtensionAndRefusesAnIncompatibleOne() throws Exception {
        Gcc.assumeAvailable();
        List<String> cp = new ArrayList<>();
        cp.add(Path.of("target/classes").toAbsolutePath().toString());
        cp.add(Path.of("target/test-classes").toAbsolutePath().toString());
        cp.add(Files.readString(Path.of("target/test-classpath.txt")).trim());
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", String.join(File.pathSeparator, cp), TorchNeuronRealLoadMain.class.getName(), tmp.toString());
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "child JVM did not finish:\n" + out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains(TorchNeuronRealLoadMain.DONE), out);
        System.out.print(out);
    }
}
