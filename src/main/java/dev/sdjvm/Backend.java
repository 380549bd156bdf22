package dev.sdjvm;

/** Where the artifacts run. */
public enum Backend {
    /** Neuron when NeuronCores are present and the artifacts are Neuron-compiled, libtorch CPU otherwise. */
    AUTO,
    /** libtorch on the CPU. */
    CPU,
    /** libtorch + libtorchneuron on AWS Inferentia2 NeuronCores (needs /dev/neuron* and the Neuron runtime). */
    NEURON
}
