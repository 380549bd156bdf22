package dev.sdjvm;

/** Where the artifacts run. */
public enum Backend {
    /**
     * Chosen from the artifacts: NEFFs for every artifact run on the Neuron runtime ({@link #NEURON}); CPU-traced
     * TorchScript runs on {@link #CPU}. Neuron-compiled TorchScript without a NEFF to be found is an error naming
     * where the NEFFs were looked for.
     */
    AUTO,
    /** libtorch on the CPU. */
    CPU,
    /**
     * AWS Inferentia2/Trainium: each artifact's compiled NEFF runs through the Neuron runtime's C API (libnrt), with no
     * libtorch in the process. Needs libnrt (aws-neuronx-runtime-lib) and NeuronCores.
     */
    NEURON
}
