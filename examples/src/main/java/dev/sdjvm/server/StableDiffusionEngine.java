package dev.sdjvm.server;

import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.ModelInfo;
import dev.sdjvm.StableDiffusion;
import dev.sdjvm.GenerationParameters;
import dev.sdjvm.cli.InfoCommand;
import dev.sdjvm.errors.InvalidRequestException;
import java.io.IOException;
import java.io.UncheckedIOException;

/** An {@link Engine} over one shared {@link StableDiffusion} (loaded with {@code maxConcurrent} = the workers). */
public final class StableDiffusionEngine implements Engine {
    /** The VAE encoder's role name in {@link ModelInfo#artifacts()}. */
    private static final String VAE_ENCODER = "vae_encoder";
    private final StableDiffusion sd;
    private final ModelInfo modelInfo;
    private final Info info;

    public StableDiffusionEngine(StableDiffusion sd) {
        this.sd = sd;
        this.modelInfo = sd.info();
        String name = modelInfo.root().getFileName() == null ? modelInfo.root().toString()
                : modelInfo.root().getFileName().toString();
        try {
            this.info = new Info(name, InfoCommand.precision(modelInfo), modelInfo.height(), modelInfo.width(),
                    InfoCommand.weightBytes(modelInfo), modelInfo.loadNanos() / 1e9);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public GenerationResult generate(GenerationRequest request) {
        return sd.generate(request);
    }

    @Override
    public Info info() {
        return info;
    }

    /**
     * The request, the budget ({@link dev.sdjvm.LoadOptions#limits()}, the same check {@code generate} makes), an
     * image task's VAE encoder and the scheduler at the request's step count, all pure Java: a bad override, step
     * count or a start image for a model without an encoder is a 4xx before the request is queued.
     */
    @Override
    public GenerationRequest withModelDefaults(GenerationRequest request) {
        return sd.withModelDefaults(request);
    }

    @Override
    public void check(GenerationRequest request) {
        sd.options().limits().check(request, modelInfo.height(), modelInfo.width());
        if (request.initImage() != null && !modelInfo.artifacts().containsKey(VAE_ENCODER)) {
            throw new InvalidRequestException("image", "this model has no VAE encoder (compiled_models/"
                    + VAE_ENCODER + ".pt): image-to-image and inpainting need it");
        }
        GenerationParameters.scheduler(request, modelInfo.schedulerConfig(), modelInfo.defaultScheduler())
                .setTimesteps(withModelDefaults(request).steps().orElseThrow());
    }

    @Override
    public long maxImagePixels() {
        return sd.options().limits().resolve(modelInfo.height(), modelInfo.width()).maxImagePixels();
    }

    @Override
    public String schedulerClass(GenerationRequest request) {
        return GenerationParameters.schedulerClass(request, modelInfo.schedulerConfig(), modelInfo.defaultScheduler());
    }

    @Override
    public void close() {
        sd.close();
    }
}
