/**
 * Stable Diffusion 2.1 from the JVM: the facade {@link dev.sdjvm.StableDiffusion} over libtorch (JavaCPP) or AWS
 * Inferentia2, and the pure-Java parts users may call on their own: the CLIP tokenizer
 * ({@link dev.sdjvm.tokenizer}), diffusers' schedulers ({@link dev.sdjvm.scheduler}), bf16 and torch's CPU random
 * generator ({@link dev.sdjvm.tensor}) and 8-bit RGB images ({@link dev.sdjvm.image}).
 *
 * <p>The packages that hold native handles or the pipeline's internals ({@code dev.sdjvm.backend.*},
 * {@code dev.sdjvm.pipeline}, {@code dev.sdjvm.model}) are not exported: they change as backends are added.
 * docs/api.md lists what is public and why.
 *
 * <p>On the module path JavaCPP's native jars (e.g. {@code org.bytedeco.pytorch.linux.x86_64}) are modules nobody
 * requires; resolve them with {@code --add-modules ALL-MODULE-PATH} (JavaCPP's advice) or by name.
 */
module dev.sdjvm {
    requires transitive java.desktop;                    // BufferedImage in the facade's API
    requires transitive com.fasterxml.jackson.databind;  // Schedulers takes a config as a Jackson tree too
    requires java.management;                            // RequestLimits: the memory available (OperatingSystemMXBean)
    requires jdk.management;
    requires org.slf4j;
    requires org.bytedeco.javacpp;
    requires org.bytedeco.pytorch;
    requires com.sun.jna;                                // automatic module (Automatic-Module-Name of jna.jar)

    exports dev.sdjvm;
    exports dev.sdjvm.errors;
    exports dev.sdjvm.tokenizer;
    exports dev.sdjvm.scheduler;
    exports dev.sdjvm.tensor;
    exports dev.sdjvm.image;

    // JNA builds proxies of the libnrt binding's interfaces and reads its Structure fields reflectively
    opens dev.sdjvm.backend.neuron to com.sun.jna;
}
