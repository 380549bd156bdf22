package dev.sdjvm;

import dev.sdjvm.errors.StableDiffusionException;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.scheduler.Scheduler;
import dev.sdjvm.scheduler.Schedulers;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * The generation parameters as text, in the format AUTOMATIC1111's web UI writes into the PNG {@code parameters}
 * chunk and many tools read back:
 * <pre>
 * a lighthouse at dusk
 * Negative prompt: blurry
 * Steps: 20, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: 3f2a9c01de, Model: sd2_512_root, Batch size: 2, Batch pos: 1
 * </pre>
 * The negative prompt line is left out when there is none, as A1111 does. {@code Size} is width x height. An image
 * of a batch is reproduced by the batch's seed, its size and the image's 0-based position in it ({@code Batch size},
 * {@code Batch pos}, left out for a single image, as A1111 does): the pipeline draws the initial latents of the
 * whole batch from the one seed. {@code Model hash} is the caller's hash of the model (the CLI's is 10 hex digits of
 * a SHA-256 of the artifacts); left out when there is none. Image-to-image and inpainting add A1111's
 * {@code Denoising strength} (the strength that ran), inpainting {@code Mask blur: 0} (the mask is used as given,
 * binarized, never blurred). {@link GenerationResult#writePng(Path)} writes it into the image it describes.
 */
public final class GenerationParameters {
    /** PNG text keyword A1111 uses. */
    public static final String PNG_KEYWORD = "parameters";
    /** The scheduler the pipeline uses when a request names none (diffusers class name). */
    public static final String DEFAULT_SCHEDULER_CLASS = "DPMSolverMultistepScheduler";

    private GenerationParameters() {
    }

    /**
     * The A1111 text of one image of a result: the request that made it, the seed and scheduler that ran, the image's
     * size and position in its batch.
     *
     * @param result    the result (it keeps its request)
     * @param index     the image's 0-based index in {@link GenerationResult#images()}
     * @param modelHash the model's hash, or null to leave it out
     * @param model     the model's name, or null to leave it out
     * @return the text
     * @throws IndexOutOfBoundsException if there is no such image
     */
    public static String of(GenerationResult result, int index, String modelHash, String model) {
        RgbImage image = result.images().get(index);
        return a1111(result.request(), result.seed(), result.scheduler(), image.width(), image.height(), modelHash,
                model, index);
    }

    /**
     * The A1111 text of a request's images, without a model hash or a batch position.
     *
     * @param r              the request
     * @param seed           the seed that ran
     * @param schedulerClass diffusers class name of the scheduler that ran
     * @param width          image width
     * @param height         image height
     * @param model          the model's name, or null
     * @return the text
     */
    public static String a1111(GenerationRequest r, long seed, String schedulerClass, int width, int height,
                               String model) {
        return a1111(r, seed, schedulerClass, width, height, null, model, -1);
    }

    private static IllegalArgumentException unresolved(String what) {
        return new IllegalArgumentException("the request has no " + what + ": pass the request as it ran "
                + "(GenerationResult.request(), or StableDiffusion.withModelDefaults)");
    }

    /**
     * The A1111 text of one image.
     *
     * @param r              the request as it ran ({@link GenerationResult#request()}: with its steps and guidance)
     * @param seed           the seed of the batch
     * @param schedulerClass diffusers class name of the scheduler that ran
     * @param width          image width
     * @param height         image height
     * @param modelHash      the model's hash, or null
     * @param model          the model's name, or null
     * @param batchPos       the image's 0-based position in its batch, or -1 to leave it out
     * @return the text
     */
    public static String a1111(GenerationRequest r, long seed, String schedulerClass, int width, int height,
                               String modelHash, String model, int batchPos) {
        StringBuilder sb = new StringBuilder(r.prompt());
        if (r.negativePrompt() != null && !r.negativePrompt().isEmpty()) {
            sb.append("\nNegative prompt: ").append(r.negativePrompt());
        }
        sb.append("\nSteps: ").append(r.steps().orElseThrow(() -> unresolved("steps")))
                .append(", Sampler: ").append(samplerName(schedulerClass, r.scheduler(), r.schedulerOverrides()))
                .append(", CFG scale: ").append(number(r.guidanceScale().orElseThrow(() -> unresolved("guidance scale"))))
                .append(", Seed: ").append(seed)
                .append(", Size: ").append(width).append('x').append(height);
        if (r.guidanceRescale() > 0) {
            sb.append(", CFG Rescale: ").append(number(r.guidanceRescale()));
        }
        if (modelHash != null && !modelHash.isEmpty()) {
            sb.append(", Model hash: ").append(modelHash);
        }
        if (model != null && !model.isEmpty()) {
            sb.append(", Model: ").append(model.replace(',', ' '));
        }
        if (r.numImages() > 1) {
            sb.append(", Batch size: ").append(r.numImages());
            if (batchPos >= 0) {
                sb.append(", Batch pos: ").append(batchPos);
            }
        }
        if (r.initImage() != null) {
            sb.append(", Denoising strength: ").append(number(r.resolvedStrength()));
            if (r.mask() != null) {
                sb.append(", Mask blur: 0");
            }
        }
        return sb.toString();
    }

    /**
     * A1111's sampler name for a diffusers scheduler class ({@code DPMSolverMultistepScheduler} -&gt; {@code DPM++ 2M}).
     *
     * @param schedulerClass the diffusers class that ran, or null
     * @param requestedName  the name the request gave ({@code dpm++2m-karras}), or null
     * @param overrides      the request's scheduler overrides, or null
     * @return the sampler name, {@code unknown} without a class
     */
    public static String samplerName(String schedulerClass, String requestedName, Map<String, Object> overrides) {
        String req = requestedName == null ? "" : requestedName.toLowerCase(Locale.ROOT);
        if (schedulerClass == null) {
            return "unknown";
        }
        String base;
        switch (schedulerClass) {
            case "DPMSolverMultistepScheduler":
                Object algo = overrides == null ? null : overrides.get("algorithm_type");
                boolean sde = algo != null ? algo.toString().equals("sde-dpmsolver++") : req.contains("sde");
                Object order = overrides == null ? null : overrides.get("solver_order");
                boolean third = order != null ? "3".equals(order.toString()) : req.contains("3m");
                base = third ? (sde ? "DPM++ 3M SDE" : "DPM++ 3M") : (sde ? "DPM++ 2M SDE" : "DPM++ 2M");
                break;
            case "DPMSolverSinglestepScheduler": base = "DPM++ 2S"; break;
            case "EulerDiscreteScheduler": base = "Euler"; break;
            case "EulerAncestralDiscreteScheduler": base = "Euler a"; break;
            case "HeunDiscreteScheduler": base = "Heun"; break;
            case "LMSDiscreteScheduler": base = "LMS"; break;
            case "KDPM2DiscreteScheduler": base = "DPM2"; break;
            case "KDPM2AncestralDiscreteScheduler": base = "DPM2 a"; break;
            case "DDIMScheduler": base = "DDIM"; break;
            case "PNDMScheduler": base = "PLMS"; break;
            case "UniPCMultistepScheduler": base = "UniPC"; break;
            case "DDPMScheduler": base = "DDPM"; break;
            default: base = schedulerClass;
        }
        Object karras = overrides == null ? null : overrides.get("use_karras_sigmas");
        if (karras != null ? Boolean.TRUE.equals(karras) : req.contains("karras")) {
            base += " Karras";
        }
        return base;
    }

    /**
     * The diffusers class name of the scheduler a request will run with, resolved as the pipeline does (null or
     * blank = {@link #DEFAULT_SCHEDULER_CLASS}, {@code config} = the model's {@code scheduler_config.json}).
     *
     * @param r               the request
     * @param schedulerConfig the model's {@code scheduler_config.json} ({@link ModelInfo#schedulerConfig()})
     * @return the diffusers class name
     * @throws dev.sdjvm.errors.InvalidRequestException for an unknown name or override (field {@code scheduler})
     */
    public static String schedulerClass(GenerationRequest r, Map<String, Object> schedulerConfig) {
        return schedulerClass(r, schedulerConfig, DEFAULT_SCHEDULER_CLASS);
    }

    /**
     * {@link #schedulerClass(GenerationRequest, Map)} for a model whose default scheduler is {@code defaultName}
     * ({@link dev.sdjvm.ModelInfo#defaultScheduler()}: {@code config} for LCM, Turbo and SDXL models).
     *
     * @param r               the request
     * @param schedulerConfig the model's scheduler config (diffusers key names)
     * @param defaultName     the scheduler a request without one runs: a name, a diffusers class name or {@code config}
     * @return the diffusers class name
     * @throws dev.sdjvm.errors.InvalidRequestException for an unknown name or override (field {@code scheduler})
     */
    public static String schedulerClass(GenerationRequest r, Map<String, Object> schedulerConfig, String defaultName) {
        return scheduler(r, schedulerConfig, defaultName).name();
    }

    /**
     * The scheduler a request runs on a model, configured as the pipeline configures it (the request's name, else
     * {@code defaultName}; {@code config} = the model's {@code scheduler_config.json}; the request's overrides).
     *
     * @param r               the request
     * @param schedulerConfig the model's scheduler config (diffusers key names)
     * @param defaultName     the scheduler a request without one runs ({@link dev.sdjvm.ModelInfo#defaultScheduler()})
     * @return a new scheduler, its timesteps not set
     * @throws dev.sdjvm.errors.InvalidRequestException for an unknown name or override (field {@code scheduler})
     */
    public static Scheduler scheduler(GenerationRequest r, Map<String, Object> schedulerConfig, String defaultName) {
        String name = r.scheduler() == null || r.scheduler().isBlank() ? defaultName : r.scheduler();
        if ("config".equalsIgnoreCase(name)) {
            return Schedulers.fromConfig(schedulerConfig, r.schedulerOverrides());
        }
        return Schedulers.create(name, schedulerConfig, r.schedulerOverrides());
    }

    /**
     * Like {@link #schedulerClass} but never throws: falls back to the requested name.
     *
     * @param r               the request
     * @param schedulerConfig the model's {@code scheduler_config.json}
     * @return the diffusers class name, or the requested name
     */
    public static String schedulerClassOrName(GenerationRequest r, Map<String, Object> schedulerConfig) {
        try {
            return schedulerClass(r, schedulerConfig);
        } catch (StableDiffusionException | IllegalArgumentException e) {
            return r.scheduler() == null ? DEFAULT_SCHEDULER_CLASS : r.scheduler();
        }
    }

    /** 7.5 -&gt; "7.5", 7.0 -&gt; "7" (as A1111 prints floats). */
    static String number(double d) {
        if (d == Math.rint(d) && Math.abs(d) < 1e15) {
            return Long.toString((long) d);
        }
        return String.format(Locale.ROOT, "%s", d);
    }
}
