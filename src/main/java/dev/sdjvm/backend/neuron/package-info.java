/**
 * AWS Inferentia2 / Trainium (Neuron) support, library side: device discovery without the runtime
 * ({@link dev.sdjvm.backend.neuron.NeuronDevices}), the Neuron runtime's C API bound with JNA
 * ({@link dev.sdjvm.backend.neuron.NeuronRuntime}, declarations in {@code include/nrt_binding.h}), locating, checking
 * and loading torch-neuronx's libtorchneuron.so next to org.bytedeco:pytorch's libtorch
 * ({@link dev.sdjvm.backend.neuron.TorchNeuronLoader}, with a pure-Java {@link dev.sdjvm.backend.neuron.ElfFile}
 * reader so that an incompatible library is refused before it can abort the JVM), and the backend choice the
 * pipeline calls ({@link dev.sdjvm.backend.neuron.NeuronPlatform}). See docs/neuron.md.
 */
package dev.sdjvm.backend.neuron;
