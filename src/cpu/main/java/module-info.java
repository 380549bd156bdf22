/**
 * The CPU backend of stable-diffusion-jvm (artifact {@code dev.sdjvm:stable-diffusion-jvm-cpu}): runs TorchScript
 * artifacts through libtorch (JavaCPP's {@code org.bytedeco.pytorch}). Exports nothing: the core finds it as a
 * {@link dev.sdjvm.backend.BackendProvider} service.
 */
module dev.sdjvm.backend.torch {
    requires dev.sdjvm;
    requires org.slf4j;
    requires org.bytedeco.javacpp;
    requires org.bytedeco.pytorch;
    requires com.sun.jna;                                // TorchOptimizer: malloc_trim through JNA
    requires com.fasterxml.jackson.databind;             // CpuTuning's cache of measured decisions

    provides dev.sdjvm.backend.BackendProvider with dev.sdjvm.backend.torch.TorchBackendProvider;
}
