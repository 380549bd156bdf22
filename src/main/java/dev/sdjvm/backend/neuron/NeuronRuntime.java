package dev.sdjvm.backend.neuron;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLong;
import com.sun.jna.Structure;
import com.sun.jna.ptr.IntByReference;
import dev.sdjvm.BackendException;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The AWS Neuron Runtime ({@code libnrt.so}) bound with JNA: version and NeuronCore counts, and (only for
 * runtime-only use) {@code nrt_init}/{@code nrt_close}. The C declarations are in {@code include/nrt_binding.h}.
 *
 * <h2>Who owns the runtime</h2>
 * When the models run through libtorchneuron (torch-neuronx), libtorchneuron initialises the runtime itself
 * (lazily, on the first Neuron op) and reserves the visible NeuronCores. In that mode this class only calls
 * {@link #version()}, {@link #totalCoreCount()} and {@link #visibleCoreCount()}, which the Neuron documentation lists
 * as callable before/without {@code nrt_init}. {@link #initStandalone()} is refused once libtorchneuron has been
 * loaded into the process ({@link TorchNeuronLoader#isLoaded()}): two owners would fight over the cores.
 *
 * <h2>Where libnrt.so is looked for</h2>
 * In this order: system property {@value #PATH_PROPERTY}, environment variable {@value #PATH_ENV} (each a file or
 * a directory), every directory of {@code LD_LIBRARY_PATH}, then {@value #DEFAULT_DIR} (where the
 * {@code aws-neuronx-runtime-lib} package installs it). In each directory {@code libnrt.so} then {@code libnrt.so.1}.
 */
public final class NeuronRuntime {
    private static final Logger LOG = LoggerFactory.getLogger(NeuronRuntime.class);

    /** System property naming libnrt.so or its directory. */
    public static final String PATH_PROPERTY = "sdjvm.neuron.nrt.path";
    /** Environment variable naming libnrt.so or its directory. */
    public static final String PATH_ENV = "SDJVM_NEURON_NRT_PATH";
    /** Where the Neuron runtime package installs libnrt.so. */
    public static final String DEFAULT_DIR = "/opt/aws/neuron/lib";

    private static final String[] FILE_NAMES = {"libnrt.so", "libnrt.so.1"};
    private static final AtomicBoolean STANDALONE_INIT = new AtomicBoolean();

    /** The bound functions (JNA direct mapping of the declarations in include/nrt_binding.h). */
    interface Nrt extends Library {
        int nrt_get_version(NrtVersionStruct ver, NativeLong size);

        int nrt_get_total_nc_count(IntByReference count);

        int nrt_get_visible_nc_count(IntByReference count);

        int nrt_init(int framework, String fwVersion, String falVersion);

        void nrt_close();
    }

    /** {@code nrt_version_t}. */
    @Structure.FieldOrder({"rt_major", "rt_minor", "rt_patch", "rt_maintenance", "rt_detail", "git_hash"})
    public static class NrtVersionStruct extends Structure {
        public long rt_major;
        public long rt_minor;
        public long rt_patch;
        public long rt_maintenance;
        public byte[] rt_detail = new byte[128];
        public byte[] git_hash = new byte[64];
    }

    /** {@code nrt_version_t} as a value. */
    public record Version(long major, long minor, long patch, long maintenance, String detail, String gitHash) {
        @Override
        public String toString() {
            return major + "." + minor + "." + patch + "." + maintenance
                    + (detail.isEmpty() ? "" : " (" + detail + ")");
        }
    }

    /** {@code NRT_FRAMEWORK_TYPE_NO_FW}: framework-less execution. */
    static final int NRT_FRAMEWORK_TYPE_NO_FW = 1;

    private final Path library;
    private final Nrt nrt;

    private NeuronRuntime(Path library, Nrt nrt) {
        this.library = library;
        this.nrt = nrt;
    }

    /**
     * Locates libnrt.so with the process's properties and environment and binds it.
     *
     * @throws BackendException when no candidate exists (the message lists where it looked) or dlopen fails
     */
    public static NeuronRuntime open() {
        List<Path> candidates = candidates(System.getProperty(PATH_PROPERTY), System.getenv());
        for (Path p : candidates) {
            if (Files.isRegularFile(p)) {
                return open(p);
            }
        }
        throw new BackendException("libnrt.so (Neuron runtime) not found; looked in " + candidates
                + ". Install aws-neuronx-runtime-lib (Neuron DLAMI has it) or set -D" + PATH_PROPERTY + "=/path/to/libnrt.so"
                + " or " + PATH_ENV);
    }

    /** Binds the libnrt.so at {@code file}. */
    public static NeuronRuntime open(Path file) {
        try {
            Nrt nrt = Native.load(file.toAbsolutePath().toString(), Nrt.class);
            LOG.debug("bound Neuron runtime {}", file);
            return new NeuronRuntime(file, nrt);
        } catch (UnsatisfiedLinkError e) {
            throw new BackendException("cannot load Neuron runtime library " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * The ordered candidate files for libnrt.so, given the value of {@value #PATH_PROPERTY} (may be null) and an
     * environment. Pure function of its inputs (no file system access), for tests and diagnostics.
     */
    public static List<Path> candidates(String property, Map<String, String> env) {
        Set<Path> out = new LinkedHashSet<>();
        addFileOrDir(out, property);
        addFileOrDir(out, env.get(PATH_ENV));
        String ld = env.get("LD_LIBRARY_PATH");
        if (ld != null) {
            for (String dir : ld.split(File.pathSeparator)) {
                if (!dir.isBlank()) {
                    addDir(out, Path.of(dir));
                }
            }
        }
        addDir(out, Path.of(DEFAULT_DIR));
        return new ArrayList<>(out);
    }

    private static void addFileOrDir(Set<Path> out, String value) {
        if (value == null || value.isBlank()) {
            return;
        }
        Path p = Path.of(value.trim());
        if (Files.isDirectory(p)) {
            addDir(out, p);
        } else {
            out.add(p);
        }
    }

    private static void addDir(Set<Path> out, Path dir) {
        for (String name : FILE_NAMES) {
            out.add(dir.resolve(name));
        }
    }

    /** The bound library file. */
    public Path library() {
        return library;
    }

    /** {@code nrt_get_version}. Safe without {@code nrt_init}. */
    public Version version() {
        NrtVersionStruct v = new NrtVersionStruct();
        NrtStatus.check(nrt.nrt_get_version(v, new NativeLong(v.size())), "nrt_get_version");
        v.read();
        return new Version(v.rt_major, v.rt_minor, v.rt_patch, v.rt_maintenance, cString(v.rt_detail),
                cString(v.git_hash));
    }

    /** {@code nrt_get_total_nc_count}: NeuronCores on the instance (ignores the visibility variables). */
    public int totalCoreCount() {
        IntByReference n = new IntByReference();
        NrtStatus.check(nrt.nrt_get_total_nc_count(n), "nrt_get_total_nc_count");
        return n.getValue();
    }

    /** {@code nrt_get_visible_nc_count}: NeuronCores visible to this process. */
    public int visibleCoreCount() {
        IntByReference n = new IntByReference();
        NrtStatus.check(nrt.nrt_get_visible_nc_count(n), "nrt_get_visible_nc_count");
        return n.getValue();
    }

    /**
     * {@code nrt_init(NRT_FRAMEWORK_TYPE_NO_FW, ...)} for runtime-only use (no torch-neuronx in the process).
     *
     * @throws BackendException if libtorchneuron is loaded (it owns the runtime), or with the runtime's status
     */
    public synchronized void initStandalone() {
        if (TorchNeuronLoader.isLoaded()) {
            throw new BackendException("nrt_init refused: libtorchneuron is loaded and owns the Neuron runtime "
                    + "(it calls nrt_init itself); use only version()/totalCoreCount()/visibleCoreCount()");
        }
        if (STANDALONE_INIT.get()) {
            return;
        }
        NrtStatus.check(nrt.nrt_init(NRT_FRAMEWORK_TYPE_NO_FW, "", ""), "nrt_init");
        STANDALONE_INIT.set(true);
    }

    /** {@code nrt_close}, only after our own {@link #initStandalone()}; otherwise does nothing. */
    public synchronized void closeStandalone() {
        if (STANDALONE_INIT.compareAndSet(true, false)) {
            nrt.nrt_close();
        }
    }

    private static String cString(byte[] b) {
        int n = 0;
        while (n < b.length && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }
}
