package dev.sdjvm;

/** Where the artifacts run. */
public enum Backend {
    /**
     * Chosen from the artifacts: NEFFs for every artifact run on the Neuron runtime ({@link #NEURON}); Neuron-compiled
     * TorchScript without a NEFF to be found falls back to {@link #TORCH_NEURON}; CPU-traced TorchScript runs on
     * {@link #CPU}.
     */
    AUTO,
    /** libtorch on the CPU. */
    CPU,
    /**
     * AWS Inferentia2/Trainium: each artifact's compiled NEFF runs through the Neuron runtime's C API (libnrt), with no
     * libtorch in the process. Needs libnrt (aws-neuronx-runtime-lib) and NeuronCores.
     */
    NEURON,
    /**
     * The fallback for Neuron-compiled TorchScript without a NEFF the JVM can find: libtorch plus torch-neuronx's
     * libtorchneuron, which must be built for exactly this libtorch's torch release (see docs/neuron.md).
     */
    TORCH_NEURON
}
