package dev.sdjvm.backend.torch;

import java.nio.file.Path;

/**
 * The CPU backend's settings (the facade's {@code LoadOptions.optimize} and {@code CpuOptions}, without depending on
 * the facade package).
 *
 * @param optimize           rewrite the graphs at all ({@link TorchOptimizer}); false runs them as traced
 * @param measure            keep only the rewrites that measured faster on this CPU ({@link RewriteTuner}); false
 *                           makes every applicable rewrite
 * @param tuningCache        where measured decisions are cached, or null
 * @param hugePages          {@code THP_MEM_ALLOC_ENABLE=1} before libtorch loads
 * @param singleThreadedBlas OpenBLAS on one thread
 * @param trimMemory         {@code malloc_trim} after loading and before VAE decodes
 * @param passiveWait        {@code OMP_WAIT_POLICY=PASSIVE} before libtorch loads
 */
public record TorchSettings(boolean optimize, boolean measure, Path tuningCache, boolean hugePages,
                            boolean singleThreadedBlas, boolean trimMemory, boolean passiveWait) {
    /** As traced, no process-wide setting but the passive wait (tests, tools). */
    public static TorchSettings asTraced() {
        return new TorchSettings(false, false, null, false, false, false, true);
    }
}
