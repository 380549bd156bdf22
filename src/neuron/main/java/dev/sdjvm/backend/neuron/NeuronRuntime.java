package dev.sdjvm.backend.neuron;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;
import dev.sdjvm.errors.BackendException;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The AWS Neuron Runtime ({@code libnrt.so}) bound with JNA; the C declarations are in {@code include/nrt_binding.h}.
 * Every failing call becomes a {@link BackendException} whose {@link BackendException#status()} is the
 * {@code NRT_STATUS} name ({@link NrtStatus}).
 *
 * <h2>Who owns the runtime</h2>
 * On the NEFF path the JVM owns it: {@link #attach()} calls {@code nrt_init(NRT_FRAMEWORK_TYPE_NO_FW, "", "")} for the
 * first user in the process and {@link #detach()} calls {@code nrt_close} after the last one (all models unloaded).
 * {@link #version()}, {@link #totalCoreCount()} and {@link #visibleCoreCount()} may also be called before
 * {@code nrt_init}, as the Neuron documentation allows.
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

    /** The process's runtime owner: which library was initialised, and by how many users. */
    private static final Object OWNER = new Object();
    private static Path initialised;
    private static int users;

    /** The bound functions (declarations in include/nrt_binding.h). size_t is mapped to long (64-bit targets). */
    interface Nrt extends Library {
        int nrt_get_version(NrtVersionStruct ver, long size);

        int nrt_get_total_nc_count(IntByReference count);

        int nrt_get_visible_nc_count(IntByReference count);

        int nrt_init(int framework, String fwVersion, String falVersion);

        void nrt_close();

        int nrt_load(Pointer neff, long size, int vnc, int vncCount, PointerByReference model);

        int nrt_unload(Pointer model);

        int nrt_allocate_tensor_set(PointerByReference set);

        void nrt_destroy_tensor_set(PointerByReference set);

        int nrt_add_tensor_to_tensor_set(Pointer set, String name, Pointer tensor);

        int nrt_execute(Pointer model, Pointer inputs, Pointer outputs);

        int nrt_tensor_allocate(int placement, int vnc, long size, String name, PointerByReference tensor);

        void nrt_tensor_free(PointerByReference tensor);

        int nrt_tensor_read(Pointer tensor, Pointer buf, long offset, long size);

        int nrt_tensor_write(Pointer tensor, Pointer buf, long offset, long size);

        int nrt_get_model_tensor_info(Pointer model, PointerByReference info);

        int nrt_free_model_tensor_info(Pointer info);
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
        /**
         * True for runtime library releases 2.30 and later (Neuron SDK 2.28 shipped libnrt 2.30.50.0): {@code nrt_load}
         * takes {@code vnc_count} -1 (deprecated) and {@code nrt_dtype_t} has its new numbering.
         */
        public boolean sdk228OrLater() {
            return major > 2 || major == 2 && minor >= 30;
        }

        @Override
        public String toString() {
            return major + "." + minor + "." + patch + "." + maintenance
                    + (detail.isEmpty() ? "" : " (" + detail + ")");
        }
    }

    /** {@code NRT_FRAMEWORK_TYPE_NO_FW}: framework-less execution. */
    static final int NRT_FRAMEWORK_TYPE_NO_FW = 1;
    /** {@code NRT_TENSOR_PLACEMENT_DEVICE}. */
    static final int NRT_TENSOR_PLACEMENT_DEVICE = 0;
    /** {@code nrt_tensor_info_t}: name[256], usage (int) at 256, size_t size at 264, dtype at 272, shape* at 280, ndim at 288. */
    static final int TENSOR_INFO_SIZE = 296;

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
        Path found = locate(candidates);
        if (found == null) {
            throw new BackendException(notFound(candidates));
        }
        return open(found);
    }

    /** The first existing candidate, or null. */
    static Path locate(List<Path> candidates) {
        return candidates.stream().filter(Files::isRegularFile).findFirst().orElse(null);
    }

    /** The message for a missing libnrt.so. */
    static String notFound(List<Path> candidates) {
        return "libnrt.so (Neuron runtime) not found; looked in " + candidates
                + ". Install aws-neuronx-runtime-lib (the Neuron DLAMI has it) or set -D" + PATH_PROPERTY
                + "=/path/to/libnrt.so or " + PATH_ENV;
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
     * environment. Pure function of its inputs (no file system access apart from telling files from directories).
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

    Nrt api() {
        return nrt;
    }

    /** {@code nrt_get_version}. Safe without {@code nrt_init}. */
    public Version version() {
        NrtVersionStruct s = new NrtVersionStruct();
        NrtStatus.check(nrt.nrt_get_version(s, s.size()), "nrt_get_version");
        s.read();
        return new Version(s.rt_major, s.rt_minor, s.rt_patch, s.rt_maintenance, cString(s.rt_detail), cString(s.git_hash));
    }

    /**
     * The version, or null when {@code nrt_get_version} fails (the NEFF path then assumes the current API: it needs
     * the version only to choose {@code nrt_load}'s {@code vnc_count} convention and tries the other one anyway).
     */
    public Version versionOrNull() {
        try {
            return version();
        } catch (BackendException e) {
            LOG.warn("{}; assuming a runtime of Neuron SDK 2.28 or later", e.getMessage());
            return null;
        }
    }

    /** {@code nrt_get_total_nc_count}: NeuronCores on the instance (ignores the visibility variables). */
    public int totalCoreCount() {
        IntByReference n = new IntByReference();
        NrtStatus.check(nrt.nrt_get_total_nc_count(n), "nrt_get_total_nc_count");
        return n.getValue();
    }

    /** {@link #totalCoreCount()} for messages: {@code ?} when the runtime cannot say. */
    String totalCoreCountOrUnknown() {
        try {
            return Integer.toString(totalCoreCount());
        } catch (BackendException | UnsatisfiedLinkError e) {
            return "?";
        }
    }

    /** {@code nrt_get_visible_nc_count}: NeuronCores visible to this process ({@code NEURON_RT_VISIBLE_CORES}). */
    public int visibleCoreCount() {
        IntByReference n = new IntByReference();
        NrtStatus.check(nrt.nrt_get_visible_nc_count(n), "nrt_get_visible_nc_count");
        return n.getValue();
    }

    /**
     * Becomes a user of the runtime: {@code nrt_init(NRT_FRAMEWORK_TYPE_NO_FW, "", "")} for the first user in the
     * process. Pair with {@link #detach()}.
     *
     * @throws BackendException if another libnrt.so was initialised in this process, or with the runtime's status
     */
    public void attach() {
        synchronized (OWNER) {
            if (users > 0) {
                if (!initialised.equals(library)) {
                    throw new BackendException("the Neuron runtime " + initialised + " is already initialised in this process; "
                            + "cannot also initialise " + library);
                }
                users++;
                return;
            }
            int status = nrt.nrt_init(NRT_FRAMEWORK_TYPE_NO_FW, "", "");
            if (status != 0) {
                // the commonest first-run failure: a runtime library newer than the host's driver (aws-neuronx-dkms),
                // or no /dev/neuron* passed to the container
                NrtStatus.check(status, "nrt_init (Neuron runtime " + versionOrNull() + ", " + library
                        + "). Check that /dev/neuron* exists (in a container: --device=/dev/neuron0), that the driver "
                        + "(aws-neuronx-dkms, `modinfo neuron`) is as new as this runtime requires (the runtime release "
                        + "notes name the oldest driver; pin aws-neuronx-runtime-lib to the SDK release of the host, as "
                        + "examples/docker/Dockerfile does), and the runtime's own log (NEURON_RT_LOG_LEVEL=INFO)");
            }
            initialised = library;
            users = 1;
            LOG.info("Neuron runtime {} initialised ({}; {} of {} NeuronCores visible)", versionOrNull(), library,
                    visibleCoreCount(), totalCoreCountOrUnknown());
        }
    }

    /** Stops being a user: {@code nrt_close} after the last one. Call after every model of the user is unloaded. */
    public void detach() {
        synchronized (OWNER) {
            if (users == 0 || !library.equals(initialised)) {
                return;
            }
            if (--users == 0) {
                nrt.nrt_close();
                initialised = null;
                LOG.info("Neuron runtime closed");
            }
        }
    }

    /** Users of the runtime in this process (0 = not initialised by us). */
    public static int users() {
        synchronized (OWNER) {
            return users;
        }
    }

    static String cString(byte[] b) {
        int n = 0;
        while (n < b.length && b[n] != 0) {
            n++;
        }
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }
}
