/**
 * AWS Inferentia2 / Trainium (Neuron) support: the path that runs each artifact's compiled NEFF through the Neuron
 * runtime's C API, with no libtorch in the process ({@link dev.sdjvm.backend.neuron.NeffBackend}): finding the NEFFs
 * ({@link dev.sdjvm.backend.neuron.NeffLocator}), the runtime bound with JNA
 * ({@link dev.sdjvm.backend.neuron.NeuronRuntime}, declarations in {@code include/nrt_binding.h}), device discovery
 * without the runtime ({@link dev.sdjvm.backend.neuron.NeuronDevices}), and telling Neuron-compiled TorchScript
 * apart ({@code dev.sdjvm.model.NeuronArchive}). See docs/neuron.md.
 */
package dev.sdjvm.backend.neuron;
