package dev.sdjvm.cli;

import dev.sdjvm.LoadOptions;
import dev.sdjvm.StableDiffusion;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --model}, {@code --threads}, {@code --unet-replicas}: how a command loads its model. */
public final class ModelOptions {
    @Option(names = "--model", paramLabel = "DIR",
            description = "Model directory (AWS's sd2_512_root layout). Default: the model embedded in the library.")
    Path model;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0",
            description = "libtorch intra-op threads (0 = libtorch's default). Default: ${DEFAULT-VALUE}.")
    int threads;

    @Option(names = "--unet-replicas", paramLabel = "N", defaultValue = "1",
            description = "UNet copies; 2 runs the two halves of classifier-free guidance concurrently. Default: ${DEFAULT-VALUE}.")
    int unetReplicas;

    /** The load options with {@code maxConcurrent} generations. */
    public LoadOptions loadOptions(int maxConcurrent) {
        return LoadOptions.defaults().withThreads(threads).withUnetReplicas(unetReplicas).withMaxConcurrent(maxConcurrent);
    }

    /** Loads the model (or the embedded default). */
    public StableDiffusion load(int maxConcurrent) {
        LoadOptions o = loadOptions(maxConcurrent);
        return model == null ? StableDiffusion.loadDefault(o) : StableDiffusion.load(model, o);
    }

    /** The model directory, or null for the embedded default. */
    public Path model() {
        return model;
    }
}
