package dev.sdjvm;

import java.nio.file.Path;

/**
 * How the CPU backend tunes itself and the process it runs in. Graph rewrites are switched on and off by
 * {@link LoadOptions#optimize()}; these options say how they are chosen and which process-wide settings the library
 * may make. The library's {@link #defaults()} make no process-wide change but the OpenMP wait policy (see
 * {@link #passiveWait}); the CLI and the server use {@link #application()}, which adds the settings measured to help a
 * process that does nothing but generate (see {@code docs/performance.md}).
 *
 * <p>Immutable; made by {@link #defaults()} or {@link #application()} and changed by the {@code with*} methods (there is
 * no public constructor, so options can be added without breaking callers). Equal when all options are.
 */
public final class CpuOptions {
    private final boolean measure;
    private final Path tuningCache;
    private final boolean hugePages;
    private final boolean singleThreadedBlas;
    private final boolean trimMemory;
    private final boolean passiveWait;

    private CpuOptions(boolean measure, Path tuningCache, boolean hugePages, boolean singleThreadedBlas,
                       boolean trimMemory, boolean passiveWait) {
        this.measure = measure;
        this.tuningCache = tuningCache;
        this.hugePages = hugePages;
        this.singleThreadedBlas = singleThreadedBlas;
        this.trimMemory = trimMemory;
        this.passiveWait = passiveWait;
    }

    /** System property naming the tuning cache directory for {@link #defaultTuningCache()}; {@code none} disables it. */
    public static final String CACHE_PROPERTY = "sdjvm.cpu.tuningCache";

    /** {@return the library's defaults: measured rewrites, cached in {@link #defaultTuningCache()}, passive OpenMP waits, no other process-wide setting} */
    public static CpuOptions defaults() {
        return new CpuOptions(true, defaultTuningCache(), false, false, false, true);
    }

    /**
     * {@return the settings for a process that only generates images (the CLI, the server): {@link #defaults()} plus
     * huge pages, one OpenBLAS thread and {@code malloc_trim}}
     */
    public static CpuOptions application() {
        return new CpuOptions(true, defaultTuningCache(), true, true, true, true);
    }

    /**
     * The default tuning cache: the {@value #CACHE_PROPERTY} system property if set ({@code none}: no cache), else
     * {@code $XDG_CACHE_HOME/sdjvm}, else {@code ~/.cache/sdjvm}.
     *
     * @return the directory, or null for no cache
     */
    public static Path defaultTuningCache() {
        String p = System.getProperty(CACHE_PROPERTY);
        if (p != null) {
            return p.isBlank() || p.equals("none") ? null : Path.of(p);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "sdjvm");
        }
        return Path.of(System.getProperty("user.home"), ".cache", "sdjvm");
    }

    /**
     * {@return these options with measured (true) or unconditional (false) rewrites}
     *
     * @param m measure each rewrite
     */
    public CpuOptions withMeasure(boolean m) {
        return new CpuOptions(m, tuningCache, hugePages, singleThreadedBlas, trimMemory, passiveWait);
    }

    /**
     * {@return these options with another tuning cache}
     *
     * @param dir the directory, or null to measure at every load
     */
    public CpuOptions withTuningCache(Path dir) {
        return new CpuOptions(measure, dir, hugePages, singleThreadedBlas, trimMemory, passiveWait);
    }

    /**
     * {@return these options with the OpenMP wait policy set}
     *
     * @param passive true: waiting threads sleep ({@code OMP_WAIT_POLICY=PASSIVE}); false: libgomp's default
     */
    public CpuOptions withPassiveWait(boolean passive) {
        return new CpuOptions(measure, tuningCache, hugePages, singleThreadedBlas, trimMemory, passive);
    }

    /**
     * {@return true (default): on first load of an artifact on this CPU, each rewrite is timed against the graph
     * without it, on the artifact's real input shapes, and kept only if it is faster by a clear margin; the decision
     * is cached. false: every rewrite that applies to the artifact's dtype is made (for comparison)}
     */
    public boolean measure() {
        return measure;
    }

    /**
     * {@return the directory where the measured decisions are kept (one small JSON file), or null to measure at every
     * load. Default: {@link #defaultTuningCache()}}
     */
    public Path tuningCache() {
        return tuningCache;
    }

    /**
     * {@return ask libtorch's allocator for transparent huge pages on large buffers ({@code THP_MEM_ALLOC_ENABLE=1}
     * set in the process environment before libtorch loads; ignored when the environment already sets it, or once
     * libtorch is loaded). Linux only}
     */
    public boolean hugePages() {
        return hugePages;
    }

    /**
     * {@return set OpenBLAS (shared by everything in the process that uses it) to one thread, so that it does not
     * compete with libtorch's OpenMP threads for the cores}
     */
    public boolean singleThreadedBlas() {
        return singleThreadedBlas;
    }

    /**
     * {@return give glibc's freed memory back to the system ({@code malloc_trim}) after loading and before each VAE
     * decode, which lowers the peak resident set of a 512x512 decode}
     */
    public boolean trimMemory() {
        return trimMemory;
    }

    /**
     * {@return libtorch's OpenMP threads sleep instead of spinning when they wait ({@code OMP_WAIT_POLICY=PASSIVE} set
     * in the process environment before libtorch loads, unless it is set already): the default, because spinning
     * threads make a step several times slower as soon as another process uses the cores. It affects only OpenMP code
     * of the process (libtorch's bundled libgomp)}
     */
    public boolean passiveWait() {
        return passiveWait;
    }

    /**
     * {@return these options with transparent huge pages asked for (or not)}
     *
     * @param h ask libtorch's allocator for huge pages ({@code THP_MEM_ALLOC_ENABLE=1})
     */
    public CpuOptions withHugePages(boolean h) {
        return new CpuOptions(measure, tuningCache, h, singleThreadedBlas, trimMemory, passiveWait);
    }

    /**
     * {@return these options with OpenBLAS set to one thread (or left alone)}
     *
     * @param single one OpenBLAS thread
     */
    public CpuOptions withSingleThreadedBlas(boolean single) {
        return new CpuOptions(measure, tuningCache, hugePages, single, trimMemory, passiveWait);
    }

    /**
     * {@return these options with {@code malloc_trim} after loading and before each VAE decode (or not)}
     *
     * @param trim give freed memory back to the system
     */
    public CpuOptions withTrimMemory(boolean trim) {
        return new CpuOptions(measure, tuningCache, hugePages, singleThreadedBlas, trim, passiveWait);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CpuOptions c && c.measure == measure && java.util.Objects.equals(c.tuningCache, tuningCache)
                && c.hugePages == hugePages && c.singleThreadedBlas == singleThreadedBlas && c.trimMemory == trimMemory
                && c.passiveWait == passiveWait;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(measure, tuningCache, hugePages, singleThreadedBlas, trimMemory, passiveWait);
    }

    @Override
    public String toString() {
        return "CpuOptions[measure=" + measure + ", tuningCache=" + tuningCache + ", hugePages=" + hugePages
                + ", singleThreadedBlas=" + singleThreadedBlas + ", trimMemory=" + trimMemory + ", passiveWait="
                + passiveWait + "]";
    }
}
