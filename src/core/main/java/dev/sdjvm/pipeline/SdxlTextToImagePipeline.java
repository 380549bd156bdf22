package dev.sdjvm.pipeline;

import dev.sdjvm.image.RgbImage;
import dev.sdjvm.tensor.TorchGenerator;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * diffusers' {@code StableDiffusionXLPipeline.__call__}: text to image with SDXL's two text encoders and added
 * conditioning ({@link SdxlTextEncoding}, {@link SdxlConditioning}) over the shared {@link DiffusionStages}. Without a
 * scheduler in the request it runs the model's own ({@code scheduler/scheduler_config.json}, as diffusers' pipeline
 * does: EulerDiscreteScheduler with {@code timestep_spacing} leading for SDXL base). The VAE decodes with
 * {@code vae/config.json}'s {@code scaling_factor} (0.13025).
 */
final class SdxlTextToImagePipeline extends DiffusionStages {
    /**
     * The SDXL text-to-image pipeline over loaded SDXL components.
     *
     * @param components the loaded model ({@link PipelineComponents#sdxl()} not null)
     */
    SdxlTextToImagePipeline(PipelineComponents components) {
        super(components);
        if (components.sdxl() == null) {
            throw new IllegalArgumentException(components.model().root() + " is not an SDXL model");
        }
    }

    /** diffusers' SDXL pipeline keeps the scheduler the model was published with. */
    @Override
    protected String defaultScheduler() {
        return "config";
    }

    /**
     * Generates images from a prompt.
     *
     * @param req       the request
     * @param cancelled checked at every step (e.g. the model is closing); may be null
     * @return the images, the seed, the final latents and the timings
     */
    Result generate(Request req, BooleanSupplier cancelled) {
        long t0 = System.nanoTime();
        // 1. Check inputs (against this model: size, latents, scheduler)
        checkUnetTakes(false);
        Plan plan = checkInputs(req);
        // 4. Prepare timesteps: pure Java, before any native work
        double[] timesteps = prepareTimesteps(req, plan);
        // 3. Encode the prompt with both encoders (the negative side zeros or encoded, see SdxlTextEncoding)
        long tEnc = System.nanoTime();
        SdxlTextEncoding.Embeddings text = new SdxlTextEncoding(components).encode(req.prompt(), req.negativePrompt(),
                plan.images(), plan.cfg());
        long tLat = System.nanoTime();
        // 5. Prepare latents: randn([n,4,h,w], generator) * init_noise_sigma
        TorchGenerator generator = new TorchGenerator(plan.seed());
        float[] latents = prepareLatents(req.latents(), plan, generator);
        plan.scheduler().setNoiseSource(generator::randn);
        // 7. Added time ids and embeddings: [H, W, 0, 0, H, W] for both halves
        List<UNetRunner.Conditioning> conditioning = SdxlConditioning.of(text, plan.rows(), plan.height(), plan.width());
        conditioning.forEach(c -> record(c.name(), c.values()));
        // 8. Denoising loop
        long loopStart = System.nanoTime();
        long unetNanos = denoise(latents, conditioning, timesteps, plan, req.listener(), req.deadline(), cancelled,
                new DenoiseHooks() { });
        long loopEnd = System.nanoTime();
        // decode: vae_decoder(post_quant_conv(latents / scaling_factor)) in float32, postprocessed to 8-bit RGB
        List<RgbImage> images = decodeLatents(latents, plan);
        long end = System.nanoTime();
        return new Result(List.copyOf(images), plan.seed(), latents, 0, tLat - tEnc, loopEnd - loopStart, unetNanos,
                end - loopEnd, end - t0, timesteps.length, text.truncated(), plan.scheduler().name());
    }
}
