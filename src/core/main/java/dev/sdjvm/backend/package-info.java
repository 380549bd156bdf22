/** Backends that run the TorchScript artifacts: {@code torch} (libtorch via JavaCPP) and {@code neuron} (AWS Inferentia2). */
package dev.sdjvm.backend;
