package dev.sdjvm.pipeline;

import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.FloatImage;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.image.VaeImageProcessor;
import dev.sdjvm.scheduler.Scheduler;
import dev.sdjvm.tensor.TorchGenerator;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * diffusers' {@code StableDiffusionInpaintPipeline.__call__} (commit 58eb52c0), and on an SDXL model
 * {@code StableDiffusionXLInpaintPipeline}'s for a base model ({@code requires_aesthetics_score} false, no
 * {@code denoising_start}, no {@code padding_mask_crop}; the family's text conditioning from
 * {@link #encodeConditioning}, its default strength 0.9999 from {@link #defaultStrength}), for both kinds of UNet: an
 * inpainting UNet (9 input channels: the latents, the mask and the masked image's latents, concatenated every step)
 * and a plain one (4 channels: after every step the known region is put back, noised to the next step's level).
 *
 * <ul>
 *   <li>Size: the request's height/width, else the model's ({@code unet.config.sample_size * vae_scale_factor}),
 *       whatever the image's size; image and mask are resized to it (Pillow's LANCZOS) when they differ.</li>
 *   <li>The mask: {@code VaeImageProcessor.preprocessMask}: grey ({@code convert("L")}), {@code / 255}, binarized at
 *       0.5 (white = repaint); the masked image is {@code image * (mask < 0.5)}; the latent mask is the binarized
 *       mask sampled nearest ({@code F.interpolate}: latent (i, j) = pixel (8i, 8j)).</li>
 *   <li>Timesteps as image-to-image ({@link #startTimesteps}); fewer than one step is refused.</li>
 *   <li>Random draws from the one seeded generator, in diffusers' order. {@code strength == 1.0} (exactly) starts
 *       from pure noise: {@code noise * init_noise_sigma}; below it, from {@code add_noise(image_latents, noise)}.
 *       4-channel UNet: (1) the start image's posterior sample, (2) the noise, (3) the masked image's sample (drawn
 *       although unused). 9-channel UNet below strength 1: the same three; at strength 1.0: (1) the noise, (2) the
 *       masked image's sample (the start image is not encoded). Given latents replace the noise (and are scaled by
 *       {@code init_noise_sigma} at every strength, as diffusers does).</li>
 *   <li>The output is the whole decoded image: the original pixels are not pasted back.</li>
 * </ul>
 */
public final class InpaintPipeline extends DiffusionStages {
    /**
     * The inpainting pipeline over loaded components.
     *
     * @param components the loaded model
     */
    public InpaintPipeline(PipelineComponents components) {
        super(components);
    }

    /**
     * Repaints the masked part of an image from a prompt.
     *
     * @param req       the request, with an image and a mask of the image's size
     * @param cancelled checked at every step (e.g. the model is closing); may be null
     * @return the images, the seed, the final latents and the timings
     * @throws InvalidRequestException for a request that does not fit the model (size, no VAE encoder) or a strength
     *                                 that leaves no step, before any native work
     */
    public Result generate(Request req, BooleanSupplier cancelled) {
        long t0 = System.nanoTime();
        if (req.image() == null || req.mask() == null) {
            throw new InvalidRequestException(req.image() == null ? "image" : "mask_image",
                    "inpainting needs a start image and a mask");
        }
        components.vaeEncoder();  // a model without an encoder is refused before any work
        boolean inpaintingUnet = model.inpaintingUnet();
        // 0.-1. Default height and width to the model's; check inputs
        Plan plan = checkInputs(req);
        int c = model.latentChannels();
        int hw = plan.latentHeight() * plan.latentWidth();
        // 4. Set timesteps: the full schedule, then its last `strength`; at least one step
        double[] timesteps = startTimesteps(req, plan, prepareTimesteps(req, plan));
        boolean strengthMax = req.strength() == 1.0;  // diffusers' is_strength_max: an exact comparison
        // 5. Preprocess image and mask (pure Java)
        FloatImage init = VaeImageProcessor.preprocess(req.image(), plan.height(), plan.width());
        FloatImage maskCondition = VaeImageProcessor.preprocessMask(req.mask(), plan.height(), plan.width());
        float[] maskedImage = maskedImage(init, maskCondition);
        float[] mask = latentMask(maskCondition, plan.latentHeight(), plan.latentWidth());
        // 2.-3. Encode the prompt (SDXL: both encoders, and the time ids of the image being made)
        long tTok = System.nanoTime();
        TextConditioning text = encodeConditioning(req, plan);
        // 6. Prepare latents
        Scheduler scheduler = plan.scheduler();
        TorchGenerator generator = new TorchGenerator(plan.seed());
        int n = plan.images();
        float[] given = req.latents();
        float[] imageLatents = null;
        if (!inpaintingUnet || (given == null && !strengthMax)) {
            imageLatents = repeat(encodeLatents(init, generator), n);
            record("image_latents", imageLatents);
        }
        float[] noise;
        float[] latents = new float[n * plan.rowSize()];
        if (given == null) {
            noise = new float[latents.length];
            generator.randn(noise);
            if (strengthMax) {
                scale(noise, scheduler.initNoiseSigma(), latents);
            } else {
                scheduler.addNoise(imageLatents, noise, timesteps[0], latents);
            }
        } else {
            noise = given;
            scale(noise, scheduler.initNoiseSigma(), latents);
        }
        // 7. Prepare mask latents: the masked image's posterior sample (the last draw), duplicated to the batch
        float[] maskedLatents = repeat(encodeLatents(new FloatImage(3, init.height(), init.width(), maskedImage),
                generator), n);
        record("masked_image_latents", maskedLatents);
        record("mask_latent", mask);
        record("init_latents", latents);
        // 9. Stochastic schedulers continue the same generator, as diffusers passes it to step()
        scheduler.setNoiseSource(generator::randn);
        // 10. Denoising loop
        DenoiseHooks hooks = inpaintingUnet ? new Concatenate(c, hw, mask, maskedLatents)
                : new Blend(scheduler, timesteps, imageLatents, noise, mask);
        long loopStart = System.nanoTime();
        long unetNanos = denoise(latents, text.inputs(), timesteps, plan, req.listener(), req.deadline(), cancelled,
                hooks);
        long loopEnd = System.nanoTime();
        // 11. Decode (the whole image: nothing is pasted back)
        List<RgbImage> images = decodeLatents(latents, plan);
        long end = System.nanoTime();
        return new Result(List.copyOf(images), plan.seed(), latents, text.tokenizeNanos(),
                loopStart - tTok - text.tokenizeNanos(), loopEnd - loopStart, unetNanos, end - loopEnd, end - t0,
                timesteps.length, text.truncated(), scheduler.name());
    }

    /** {@code out = x * s} in float32 (diffusers' {@code latents * init_noise_sigma}). */
    private static void scale(float[] x, float s, float[] out) {
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] * s;
        }
    }

    /** diffusers' {@code init_image * (mask_condition < 0.5)}: repainted pixels become 0 (mid grey), in float32. */
    static float[] maskedImage(FloatImage image, FloatImage mask) {
        int plane = image.height() * image.width();
        float[] px = image.chw();
        float[] m = mask.chw();
        float[] out = new float[px.length];
        for (int ch = 0; ch < image.channels(); ch++) {
            for (int i = 0; i < plane; i++) {
                out[ch * plane + i] = px[ch * plane + i] * (m[i] < 0.5f ? 1f : 0f);
            }
        }
        return out;
    }

    /**
     * diffusers' {@code F.interpolate(mask, size=(H / 8, W / 8))}, mode nearest (ATen: source index
     * {@code min(floor(dst * (float) in / out), in - 1)}): latent (i, j) is pixel (8i, 8j) of the binarized mask.
     */
    static float[] latentMask(FloatImage mask, int lh, int lw) {
        float sy = (float) mask.height() / lh;
        float sx = (float) mask.width() / lw;
        float[] out = new float[lh * lw];
        for (int i = 0; i < lh; i++) {
            int y = Math.min((int) Math.floor(i * sy), mask.height() - 1);
            for (int j = 0; j < lw; j++) {
                int x = Math.min((int) Math.floor(j * sx), mask.width() - 1);
                out[i * lw + j] = mask.get(0, y, x);
            }
        }
        return out;
    }

    /**
     * A 9-channel UNet's sample: {@code cat([scale_model_input(latents), mask, masked_image_latents], dim=1)} per
     * row (only the latents are scaled); the same for the uncond and cond halves under classifier-free guidance.
     */
    private static final class Concatenate implements DenoiseHooks {
        private final int latentRow;
        private final int hw;
        private final float[] mask;
        private final float[] maskedLatents;
        private float[] sample;

        Concatenate(int channels, int hw, float[] mask, float[] maskedLatents) {
            this.latentRow = channels * hw;
            this.hw = hw;
            this.mask = mask;
            this.maskedLatents = maskedLatents;
        }

        @Override
        public int sampleChannels(int latentChannels) {
            return 2 * latentChannels + 1;
        }

        @Override
        public float[] sample(float[] scaled) {
            int n = scaled.length / latentRow;
            int row = 2 * latentRow + hw;
            if (sample == null) {
                sample = new float[n * row];
                for (int r = 0; r < n; r++) {  // the mask and the masked image's latents do not change
                    System.arraycopy(mask, 0, sample, r * row + latentRow, hw);
                    System.arraycopy(maskedLatents, r * latentRow, sample, r * row + latentRow + hw, latentRow);
                }
            }
            for (int r = 0; r < n; r++) {
                System.arraycopy(scaled, r * latentRow, sample, r * row, latentRow);
            }
            return sample;
        }
    }

    /**
     * A 4-channel UNet: after every step {@code latents = (1 - mask) * init_latents_proper + mask * latents}, where
     * {@code init_latents_proper} is the start image's latents noised with the start noise to the level of the next
     * step (the scheduler's sigma at its step index, after the step), or clean after the last step.
     */
    private static final class Blend implements DenoiseHooks {
        private final Scheduler scheduler;
        private final double[] timesteps;
        private final float[] imageLatents;
        private final float[] noise;
        private final float[] mask;
        private final float[] proper;

        Blend(Scheduler scheduler, double[] timesteps, float[] imageLatents, float[] noise, float[] mask) {
            this.scheduler = scheduler;
            this.timesteps = timesteps;
            this.imageLatents = imageLatents;
            this.noise = noise;
            this.mask = mask;
            this.proper = new float[imageLatents.length];
        }

        @Override
        public void afterStep(int k, float[] latents) {
            float[] known = imageLatents;
            if (k < timesteps.length - 1) {
                scheduler.addNoise(imageLatents, noise, timesteps[k + 1], proper);
                known = proper;
            }
            int hw = mask.length;
            for (int i = 0; i < latents.length; i++) {
                float m = mask[i % hw];
                latents[i] = (1f - m) * known[i] + m * latents[i];
            }
        }
    }
}
