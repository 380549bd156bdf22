package dev.sdjvm.pipeline;

import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.FamilyDetection;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.ModelFamily;
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
