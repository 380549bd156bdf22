package dev.sdjvm.pipeline;

import dev.sdjvm.image.RgbImage;
import dev.sdjvm.tensor.TorchGenerator;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * diffusers' {@code StableDiffusionPipeline.__call__} (and, on an SDXL model, {@code StableDiffusionXLPipeline}'s):
 * text to image, the shared {@link DiffusionStages} in diffusers' numbered order, the family's text conditioning from
 * {@link #encodeConditioning}. Its siblings ({@link ImageToImagePipeline}, {@link InpaintPipeline}) extend the same
 * stages.
 */
public final class TextToImagePipeline extends DiffusionStages {
    /**
     * The text-to-image pipeline over loaded components.
     *
     * @param components the loaded model
     */
    public TextToImagePipeline(PipelineComponents components) {
        super(components);
    }

    /**
     * Generates images from a prompt.
     *
     * @param req       the request
     * @param cancelled checked at every step (e.g. the model is closing); may be null
     * @return the images, the seed, the final latents and the timings
     */
    public Result generate(Request req, BooleanSupplier cancelled) {
        long t0 = System.nanoTime();
        // 1. Check inputs (the request checked itself when it was built; here: against this model)
        checkUnetTakes(false);
        Plan plan = checkInputs(req);
        // 4. Prepare timesteps: pure Java, before any native work (diffusers does it after encoding the prompt)
        double[] timesteps = prepareTimesteps(req, plan);
        // 2.-3. Encode the prompt (negative first under classifier-free guidance; SDXL: both encoders, time ids)
        long tTok = System.nanoTime();
        TextConditioning text = encodeConditioning(req, plan);
        long tLat = System.nanoTime();
        // 5. Prepare latents: randn([n,4,h,w], generator) * init_noise_sigma
        TorchGenerator generator = new TorchGenerator(plan.seed());
        float[] latents = prepareLatents(req.latents(), plan, generator);
        // 6. Stochastic schedulers continue the same generator, as diffusers passes it to step()
        plan.scheduler().setNoiseSource(generator::randn);
        // 7. Denoising loop
        long loopStart = System.nanoTime();
        long unetNanos = denoise(latents, text.inputs(), timesteps, plan, req.listener(), req.deadline(), cancelled,
                new DenoiseHooks() { });
        long loopEnd = System.nanoTime();
        // 8. Decode: vae_decoder(post_quant_conv(latents / scaling_factor)), postprocessed to 8-bit RGB
        List<RgbImage> images = decodeLatents(latents, plan);
        long end = System.nanoTime();
        return new Result(List.copyOf(images), plan.seed(), latents, text.tokenizeNanos(),
                tLat - tTok - text.tokenizeNanos(), loopEnd - loopStart, unetNanos, end - loopEnd, end - t0,
                timesteps.length, text.truncated(), plan.scheduler().name());
    }
}
