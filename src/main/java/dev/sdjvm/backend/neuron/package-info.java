/**
 * AWS Inferentia2 / Trainium (Neuron) support, library side: device discovery without the runtime
 * ({@link dev.sdjvm.backend.neuron.NeuronDevices}), the Neuron runtime's C API bound with JNA
 * ({@link dev.sdjvm.backend.neuron.NeuronRuntime}, declarations in {@code include/nrt_binding.h}) and the default
 * Neuron path that runs each artifact's NEFF through it ({@link dev.sdjvm.backend.neuron.NeffBackend}). For the
 * libtorchneuron fallback: locating ({@code TorchNeuronLocator}), checking ({@code TorchNeuronPackaging} for the
 * torch release it targets, {@code TorchNeuronSymbols} for its ELF imports, with a pure-Java
 * {@link dev.sdjvm.backend.neuron.ElfFile} reader so that an incompatible library is refused before it can abort the
 * JVM) and loading ({@link dev.sdjvm.backend.neuron.TorchNeuronLoader}) torch-neuronx's libtorchneuron.so next to
 * org.bytedeco:pytorch's libtorch, and the fallback's availability check
 * ({@link dev.sdjvm.backend.neuron.NeuronPlatform}). See docs/neuron.md.
 */
package dev.sdjvm.backend.neuron;
