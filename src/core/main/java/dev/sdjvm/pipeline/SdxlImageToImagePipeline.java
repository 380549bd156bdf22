package dev.sdjvm.pipeline;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.FloatImage;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.image.VaeImageProcessor;
import dev.sdjvm.tensor.TorchGenerator;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * diffusers' {@code StableDiffusionXLImg2ImgPipeline.__call__} for an SDXL base model ({@code requires_aesthetics_score}
 * false, {@code denoising_start} none): SDXL's two text encoders and added conditioning ({@link SdxlTextEncoding},
 * {@link SdxlConditioning}) over the image-to-image stages of {@link ImageToImagePipeline}.
 *
 * <ul>
 *   <li>The image: {@code VaeImageProcessor.preprocess} at its own size floored to a multiple of 8 (or the request's
 *       height/width), encoded in float32 (the VAE's {@code force_upcast}); the output has that size.</li>
 *   <li>Timesteps: the full schedule, then its last {@code strength} ({@code get_timesteps}); the request's strength
 *       defaults to the SDXL pipeline's 0.3 ({@link DiffusionStages#defaultStrength}).</li>
 *   <li>Random draws from the one seeded generator in diffusers' order: the start image's posterior sample
 *       ({@code [1,4,h,w]}, once for all images), then the noise {@code [n,4,h,w]}; the start latents are
 *       {@code scheduler.add_noise(scaling_factor * sample, noise)} at the first timestep.</li>
 *   <li>{@code time_ids} = the image's size, crop (0, 0), the image's size: {@code [H, W, 0, 0, H, W]} for both CFG
 *       halves, as the base model's pipeline makes them from the latents' size.</li>
 * </ul>
 * Without a scheduler in the request the model's own runs, as diffusers' pipeline keeps it.
 */
final class SdxlImageToImagePipeline extends DiffusionStages {
    /**
     * The SDXL image-to-image pipeline over loaded SDXL components.
     *
     * @param components the loaded model ({@link PipelineComponents#sdxl()} not null)
     */
    SdxlImageToImagePipeline(PipelineComponents components) {
        super(components);
        if (components.sdxl() == null) {
            throw new IllegalArgumentException(components.model().root() + " is not an SDXL model");
        }
    }

    /** diffusers' SDXL pipelines keep the scheduler the model was published with. */
    @Override
    protected String defaultScheduler() {
        return "config";
    }

    /**
     * Generates images from a start image and a prompt.
     *
     * @param req       the request, with an image
     * @param cancelled checked at every step (e.g. the model is closing); may be null
     * @return the images, the seed, the final latents and the timings
     * @throws InvalidRequestException for a request that does not fit the model (size, no VAE encoder) or a strength
     *                                 that leaves no step, before any native work
     */
    Result generate(Request req, BooleanSupplier cancelled) {
        long t0 = System.nanoTime();
        if (req.image() == null) {
            throw new InvalidRequestException("image", "image-to-image needs a start image");
        }
        if (req.latents() != null) {
            throw new InvalidRequestException("latents", "image-to-image starts from the image's latents; initial "
                    + "latents cannot be given");
        }
        checkUnetTakes(false);
        components.vaeEncoder();  // a model without an encoder is refused before any work
        // 4. Preprocess the image: its size floored to a multiple of 8, resized (LANCZOS) only when that changes it
        RgbImage start = req.image();
        FloatImage image = req.height() == null && req.width() == null ? VaeImageProcessor.preprocess(start)
                : VaeImageProcessor.preprocess(start, req.height() != null ? req.height() : start.height(),
                        req.width() != null ? req.width() : start.width());
        // 1. Check inputs against the model, at the image's size
        Plan plan = checkInputs(req, image.height(), image.width(), req.height() != null ? "height" : "image",
                req.width() != null ? "width" : "image");
        // 5. Timesteps: the full schedule, then its last `strength` (get_timesteps, set_begin_index)
        double[] timesteps = startTimesteps(req, plan, prepareTimesteps(req, plan));
        // 3. Encode the prompt with both encoders (the negative side zeros or encoded, see SdxlTextEncoding)
        long tEnc = System.nanoTime();
        SdxlTextEncoding.Embeddings text = new SdxlTextEncoding(components).encode(req.prompt(), req.negativePrompt(),
                plan.images(), plan.cfg());
        // 6. Prepare latents: scaling_factor * the image's posterior sample (draw 1), duplicated to the batch; noise
        //    (draw 2); add_noise at the first timestep
        TorchGenerator generator = new TorchGenerator(plan.seed());
        float[] initLatents = repeat(encodeLatents(image, generator), plan.images());
        float[] noise = new float[initLatents.length];
        generator.randn(noise);
        float[] latents = new float[initLatents.length];
        plan.scheduler().addNoise(initLatents, noise, timesteps[0], latents);
        record("init_latents", latents);
        plan.scheduler().setNoiseSource(generator::randn);
        // 8. Added time ids and embeddings: [H, W, 0, 0, H, W] of the image being made, for both halves
        List<UNetRunner.Conditioning> conditioning = SdxlConditioning.of(text, plan.rows(), plan.height(), plan.width());
        conditioning.forEach(c -> record(c.name(), c.values()));
        // 9. Denoising loop
        long loopStart = System.nanoTime();
        long unetNanos = denoise(latents, conditioning, timesteps, plan, req.listener(), req.deadline(), cancelled,
                new DenoiseHooks() { });
        long loopEnd = System.nanoTime();
        List<RgbImage> images = decodeLatents(latents, plan);
        long end = System.nanoTime();
        // the VAE encoder's time counts as encoding, beside the text encoders'
        return new Result(List.copyOf(images), plan.seed(), latents, 0, loopStart - tEnc, loopEnd - loopStart,
                unetNanos, end - loopEnd, end - t0, timesteps.length, text.truncated(), plan.scheduler().name());
    }
}
