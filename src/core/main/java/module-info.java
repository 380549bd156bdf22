/**
 * Stable Diffusion 2.1 from the JVM, the core (artifact {@code dev.sdjvm:stable-diffusion-jvm-core}, no native
 * dependency): the facade {@link dev.sdjvm.StableDiffusion}, and the pure-Java parts users may call on their own: the
 * exceptions every part throws ({@link dev.sdjvm.errors}), the CLIP tokenizer
 * ({@link dev.sdjvm.tokenizer}), diffusers' schedulers ({@link dev.sdjvm.scheduler}), bf16 and torch's CPU random
 * generator ({@link dev.sdjvm.tensor}) and 8-bit RGB images ({@link dev.sdjvm.image}).
 *
 * <p>The backends are separate modules found as services of {@link dev.sdjvm.backend.BackendProvider}:
 * {@code dev.sdjvm.backend.torch} (libtorch on the CPU, artifact {@code stable-diffusion-jvm-cpu}) and
 * {@code dev.sdjvm.backend.neuron} (libnrt, artifact {@code stable-diffusion-jvm-neuron}); on the module path they are
 * resolved by service binding. The packages of the pipeline's internals ({@code dev.sdjvm.backend},
 * {@code dev.sdjvm.pipeline}, {@code dev.sdjvm.model}) are not exported to users: they change as backends are added
 * ({@code backend} and {@code model} are exported to the backend modules only). docs/api.md lists what is public and
 * why.
 *
 * <p>On the module path JavaCPP's native jars (e.g. {@code org.bytedeco.pytorch.linux.x86_64}) are modules nobody
 * requires; resolve them with {@code --add-modules ALL-MODULE-PATH} (JavaCPP's advice) or by name.
 */
module dev.sdjvm {
    requires transitive java.desktop;                    // BufferedImage in the facade's API
    requires com.fasterxml.jackson.databind;             // reads the model's JSON; never in an exported signature
    requires java.management;                            // RequestLimits: the memory available (OperatingSystemMXBean)
    requires jdk.management;
    requires org.slf4j;

    exports dev.sdjvm;
    exports dev.sdjvm.errors;
    exports dev.sdjvm.tokenizer;
    exports dev.sdjvm.scheduler;
    exports dev.sdjvm.tensor;
    exports dev.sdjvm.image;

    // the service interface and the model directory, for the backend modules only
    exports dev.sdjvm.backend to dev.sdjvm.backend.torch, dev.sdjvm.backend.neuron;
    exports dev.sdjvm.model to dev.sdjvm.backend.torch, dev.sdjvm.backend.neuron;

    uses dev.sdjvm.backend.BackendProvider;
}
