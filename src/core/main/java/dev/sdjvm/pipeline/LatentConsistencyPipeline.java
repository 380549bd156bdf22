package dev.sdjvm.pipeline;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.FloatImage;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.model.UNetSignature;
import dev.sdjvm.scheduler.LCMScheduler;
import dev.sdjvm.tensor.TorchGenerator;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * diffusers' {@code LatentConsistencyModelPipeline.__call__}: text to image with an LCM-distilled UNet; with a start
 * image, {@code LatentConsistencyModelImg2ImgPipeline.__call__}: the image preprocessed at its own size (floored to a
 * multiple of 8), the LCM schedule set with the request's strength ({@code set_timesteps(n, strength=)}: the origin
 * schedule shortened to {@code int(original_steps * strength)} timesteps, default strength 0.8), the image's posterior
 * sample (draw 1) times {@code scaling_factor}, the noise (draw 2), {@code add_noise} at the first timestep. Guidance goes
 * through the UNet's guidance embedding, not a CFG batch: {@code w = guidance_scale - 1} (the Imagen formulation the
 * SD pipeline uses), {@code timestep_cond = get_guidance_scale_embedding(w, time_cond_proj_dim)}, one UNet row per
 * image at every step, the prompt alone (LCMs take no negative prompt: it is ignored, with a warning). The scheduler
 * is {@link LCMScheduler}; the image is decoded from the last step's {@code denoised}, which is its output.
 */
public final class LatentConsistencyPipeline extends DiffusionStages {
    private static final Logger LOG = LoggerFactory.getLogger(LatentConsistencyPipeline.class);

    /**
     * The LCM pipeline over loaded components.
     *
     * @param components the loaded model (an LCM UNet: {@code unet/config.json} has {@code time_cond_proj_dim})
     */
    public LatentConsistencyPipeline(PipelineComponents components) {
        super(components);
    }

    /**
     * Generates images from a prompt.
     *
     * @param req       the request (an image: image-to-image; a mask is refused: no LCM inpainting)
     * @param cancelled checked at every step; may be null
     * @return the images, the seed, the final latents and the timings
     * @throws InvalidRequestException for inpainting, a scheduler other than LCMScheduler, or guidance_rescale
     */
    public Result generate(Request req, BooleanSupplier cancelled) {
        long t0 = System.nanoTime();
        if (req.mask() != null) {
            throw new InvalidRequestException("mask_image", "this is a Latent Consistency Model: text-to-image and "
                    + "image-to-image are implemented for it, not inpainting");
        }
        checkUnetTakes(false);
        boolean img2img = req.image() != null;
        FloatImage image = null;
        Plan p;
        if (img2img) {
            image = startImage(req);
            p = checkInputs(req, image);
        } else {
            p = checkInputs(req);
        }
        if (!(p.scheduler() instanceof LCMScheduler)) {
            throw new InvalidRequestException("scheduler", "an LCM model runs LCMScheduler (its UNet is distilled for "
                    + "that schedule); got " + p.scheduler().name() + ": leave the scheduler unset, or use 'lcm' or "
                    + "'config'");
        }
        if (req.guidanceRescale() > 0) {
            throw new InvalidRequestException("guidance_rescale", "an LCM model has no classifier-free guidance batch "
                    + "to rescale (guidance goes through its guidance embedding): leave guidance_rescale at 0");
        }
        if (req.negativePrompt() != null && !req.negativePrompt().isEmpty()) {
            LOG.warn("LCM models take no negative prompt (diffusers' LatentConsistencyModelPipeline ignores it): ignored");
        }
        // do_classifier_free_guidance is False in the LCM pipeline: one UNet row per image
        Plan plan = new Plan(p.height(), p.width(), p.latentHeight(), p.latentWidth(), p.images(), false, p.guidance(),
                p.seed(), p.scheduler(), p.rowSize(), 0.0);
        double[] timesteps;
        if (img2img) {  // retrieve_timesteps(scheduler, n, strength=strength): LCMScheduler shortens its origin schedule
            ((LCMScheduler) plan.scheduler()).setTimesteps(req.steps(), null, req.strength());
            timesteps = plan.scheduler().timesteps();
        } else {
            timesteps = prepareTimesteps(req, plan);
        }
        long tTok = System.nanoTime();
        TextConditioning text = encodeConditioning(req, plan);  // the prompt alone: plan.cfg() is false
        long tLat = System.nanoTime();
        TorchGenerator generator = new TorchGenerator(plan.seed());
        float[] latents = img2img ? noisedImageLatents(image, plan, generator, timesteps[0])
                : prepareLatents(req.latents(), plan, generator);
        plan.scheduler().setNoiseSource(generator::randn);
        // the UNet's fourth input: the guidance embedding of w = guidance_scale - 1, one row per image
        int dim = model.family().timeCondProjDim();
        float[] w = repeat(guidanceScaleEmbedding((float) (req.guidanceScale() - 1), dim), plan.images());
        List<UNetRunner.Conditioning> conditioning = new ArrayList<>(text.inputs());
        conditioning.add(new UNetRunner.Conditioning(UNetSignature.LCM.conditioning().get(1), w, new long[] {dim}));
        long loopStart = System.nanoTime();
        long unetNanos = denoise(latents, conditioning, timesteps, plan, req.listener(), req.deadline(), cancelled,
                new DenoiseHooks() { });
        long loopEnd = System.nanoTime();
        // the last LCM step returns denoised itself: the latents are what diffusers decodes
        List<RgbImage> images = decodeLatents(latents, plan);
        long end = System.nanoTime();
        return new Result(List.copyOf(images), plan.seed(), latents, text.tokenizeNanos(),
                tLat - tTok - text.tokenizeNanos(), loopEnd - loopStart, unetNanos, end - loopEnd, end - t0,
                timesteps.length, text.truncated(), plan.scheduler().name());
    }

    /**
     * diffusers' {@code get_guidance_scale_embedding(w, embedding_dim)} for one {@code w}, float32 as torch:
     * {@code w * 1000}; {@code half = dim // 2}; {@code f = log(10000) / (half - 1)};
     * {@code freqs = exp(arange(half) * -f)}; {@code [sin(w * freqs), cos(w * freqs)]}, a zero appended for an odd
     * dimension.
     *
     * @param w   {@code guidance_scale - 1}, float32 ({@code torch.tensor(guidance_scale - 1)})
     * @param dim {@code time_cond_proj_dim}
     * @return the embedding [dim]
     */
    static float[] guidanceScaleEmbedding(float w, int dim) {
        float ws = w * 1000f;
        int half = dim / 2;
        float f = (float) Math.log(10000f) / (float) (half - 1);
        float[] out = new float[dim];
        for (int i = 0; i < half; i++) {
            float freq = (float) Math.exp((float) i * -f);
            float a = ws * freq;
            out[i] = (float) Math.sin(a);
            out[half + i] = (float) Math.cos(a);
        }
        return out;
    }
}
