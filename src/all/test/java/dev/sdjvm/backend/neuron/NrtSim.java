package dev.sdjvm.backend.neuron;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.jna.Library;
import com.sun.jna.Native;
import dev.sdjvm.TestModels;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The simulated Neuron runtime of {@code native/} for tests: built once per JVM with {@code native/build.sh} (the
 * system gcc; tests are skipped with the reason without it), made the library's libnrt through the
 * {@value NeuronRuntime#PATH_PROPERTY} property, and controlled through its test API ({@code native/nrt_sim.h}).
 */
public final class NrtSim {
    private static Path library;
    private static Control control;

    private NrtSim() {
    }

    /** {@code native/nrt_sim.h}'s control functions. */
    public interface Control extends Library {
        void nrtsim_get_stats(long[] out);

        void nrtsim_reset_stats();

        int nrtsim_stats_count();

        String nrtsim_stat_name(int index);

        int nrtsim_inject(String call, int skip, int count, int status);

        void nrtsim_clear_injections();

        void nrtsim_set_exec_barrier(int parties, int timeoutMs);

        void nrtsim_set_exec_delay_us(int us);

        void nrtsim_set_legacy_dtypes(int on);

        void nrtsim_set_bare_tensor_info(int on);
    }

    /** The statistics by name (see nrt_sim.h). */
    public record Stats(long[] v) {
        public long get(String name) {
            Control c = control();
            for (int i = 0; i < v.length; i++) {
                if (name.equals(c.nrtsim_stat_name(i))) {
                    return v[i];
                }
            }
            throw new IllegalArgumentException("no statistic " + name);
        }
    }

    /** Builds (once) and returns the simulator, set as this JVM's libnrt; skips the test without gcc. */
    public static synchronized Path library() {
        if (library == null) {
            Gcc.assumeAvailable();
            Path out = Path.of("target", "native").toAbsolutePath();
            try {
                Process p = new ProcessBuilder("bash", "../../native/build.sh", out.toString()).redirectErrorStream(true).start();
                String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (!p.waitFor(180, TimeUnit.SECONDS) || p.exitValue() != 0) {
                    throw new IllegalStateException("native/build.sh failed:\n" + log);
                }
            } catch (IOException e) {
                throw new IllegalStateException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            library = out.resolve("libnrt.so");
            assumeTrue(Files.isRegularFile(library), "simulator not built");
        }
        System.setProperty(NeuronRuntime.PATH_PROPERTY, library.toString());
        return library;
    }

    /** The control API of the (same, already loaded) simulator. */
    public static synchronized Control control() {
        if (control == null) {
            control = Native.load(library().toString(), Control.class);
        }
        return control;
    }

    public static Stats stats() {
        Control c = control();
        long[] v = new long[c.nrtsim_stats_count()];
        c.nrtsim_get_stats(v);
        return new Stats(v);
    }

    /** Resets counters, injections, the barrier, the delay and the dtype numbering. */
    public static void reset() {
        Control c = control();
        c.nrtsim_clear_injections();
        c.nrtsim_set_exec_barrier(0, 0);
        c.nrtsim_set_exec_delay_us(0);
        c.nrtsim_set_legacy_dtypes(0);
        c.nrtsim_set_bare_tensor_info(0);
        c.nrtsim_reset_stats();
    }

    /** A copy of a simulator fixture model ({@code sim-neuron}, {@code sim-cpu}) with the embedded model's tokenizer. */
    public static Path model(String fixture, Path dir) throws IOException {
        TestModels.copy(TestModels.resource("models/" + fixture), dir);
        TestModels.copy(TestModels.resource("dev/sdjvm/default-model/tokenizer"), dir.resolve("tokenizer"));
        return dir;
    }
}
