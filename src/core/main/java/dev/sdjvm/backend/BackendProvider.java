package dev.sdjvm.backend;

import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ModelDirectory;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * A backend implementation, found with {@link java.util.ServiceLoader}: the artifact
 * {@code dev.sdjvm:stable-diffusion-jvm-cpu} provides libtorch's ({@code dev.sdjvm.backend.torch}),
 * {@code dev.sdjvm:stable-diffusion-jvm-neuron} libnrt's ({@code dev.sdjvm.backend.neuron}). The core names neither
 * implementation: {@code pipeline.BackendSelection} decides which {@link Type} runs a model and asks the provider of
 * that type, or fails naming the artifact to add when it is not on the class or module path.
 */
public interface BackendProvider {
    /** The backends, each with the artifact that provides it. */
    enum Type {
        /** libtorch on the CPU (JavaCPP). */
        CPU("CPU backend", "dev.sdjvm:stable-diffusion-jvm-cpu"),
        /** Each artifact's NEFF through the Neuron runtime (libnrt via JNA). */
        NEURON("Neuron backend", "dev.sdjvm:stable-diffusion-jvm-neuron");

        private final String label;
        private final String artifact;

        Type(String label, String artifact) {
            this.label = label;
            this.artifact = artifact;
        }

        /** {@return e.g. {@code CPU backend}} */
        public String label() {
            return label;
        }

        /** {@return the Maven coordinates (groupId:artifactId) of the artifact that provides this backend} */
        public String artifact() {
            return artifact;
        }
    }

    /**
     * How to open a backend: the facade's {@code LoadOptions} and {@code CpuOptions} as the backends see them. All but
     * {@code threads} apply to the CPU backend only.
     *
     * @param threads            libtorch intra-op threads, 0 = libtorch's default
     * @param optimize           rewrite the TorchScript graphs at load
     * @param measure            keep only the rewrites measured faster on this CPU
     * @param tuningCache        where measured decisions are cached, or null
     * @param hugePages          transparent huge pages for libtorch's allocator
     * @param singleThreadedBlas OpenBLAS on one thread
     * @param trimMemory         {@code malloc_trim} after loading and before VAE runs
     * @param passiveWait        {@code OMP_WAIT_POLICY=PASSIVE}
     */
    record Options(int threads, boolean optimize, boolean measure, Path tuningCache, boolean hugePages,
                   boolean singleThreadedBlas, boolean trimMemory, boolean passiveWait) {
    }

    /** What a backend found for one artifact in a model directory (the Neuron backend: where its NEFF is). */
    interface Found {
        /** {@return where it is and how it was found, in one line} */
        String describe();

        /** {@return {@link #describe()} with the SHA-256 of what was found (may read a large file: not for loading)} */
        String describeWithHash();
    }

    /** {@return which backend this is} */
    Type type();

    /**
     * Looks at a model directory's files (nothing is loaded): per role of the directory, what this backend would run.
     * The CPU backend runs the {@code .pt} files themselves and returns an empty map; the Neuron backend returns
     * each role's NEFF, or empty where it found none.
     *
     * @param dir the model directory
     * @return per role, what was found
     * @throws dev.sdjvm.errors.ModelLoadException when a file cannot be read
     */
    Map<ArtifactRole, Optional<Found>> survey(ModelDirectory dir);

    /**
     * Opens the backend for a model directory.
     *
     * @param dir     the model directory
     * @param found   per role, what {@link #survey} found (empty for the CPU backend)
     * @param options how to open it
     * @return the backend; close it after the pipelines loaded on it
     * @throws dev.sdjvm.errors.BackendException when the backend cannot start (native library or device missing)
     */
    ArtifactBackend open(ModelDirectory dir, Map<ArtifactRole, Found> found, Options options);

    /**
     * {@return the version of the native library's Java artifact (e.g. {@code 2.10.0-1.5.13} for org.bytedeco:pytorch),
     * read without loading native code; {@code unknown} when it cannot be told}
     */
    String version();
}
