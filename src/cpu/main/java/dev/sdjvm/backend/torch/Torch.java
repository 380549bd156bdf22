package dev.sdjvm.backend.torch;

import dev.sdjvm.errors.BackendException;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.pytorch.global.torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads libtorch (bytedeco {@code org.bytedeco:pytorch}) once per JVM.
 *
 * <p>With a system libtorch on the library path (Debian's python3-torch brings one), a cold JavaCPP cache can make the
 * JVM load the wrong {@code libtorch_cpu.so} and crash. Caching the bundled library explicitly before
 * {@link Loader#load} avoids that (measured on Debian 12 with python3-torch 1.13 installed).
 */
public final class Torch {
    private static final Logger LOG = LoggerFactory.getLogger(Torch.class);
    private static volatile boolean loaded;
    private static volatile boolean hugePages;
    private static volatile boolean passiveWait = true;
    /** {@code -Dsdjvm.torch.nnpack=true} leaves libtorch's NNPACK convolutions enabled (off by default: {@link #load}). */
    public static final String NNPACK_PROPERTY = "sdjvm.torch.nnpack";

    private Torch() {
    }

    /**
     * The process settings libtorch reads once, at its start: applied by the first {@link #load}, ignored (with a log
     * line) once libtorch is loaded.
     *
     * @param thp     {@code THP_MEM_ALLOC_ENABLE=1}: transparent huge pages for libtorch's large buffers
     * @param passive {@code OMP_WAIT_POLICY=PASSIVE}: waiting OpenMP threads sleep instead of spinning
     */
    public static void configure(boolean thp, boolean passive) {
        synchronized (Torch.class) {
            if (loaded) {
                if (thp != hugePages || passive != passiveWait) {
                    LOG.info("libtorch is already loaded with huge pages {} and passive OpenMP waits {}: the requested "
                            + "{} / {} apply only to a new process", hugePages, passiveWait, thp, passive);
                }
                return;
            }
            hugePages = thp;
            passiveWait = passive;
        }
    }

    /** Loads libtorch if needed; idempotent and thread-safe. */
    public static void load() {
        if (loaded) {
            return;
        }
        synchronized (Torch.class) {
            if (loaded) {
                return;
            }
            long t0 = System.nanoTime();
            TorchOptimizer.beforeLibtorchLoads(hugePages, passiveWait);
            try {
                Loader.cacheResource(torch.class, Loader.getPlatform() + "/libtorch_cpu.so");
                Loader.load(torch.class);
            } catch (Exception | LinkageError e) {
                throw new BackendException("cannot load libtorch (org.bytedeco:pytorch " + version() + ") for "
                        + Loader.getPlatform() + ": " + e.getMessage(), e);
            }
            if (!Boolean.getBoolean(NNPACK_PROPERTY)) {
                // libtorch asks for NNPACK on every float32 convolution and, where NNPACK cannot start (many x86
                // CPUs and VMs: "Unsupported hardware"), prints a warning on stderr each time; it would only run
                // batches of 16 or more, which the pipeline's convolutions rarely are. Asked first, so no warning
                torch.globalContext().setUserEnabledNNPACK(false);
            }
            loaded = true;
            LOG.debug("libtorch {} loaded in {} ms ({} intra-op threads)", version(),
                    (System.nanoTime() - t0) / 1_000_000, torch.get_num_threads());
        }
    }

    /**
     * The bytedeco pytorch artifact version on the class path, e.g. {@code 2.10.0-1.5.13}, "unknown", or "none" when
     * org.bytedeco:pytorch is not on the class path (a NEFF-only deployment).
     */
    public static String version() {
        Package p;
        try {
            p = torch.class.getPackage();
        } catch (NoClassDefFoundError absent) {
            return "none";
        }
        String v = p == null ? null : p.getImplementationVersion();
        return v == null ? "unknown" : v;
    }

    /** Sets libtorch's intra-op thread count (process-wide). */
    public static void setNumThreads(int threads) {
        load();
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        torch.set_num_threads(threads);
    }

    /** libtorch's intra-op thread count. */
    public static int numThreads() {
        load();
        return torch.get_num_threads();
    }
}
