package dev.sdjvm.model;

import java.nio.file.Path;

/**
 * What the pipeline knows about one artifact: its file, the dtype its floating inputs must be cast to, and its batch
 * (null = any batch, as CPU-traced modules accept; an integer = the only batch it accepts, as Neuron-compiled
 * modules are static).
 *
 * @param role       the part of the model
 * @param file       the TorchScript file
 * @param inputDType dtype of the floating-point inputs; for the text encoder (int64 ids) the dtype it computes in
 * @param batch      static batch, or null for dynamic
 * @param device     where it runs: {@code cpu}, or the NeuronCore ({@code nc0}, {@code nc0,nc1} for UNet replicas)
 * @param source     where the facts come from: "manifest", "parameters", "probe", or "neff"
 * @param neff       where the artifact's NEFF was found, or null
 */
public record ArtifactSpec(ArtifactRole role, Path file, DType inputDType, Integer batch, String device, String source,
                           String neff) {
    public ArtifactSpec {
        if (batch != null && batch < 1) {
            throw new IllegalArgumentException(role + ": batch must be >= 1 or null, got " + batch);
        }
    }
}
