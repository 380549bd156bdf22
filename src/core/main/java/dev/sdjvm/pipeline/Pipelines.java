package dev.sdjvm.pipeline;

import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.FamilyDetection;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.ModelFamily;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * The facade's entry to the pipelines: the one place that maps a {@link ModelFamily} to the pipeline that runs it,
 * and a request to the task. For the Stable Diffusion families (SD 1.x, SD 2.x, SD 2.x v-prediction, Turbo, SDXL) a mask
 * means inpainting ({@link InpaintPipeline}), an image without one image-to-image ({@link ImageToImagePipeline}),
 * neither text-to-image ({@link TextToImagePipeline}); an SDXL model runs the same three, as diffusers'
 * {@code StableDiffusionXL*Pipeline}s (the family's text conditioning: {@link DiffusionStages#encodeConditioning}); an
 * LCM model runs {@link LatentConsistencyPipeline} (text-to-image). A family without a pipeline here is refused at load
 * ({@link #requireSupported}).
 */
public final class Pipelines {
    private Pipelines() {
    }

    /**
     * Refuses, before anything is loaded, a model whose family has no pipeline here.
     *
     * @param model the model directory
     * @throws ModelLoadException naming what is missing or unsupported (UNKNOWN: why)
     */
    public static void requireSupported(ModelDirectory model) {
        FamilyDetection f = model.family();
        switch (f.family()) {
            case SD1, SD2, SD2_V, TURBO, LCM, SDXL -> {
            }
            case UNKNOWN -> throw new ModelLoadException(model.root(), "unsupported model: " + f.problem() + " ("
                    + f.evidence() + ")");
        }
    }

    /** {@link #tasks}: a prompt to an image. */
    public static final String TEXT_TO_IMAGE = "text-to-image";
    /** {@link #tasks}: a start image and a prompt to an image. */
    public static final String IMAGE_TO_IMAGE = "image-to-image";
    /** {@link #tasks}: a start image, a mask and a prompt to an image repainted where the mask is white. */
    public static final String INPAINTING = "inpainting";

    /**
     * {@return the tasks a model runs: text-to-image for every supported family, image-to-image and inpainting (not for
     * LCM) when it has a VAE encoder; an inpainting UNet (9 input channels) runs inpainting only; none for an
     * unsupported family}
     *
     * @param model the model directory
     */
    public static List<String> tasks(ModelDirectory model) {
        if (model.family().family() == ModelFamily.UNKNOWN) {
            return List.of();
        }
        boolean encoder = model.has(ArtifactRole.VAE_ENCODER);
        if (model.inpaintingUnet()) {
            return encoder ? List.of(INPAINTING) : List.of();
        }
        if (!encoder) {
            return List.of(TEXT_TO_IMAGE);
        }
        return model.family().family() == ModelFamily.LCM ? List.of(TEXT_TO_IMAGE, IMAGE_TO_IMAGE)
                : List.of(TEXT_TO_IMAGE, IMAGE_TO_IMAGE, INPAINTING);
    }

    /**
     * Runs the pipeline of the model's family and the request's task.
     *
     * @param components the loaded model
     * @param req        the request
     * @param cancelled  checked at every step (e.g. the model is closing); may be null
     * @return what the pipeline produced
     */
    public static Result generate(PipelineComponents components, Request req, BooleanSupplier cancelled) {
        ModelDirectory model = components.model();
        switch (model.family().family()) {
            case LCM -> {
                return new LatentConsistencyPipeline(components).generate(req, cancelled);
            }
            case SD1, SD2, SD2_V, TURBO, SDXL -> {
                // the family's text conditioning comes from DiffusionStages.encodeConditioning (SDXL: two encoders,
                // time ids), so every task runs on every one of these families
                if (req.mask() != null) {
                    return new InpaintPipeline(components).generate(req, cancelled);
                }
                if (req.image() != null) {
                    return new ImageToImagePipeline(components).generate(req, cancelled);
                }
                return new TextToImagePipeline(components).generate(req, cancelled);
            }
            default -> {
                requireSupported(model);
                throw new IllegalStateException("no pipeline for " + model.family());
            }
        }
    }
}
