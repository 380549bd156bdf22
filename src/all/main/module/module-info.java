/**
 * stable-diffusion-jvm with everything (artifact {@code dev.sdjvm:stable-diffusion-jvm}): the core
 * ({@code dev.sdjvm}), the CPU backend ({@code dev.sdjvm.backend.torch}), the Neuron backend
 * ({@code dev.sdjvm.backend.neuron}), and the small embedded model {@code StableDiffusion.loadDefault()} runs (its
 * files under {@code dev/sdjvm/default-model/}, found through the class loader). No package of its own.
 */
module dev.sdjvm.all {
    requires transitive dev.sdjvm;
    requires dev.sdjvm.backend.torch;
    requires dev.sdjvm.backend.neuron;
}
