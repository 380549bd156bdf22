package dev.sdjvm.backend;

import dev.sdjvm.model.ModelDirectory;

/**
 * Where a model's artifacts run, decided once per {@code StableDiffusion} instance: libtorch on the CPU, or
 * the Neuron runtime running each artifact's NEFF. Loads the artifacts of a pipeline onto its devices and owns what is
 * shared between pipelines (on Neuron the process-wide runtime). {@link #close} after the pipelines are closed.
 */
public interface ArtifactBackend extends AutoCloseable {
    /** One line for logs and {@code sd info}, e.g. {@code libtorch 2.10.0 (CPU, 2 threads)}. */
    String describe();

    /** Devices artifacts can be placed on: the visible NeuronCores on Neuron, 1 on the CPU. */
    int devices();

    /**
     * Loads the four artifacts of pipeline {@code pipeline} (0-based; on Neuron each pipeline has its own group of
     * cores), with {@code unetReplicas} UNet copies, and checks that they fit together and fit the model directory.
     *
     * @param warmup run each artifact once (CPU: also finds dtype and batch of artifacts without a manifest)
     * @throws dev.sdjvm.errors.ModelLoadException naming the file when an artifact is unusable
     * @throws dev.sdjvm.errors.BackendException   when the backend fails
     */
    PipelineArtifacts loadPipeline(ModelDirectory dir, int pipeline, int unetReplicas, boolean warmup);

    /** Releases what the backend holds for the process (idempotent). */
    @Override
    void close();
}
