/**
 * The Neuron backend of stable-diffusion-jvm (artifact {@code dev.sdjvm:stable-diffusion-jvm-neuron}): runs each
 * artifact's NEFF on AWS Inferentia2 / Trainium through the Neuron runtime's C API (libnrt, bound with JNA), with no
 * libtorch. Exports nothing: the core finds it as a {@link dev.sdjvm.backend.BackendProvider} service.
 */
module dev.sdjvm.backend.neuron {
    requires dev.sdjvm;
    requires org.slf4j;
    requires com.sun.jna;                                // automatic module (Automatic-Module-Name of jna.jar)

    // JNA builds proxies of the libnrt binding's interfaces and reads its Structure fields reflectively
    opens dev.sdjvm.backend.neuron to com.sun.jna;

    provides dev.sdjvm.backend.BackendProvider with dev.sdjvm.backend.neuron.NeuronBackendProvider;
}
