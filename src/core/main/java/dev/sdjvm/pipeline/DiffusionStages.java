package dev.sdjvm.pipeline;

import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.TensorBinding;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.GenerationCancelledException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.FloatImage;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.image.VaeImageProcessor;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.ModelFamily;
import dev.sdjvm.model.UNetSignature;
import dev.sdjvm.scheduler.Scheduler;
import dev.sdjvm.scheduler.Schedulers;
import dev.sdjvm.tensor.TorchGenerator;
import dev.sdjvm.tokenizer.ClipTokenizer;
import dev.sdjvm.tokenizer.Encoding;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The stages the Stable Diffusion task pipelines share, as diffusers' {@code StableDiffusionPipeline} methods that
 * its image-to-image and inpainting siblings copy: {@link #checkInputs}, {@link #tokenize} and {@link #encodePrompt},
 * {@link #prepareTimesteps} (and {@link #startTimesteps}, the tail a {@code strength} keeps), {@link #prepareLatents},
 * {@link #denoise}, {@link #decodeLatents}, and {@link #encodeImage} / {@link #encodeLatents} (the VAE encoder and a
 * sample of its latent distribution, for the tasks that start from an image). A task pipeline
 * ({@link TextToImagePipeline}, {@link ImageToImagePipeline}, {@link InpaintPipeline}) is a subclass whose
 * {@code generate} runs them in diffusers' numbered order; what a task changes in the loop (inpainting: the UNet's
 * extra input channels, the known region blended back) it passes to {@link #denoise} as {@link DenoiseHooks}.
 *
 * <p>Pure Java apart from the artifacts, which run on the backend chosen at load time through the
 * {@link PipelineComponents}. Stateless between calls: each generation has its own scheduler, generator and
 * invocations, so concurrent generations on the same components depend only on their requests.
 */
public abstract class DiffusionStages {
    private static final Logger LOG = LoggerFactory.getLogger(DiffusionStages.class);
    /** The scheduler AWS's SD 2.1 deployment swaps in: {@code DPMSolverMultistepScheduler.from_config(config)}. */
    public static final String DEFAULT_SCHEDULER = "DPMSolverMultistepScheduler";

    /** The text embeddings, the conditioning every UNet signature starts with ({@link UNetSignature#conditioning()}). */
    static final String ENCODER_HIDDEN_STATES = UNetSignature.SD.conditioning().get(0);

    /**
     * The scheduler a request without one runs on a model: the model's own ({@code config}) for the few-step families
     * (LCM, Turbo; SDXL, as diffusers' SDXL pipeline keeps the scheduler it was published with) and for a model whose
     * scheduler config is an LCMScheduler (they are distilled for that schedule),
     * else {@value #DEFAULT_SCHEDULER} as AWS's deployment.
     *
     * @param model the model directory
     * @return a scheduler name: {@code config} or a diffusers class name
     */
    public static String defaultScheduler(ModelDirectory model) {
        ModelFamily f = model.family().family();
        Object cls = model.schedulerConfig().get("_class_name");
        if (f == ModelFamily.LCM || f == ModelFamily.TURBO || f == ModelFamily.SDXL || "LCMScheduler".equals(cls)) {
            return "config";
        }
        return DEFAULT_SCHEDULER;
    }

    /** diffusers' {@code StableDiffusionPipeline.__call__} defaults (and the SDXL pipeline's steps): 50 steps, 7.5. */
    static final int SD_STEPS = 50;
    static final double SD_GUIDANCE = 7.5;
    /** diffusers' {@code LatentConsistencyModelPipeline.__call__} defaults: 4 steps, guidance 8.5. */
    static final int LCM_STEPS = 4;
    static final double LCM_GUIDANCE = 8.5;
    /** diffusers' {@code StableDiffusionXLPipeline.__call__} default guidance scale. */
    static final double SDXL_GUIDANCE = 5.0;
    /** The few-step (adversarially distilled) models' published usage: one step, no guidance (SD-Turbo's card). */
    static final int FEW_STEP_STEPS = 1;
    static final double FEW_STEP_GUIDANCE = 0.0;

    /**
     * {@return the {@code num_inference_steps} a request without one runs on a model: the default of diffusers'
     * pipeline for its family ({@value #SD_STEPS}; LCM's {@value #LCM_STEPS}), and
     * {@value #FEW_STEP_STEPS} for a few-step model ({@link #fewStep}), as its model card runs it (diffusers' pipeline
     * class would run {@value #SD_STEPS} steps with guidance: not what the model is made for)}
     *
     * @param model the model directory
     */
    public static int defaultSteps(ModelDirectory model) {
        if (fewStep(model)) {
            return FEW_STEP_STEPS;
        }
        return model.family().family() == ModelFamily.LCM ? LCM_STEPS : SD_STEPS;
    }

    /**
     * {@return the {@code guidance_scale} a request without one runs on a model: as {@link #defaultSteps}, the
     * default of diffusers' pipeline for its family ({@value #SD_GUIDANCE}; SDXL's
     * {@value #SDXL_GUIDANCE}; LCM's {@value #LCM_GUIDANCE}), and {@value #FEW_STEP_GUIDANCE} for a few-step model}
     *
     * @param model the model directory
     */
    public static double defaultGuidanceScale(ModelDirectory model) {
        if (fewStep(model)) {
            return FEW_STEP_GUIDANCE;
        }
        return switch (model.family().family()) {
            case LCM -> LCM_GUIDANCE;
            case SDXL -> SDXL_GUIDANCE;
            default -> SD_GUIDANCE;
        };
    }

    /** diffusers' {@code StableDiffusionXLImg2ImgPipeline.__call__} default strength. */
    static final double SDXL_IMG2IMG_STRENGTH = 0.3;
    /** diffusers' {@code StableDiffusionXLInpaintPipeline.__call__} default strength (not exactly 1: not pure noise). */
    static final double SDXL_INPAINT_STRENGTH = 0.9999;
    /** The Stable Diffusion image-to-image and inpainting pipelines' default strengths. */
    static final double IMG2IMG_STRENGTH = 0.8;
    static final double INPAINT_STRENGTH = 1.0;

    /**
     * {@return the {@code strength} an image request without one runs on a model: the default of diffusers' pipeline
     * for the family and task: {@value #IMG2IMG_STRENGTH} for image-to-image and {@value #INPAINT_STRENGTH} for
     * inpainting (StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline); {@value #SDXL_IMG2IMG_STRENGTH} and
     * {@value #SDXL_INPAINT_STRENGTH} for SDXL (StableDiffusionXLImg2ImgPipeline, StableDiffusionXLInpaintPipeline)}
     *
     * @param model      the model directory
     * @param inpainting true for a request with a mask
     */
    public static double defaultStrength(ModelDirectory model, boolean inpainting) {
        boolean sdxl = model.family().family() == ModelFamily.SDXL;
        if (inpainting) {
            return sdxl ? SDXL_INPAINT_STRENGTH : INPAINT_STRENGTH;
        }
        return sdxl ? SDXL_IMG2IMG_STRENGTH : IMG2IMG_STRENGTH;
    }

    /**
     * A few-step model: the {@link ModelFamily#TURBO} family (SD-Turbo), or an SDXL model published with the same
     * trailing Euler (ancestral) scheduler config (SDXL-Turbo: {@code model_index.json} names the SDXL pipeline).
     */
    static boolean fewStep(ModelDirectory model) {
        ModelFamily f = model.family().family();
        if (f == ModelFamily.TURBO) {
            return true;
        }
        Object cls = model.schedulerConfig().get("_class_name");
        return f == ModelFamily.SDXL && "trailing".equals(model.schedulerConfig().get("timestep_spacing"))
                && ("EulerAncestralDiscreteScheduler".equals(cls) || "EulerDiscreteScheduler".equals(cls));
    }

    /**
     * Sees the intermediate tensors of a generation (tests compare them with diffusers' recorded ones); null in
     * normal use. Called on the generating thread.
     */
    interface Probe {
        /**
         * One intermediate tensor.
         *
         * @param what   {@code moments} (each VAE encoder output, in call order), {@code image_latents},
         *               {@code masked_image_latents}, {@code mask_latent}, {@code init_latents} (entering the loop);
         *               SDXL: the UNet conditioning {@code encoder_hidden_states}, {@code text_embeds},
         *               {@code time_ids}
         * @param values its values, flat (not to be changed)
         */
        void record(String what, float[] values);
    }

    static volatile Probe probe;

    /** Hands an intermediate tensor to the {@link #probe}, if any. */
    static void record(String what, float[] values) {
        Probe p = probe;
        if (p != null) {
            p.record(what, values);
        }
    }

    /** The loaded model the stages run on. */
    protected final PipelineComponents components;
    /** {@code components.model()}. */
    protected final ModelDirectory model;
    /** {@code components.tokenizer()}. */
    protected final ClipTokenizer tokenizer;

    /**
     * Stages over loaded components.
     *
     * @param components the loaded model
     */
    protected DiffusionStages(PipelineComponents components) {
        this.components = components;
        this.model = components.model();
        this.tokenizer = components.tokenizer();
    }

    /**
     * A request checked against the model: sizes, scheduler and seed resolved.
     *
     * @param height       image height
     * @param width        image width
     * @param latentHeight latent height
     * @param latentWidth  latent width
     * @param images       images per prompt
     * @param cfg          classifier-free guidance runs
     * @param guidance     the guidance scale, float32 as the CFG arithmetic uses it
     * @param seed         the seed of the generator (the request's or a random one)
     * @param scheduler    the scheduler, configured but without timesteps ({@link #prepareTimesteps})
     * @param rowSize      values in one image's latents
     * @param guidanceRescale diffusers' {@code guidance_rescale} (0 = off; only under classifier-free guidance)
     */
    protected record Plan(int height, int width, int latentHeight, int latentWidth, int images, boolean cfg,
                          float guidance, long seed, Scheduler scheduler, int rowSize, double guidanceRescale) {
        /** {@return UNet rows per step: the images, twice under classifier-free guidance} */
        public int rows() {
            return cfg ? 2 * images : images;
        }
    }

    /**
     * The tokenized prompts.
     *
     * @param prompt   the prompt
     * @param negative the negative prompt under classifier-free guidance, else null
     */
    protected record Prompts(Encoding prompt, Encoding negative) {
    }

    /**
     * {@return the scheduler a request asks for (without one: the model's default, {@link #defaultScheduler}), from
     * the model's config and the request's overrides}
     */
    protected Scheduler scheduler(Request r) {
        String name = r.scheduler() == null || r.scheduler().isBlank() ? defaultScheduler(model) : r.scheduler();
        if ("config".equalsIgnoreCase(name)) {
            return Schedulers.fromConfig(model.schedulerConfig(), r.schedulerOverrides());
        }
        return Schedulers.create(name, model.schedulerConfig(), r.schedulerOverrides());
    }

    /**
     * diffusers' {@code check_inputs} against the model: size, latents, scheduler (the request checked itself when it
     * was built). Throws before any native work.
     *
     * @param req the request
     * @return the plan
     * @throws InvalidRequestException naming the field that does not fit the model
     */
    protected Plan checkInputs(Request req) {
        return checkInputs(req, req.height() != null ? req.height() : model.height(),
                req.width() != null ? req.width() : model.width(), "height", "width");
    }

    /**
     * {@link #checkInputs(Request)} for images of a size the task chose (image-to-image: the start image's).
     *
     * @param req         the request
     * @param height      the image height the task runs at
     * @param width       the image width
     * @param heightField the request field a misfit height is reported against
     * @param widthField  the request field a misfit width is reported against
     * @return the plan
     * @throws InvalidRequestException naming the field that does not fit the model
     */
    protected Plan checkInputs(Request req, int height, int width, String heightField, String widthField) {
        final int vs = model.vaeScaleFactor();
        if (height != model.height() || width != model.width()) {
            // CPU-traced artifacts take any size; compiled ones (a static batch, Neuron) only their own
            if (components.unet().fixedSize()) {
                throw new InvalidRequestException(height != model.height() ? heightField : widthField,
                        "the artifacts are compiled for " + model.height() + "x" + model.width() + " images; got "
                        + height + "x" + width);
            }
            if (height % vs != 0 || width % vs != 0) {
                throw new InvalidRequestException(height % vs != 0 ? heightField : widthField, "must be a multiple of "
                        + vs + " (the VAE scale factor); got " + height + "x" + width);
            }
            // a traced UNet's up blocks double the size back without diffusers' upsample_size: latents must divide
            int m = vs * model.unetDownFactor();
            if (height % m != 0 || width % m != 0) {
                throw new InvalidRequestException(height % m != 0 ? heightField : widthField, "must be a multiple of "
                        + m + " (the VAE scale factor " + vs + " x the UNet's downsampling " + model.unetDownFactor()
                        + ", from unet/config.json block_out_channels); got " + height + "x" + width);
            }
        }
        int lh = height / vs;
        int lw = width / vs;
        int n = req.numImages();
        int rowSize = model.latentChannels() * lh * lw;
        if (req.latents() != null && req.latents().length != n * rowSize) {
            throw new InvalidRequestException("latents", "expected " + n + "x" + model.latentChannels() + "x"
                    + lh + "x" + lw + " = " + (n * rowSize) + " values, got " + req.latents().length);
        }
        Scheduler scheduler = scheduler(req);
        scheduler.setBatchSize(n);  // per-sample thresholding over the [n,4,h,w] latents
        long seed = req.seed() != null ? req.seed() : ThreadLocalRandom.current().nextLong(0, 1L << 53);
        return new Plan(height, width, lh, lw, n, req.doClassifierFreeGuidance(), (float) req.guidanceScale(), seed,
                scheduler, rowSize, req.guidanceRescale());
    }

    /**
     * diffusers' {@code retrieve_timesteps}: {@code scheduler.set_timesteps(num_inference_steps)}. Pure Java, so a
     * task pipeline runs it right after {@link #checkInputs}, before any native work, as a refusal of the step count
     * is a bad request. Image-to-image overrides it to keep the last {@code strength} of them.
     *
     * @param req  the request
     * @param plan its plan
     * @return the timesteps the denoising loop runs, in order
     */
    protected double[] prepareTimesteps(Request req, Plan plan) {
        plan.scheduler().setTimesteps(req.steps());
        return plan.scheduler().timesteps();
    }

    /**
     * diffusers' {@code get_timesteps} (image-to-image, inpainting), after {@link #prepareTimesteps} set the full
     * schedule: {@code init_timestep = min(int(num_inference_steps * strength), num_inference_steps)},
     * {@code t_start = max(num_inference_steps - init_timestep, 0)}, the timesteps from {@code t_start * order} on
     * (every scheduler here has order 1), and {@code scheduler.set_begin_index(t_start * order)}.
     *
     * @param req      the request (its step count and strength)
     * @param plan     its plan, the scheduler's timesteps set
     * @param all      the full schedule ({@link #prepareTimesteps})
     * @return the timesteps the loop runs: the last {@code strength} of the schedule
     * @throws InvalidRequestException (field {@code strength}) when no step would run, as diffusers' inpainting
     *                                 pipeline refuses (its image-to-image pipeline would fail later)
     */
    protected double[] startTimesteps(Request req, Plan plan, double[] all) {
        int steps = req.steps();
        int initTimestep = Math.min((int) (steps * req.strength()), steps);  // Python: int(float * float) truncates
        int tStart = Math.max(steps - initTimestep, 0);
        if (tStart >= all.length) {
            throw new InvalidRequestException("strength", "strength " + req.strength() + " x " + steps
                    + " steps leaves no denoising step (int(" + steps + " x " + req.strength() + ") = " + initTimestep
                    + "); raise the strength or the number of steps");
        }
        plan.scheduler().setBeginIndex(tStart);
        return Arrays.copyOfRange(all, tStart, all.length);
    }

    /**
     * Tokenizes the prompt, and the negative prompt ({@code ""} when none) under classifier-free guidance; warns when
     * one was truncated to the text encoder's length, as diffusers does.
     *
     * @param req  the request
     * @param plan its plan
     * @return the token ids
     */
    protected Prompts tokenize(Request req, Plan plan) {
        Encoding pos = tokenizer.tokenize(req.prompt());
        Encoding neg = plan.cfg() ? tokenizer.tokenize(req.negativePrompt() == null ? "" : req.negativePrompt()) : null;
        if (pos.truncated()) {
            LOG.warn("The prompt has {} tokens; the text encoder takes {}: the part after token {} was truncated",
                    pos.tokenCount(), tokenizer.maxLength() - 2, tokenizer.maxLength() - 2);
        }
        if (neg != null && neg.truncated()) {
            LOG.warn("The negative prompt has {} tokens and was truncated to {}", neg.tokenCount(), tokenizer.maxLength() - 2);
        }
        return new Prompts(pos, neg);
    }

    /**
     * The UNet's text conditioning of a request: what the family's text encoders make, one row per UNet row each.
     *
     * @param inputs    the UNet inputs written once per generation, by name (SD: {@code encoder_hidden_states}; SDXL
     *                  also {@code text_embeds} and {@code time_ids})
     * @param truncated whether the prompt was longer than the text encoder takes
     * @param tokenizeNanos the time spent tokenizing (counted apart from the encoders')
     */
    protected record TextConditioning(List<UNetRunner.Conditioning> inputs, boolean truncated, long tokenizeNanos) {
    }

    /**
     * Encodes a request's prompt (and negative prompt under classifier-free guidance) into the UNet's conditioning, as
     * the family's diffusers pipeline does: SD's {@code encode_prompt} ({@link #tokenize}, {@link #encodePrompt}); for
     * an SDXL model both encoders ({@link SdxlTextEncoding}) and the added {@code time_ids} of the image being made
     * ({@link SdxlConditioning}: {@code [H, W, 0, 0, H, W]} of {@code plan}'s size, as the base model's text-to-image,
     * image-to-image and inpainting pipelines make them). Every task's pipeline calls this one method, so each task
     * runs on each family.
     *
     * @param req  the request
     * @param plan its plan (size, images, CFG)
     * @return the conditioning
     */
    protected TextConditioning encodeConditioning(Request req, Plan plan) {
        if (components.sdxl() != null) {
            SdxlTextEncoding.Embeddings text = new SdxlTextEncoding(components).encode(req.prompt(),
                    req.negativePrompt(), plan.images(), plan.cfg());
            List<UNetRunner.Conditioning> inputs = SdxlConditioning.of(text, plan.rows(), plan.height(), plan.width());
            inputs.forEach(c -> record(c.name(), c.values()));
            return new TextConditioning(inputs, text.truncated(), 0);
        }
        long t0 = System.nanoTime();
        Prompts prompts = tokenize(req, plan);
        long tokenized = System.nanoTime() - t0;
        float[] embeddings = encodePrompt(prompts, plan);
        int tokens = tokenizer.maxLength();
        int hidden = embeddings.length / plan.rows() / tokens;
        return new TextConditioning(List.of(new UNetRunner.Conditioning(ENCODER_HIDDEN_STATES, embeddings,
                new long[] {tokens, hidden})), prompts.prompt().truncated(), tokenized);
    }

    /**
     * diffusers' {@code encode_prompt}: the text encoder's {@code last_hidden_state} for each prompt, as float32, one
     * row per UNet row: {@code [uncond] * n + [cond] * n} under CFG, else {@code [cond] * n}.
     *
     * @param prompts the token ids
     * @param plan    the plan
     * @return float32 [rows, 77, H] flat
     */
    protected float[] encodePrompt(Prompts prompts, Plan plan) {
        float[] cond = encode(prompts.prompt());
        float[] uncond = prompts.negative() != null ? encode(prompts.negative()) : null;
        int row = cond.length;
        float[] emb = new float[plan.rows() * row];
        for (int r = 0; r < plan.rows(); r++) {
            System.arraycopy(plan.cfg() && r < plan.images() ? uncond : cond, 0, emb, r * row, row);
        }
        return emb;
    }

    private float[] encode(Encoding e) {
        int[] ids = e.inputIds();
        InvocationPool pool = components.pool(ArtifactRole.TEXT_ENCODER);
        Invocation inv = pool.acquire(new long[] {1, ids.length});
        try {
            inv.write(0, 0, ids, 0, ids.length);
            inv.run();
            List<TensorSpec> outs = inv.outputs();
            int k = TensorBinding.output(ArtifactRole.TEXT_ENCODER, outs, "last_hidden_state");
            TensorSpec h = outs.get(k);
            if (h.rank() != 3 || h.dim(0) != 1 || h.dim(1) != ids.length) {
                throw new BackendException("text_encoder returned last_hidden_state " + h + "; expected [1,"
                        + ids.length + ",H]");
            }
            float[] out = new float[(int) h.numel()];
            inv.read(k, out, 0);  // diffusers: prompt_embeds.to(float32) in a float32 pipeline
            return out;
        } finally {
            pool.release(inv);
        }
    }

    /**
     * diffusers' {@code prepare_latents}: the caller's latents, or {@code randn(generator)}, times init_noise_sigma.
     *
     * @param given     the request's latents, or null
     * @param plan      the plan (with timesteps set: {@code init_noise_sigma} may depend on them)
     * @param generator the request's generator
     * @return the initial latents [n,4,h,w] flat
     */
    protected float[] prepareLatents(float[] given, Plan plan, TorchGenerator generator) {
        float[] latents = given != null ? given.clone() : new float[plan.images() * plan.rowSize()];
        if (given == null) {
            generator.randn(latents);  // torch.randn's values depend only on numel, not on the shape
        }
        float sigma0 = plan.scheduler().initNoiseSigma();
        for (int i = 0; i < latents.length; i++) {
            latents[i] = latents[i] * sigma0;
        }
        return latents;
    }

    /**
     * What a task changes in the denoising loop; the defaults change nothing (text-to-image, image-to-image).
     * Inpainting with a 9-channel UNet widens its sample; with a 4-channel UNet it blends the known region back after
     * every step.
     */
    protected interface DenoiseHooks {
        /**
         * {@return the channels of the UNet's sample}
         *
         * @param latentChannels the latents' channels
         */
        default int sampleChannels(int latentChannels) {
            return latentChannels;
        }

        /**
         * The UNet's sample rows [n, sampleChannels, h, w] flat for this step, from the scaled latents.
         *
         * @param scaled the scaled latents [n, latentChannels, h, w] flat ({@code scheduler.scale_model_input})
         * @return the rows to run (the default: {@code scaled} itself); the array may be reused between steps
         */
        default float[] sample(float[] scaled) {
            return scaled;
        }

        /**
         * Called after the scheduler's step {@code k}, before the cancellation checks.
         *
         * @param k       0-based index of the step in the run
         * @param latents the latents after the step, changed in place
         */
        default void afterStep(int k, float[] latents) {
        }
    }

    /**
     * The denoising loop over the family's UNet conditioning (SD: {@code encoder_hidden_states}; SDXL adds
     * {@code text_embeds} and {@code time_ids}), one row per UNet row each.
     *
     * @param latents      [n,4,h,w] flat, denoised in place
     * @param conditioning the UNet inputs written once per generation, by name
     * @param timesteps    the timesteps to run
     * @param plan         the plan
     * @param listener     called after every step, or null
     * @param deadline     checked after every step, or null
     * @param cancelled    checked after every step, or null
     * @param hooks        the task's changes to the loop
     * @return the nanoseconds spent in UNet calls
     * @throws GenerationCancelledException when cancelled, refused by the listener or past the deadline
     */
    protected long denoise(float[] latents, List<UNetRunner.Conditioning> conditioning, double[] timesteps, Plan plan,
                           StepCallback listener, Instant deadline, BooleanSupplier cancelled, DenoiseHooks hooks) {
        Scheduler scheduler = plan.scheduler();
        int n = plan.images();
        int rowSize = plan.rowSize();
        boolean cfg = plan.cfg();
        float g = plan.guidance();
        float[] scaled = new float[latents.length];
        float[] noise = new float[plan.rows() * rowSize];
        float[] eps = cfg ? new float[latents.length] : noise;
        float rescale = (float) plan.guidanceRescale();
        boolean doRescale = cfg && plan.guidanceRescale() > 0;
        long unetNanos = 0;
        long loopStart = System.nanoTime();
        long[] sampleRow = {hooks.sampleChannels(model.latentChannels()), plan.latentHeight(), plan.latentWidth()};
        components.unet().checkTimesteps(timesteps, scheduler.name());
        try (UNetRunner.Session session = components.unet().open(plan.rows(), n, sampleRow, rowSize, conditioning)) {
            for (int k = 0; k < timesteps.length; k++) {
                double t = timesteps[k];
                scheduler.scaleModelInput(latents, t, scaled);
                float[] sample = hooks.sample(scaled);
                long u0 = System.nanoTime();
                session.run(sample, (float) t, noise);
                unetNanos += System.nanoTime() - u0;
                if (cfg) {
                    // noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond), float32
                    int half = n * rowSize;
                    for (int i = 0; i < half; i++) {
                        float u = noise[i];
                        eps[i] = u + g * (noise[half + i] - u);
                    }
                    if (doRescale) {
                        rescaleNoiseCfg(eps, noise, half, n, rowSize, rescale);
                    }
                }
                scheduler.step(eps, t, latents, latents);
                hooks.afterStep(k, latents);
                checkFinite(latents, k, timesteps.length, t);
                long now = System.nanoTime();
                if (cancelled != null && cancelled.getAsBoolean()) {
                    throw new GenerationCancelledException("cancelled: the pipeline is closing");
                }
                if (Thread.currentThread().isInterrupted()) {
                    throw new GenerationCancelledException("cancelled: the generating thread was interrupted");
                }
                if (listener != null && !listener.onStep(k + 1, timesteps.length, t, now - loopStart)) {
                    throw new GenerationCancelledException("cancelled by the step listener after step " + (k + 1)
                            + " of " + timesteps.length);
                }
                if (deadline != null && Instant.now().isAfter(deadline)) {
                    throw new GenerationCancelledException("deadline " + deadline + " passed after step " + (k + 1)
                            + " of " + timesteps.length);
                }
            }
        }
        return unetNanos;
    }

    /**
     * diffusers' {@code rescale_noise_cfg(noise_cfg, noise_pred_text, guidance_rescale)} (Lin et al. 2023, section
     * 3.4), per image, in place: {@code std_text = noise_pred_text.std(dim=1..)}, {@code std_cfg = noise_cfg.std(...)}
     * (torch's unbiased std, accumulated in double as torch's CPU kernel, rounded to float32);
     * {@code noise_cfg = r * (noise_cfg * (std_text / std_cfg)) + (1 - r) * noise_cfg}, float32 arithmetic.
     *
     * @param cfg     the guided noise [n, rowSize] flat, changed in place
     * @param noise   the UNet's output [2n, rowSize]: the text half starts at {@code textOffset}
     * @param textOffset where {@code noise_pred_text} starts in {@code noise}
     * @param n       images
     * @param rowSize values per image
     * @param r       {@code guidance_rescale}
     */
    static void rescaleNoiseCfg(float[] cfg, float[] noise, int textOffset, int n, int rowSize, float r) {
        float keep = (float) (1.0 - (double) r);  // Python: (1 - guidance_rescale), a double scalar on a float tensor
        for (int b = 0; b < n; b++) {
            float stdText = std(noise, textOffset + b * rowSize, rowSize);
            float stdCfg = std(cfg, b * rowSize, rowSize);
            float ratio = stdText / stdCfg;
            for (int i = b * rowSize, end = i + rowSize; i < end; i++) {
                float x = cfg[i];
                cfg[i] = r * (x * ratio) + keep * x;
            }
        }
    }

    /** torch's {@code std} (correction 1) of {@code len} floats from {@code off}: Welford in double, float result. */
    private static float std(float[] a, int off, int len) {
        double mean = 0;
        double m2 = 0;
        for (int i = 0; i < len; i++) {
            double x = a[off + i];
            double d = x - mean;
            mean += d / (i + 1);
            m2 += d * (x - mean);
        }
        return (float) Math.sqrt(m2 / (len - 1));
    }

    /** Fails the generation at the first step whose latents hold a NaN or an infinity (one pass, no allocation). */
    static void checkFinite(float[] latents, int step, int steps, double t) {
        for (int i = 0; i < latents.length; i++) {
            if (!Float.isFinite(latents[i])) {
                throw new NonFiniteLatentsException("the latents became " + latents[i] + " at step " + (step + 1) + " of "
                        + steps + " (timestep " + t + "): the scheduler's configuration or the model's output is out of "
                        + "range; no image is returned");
            }
        }
    }

    /**
     * diffusers' decode: {@code vae.decode(latents / scaling_factor)} (post_quant_conv, then the decoder) and
     * {@code VaeImageProcessor.postprocess} to 8-bit RGB.
     *
     * @param latents the final latents [n,4,h,w] flat
     * @param plan    the plan
     * @return one image per latent
     */
    protected List<RgbImage> decodeLatents(float[] latents, Plan plan) {
        int rowSize = plan.rowSize();
        long[] shape = {1, model.latentChannels(), plan.latentHeight(), plan.latentWidth()};
        float sf = (float) model.scalingFactor();
        float[] z = new float[rowSize];
        float[] q = new float[rowSize];
        float[] pixels = new float[3 * plan.height() * plan.width()];
        List<RgbImage> images = new ArrayList<>(plan.images());
        // optimum-neuron's decoder is vae.decode itself: post_quant_conv inside, no artifact of its own
        InvocationPool postQuantConv = model.decoderIncludesPostQuantConv() ? null
                : components.pool(ArtifactRole.VAE_POST_QUANT_CONV);
        InvocationPool decoder = components.pool(ArtifactRole.VAE_DECODER);
        Invocation pqc = postQuantConv == null ? null : postQuantConv.acquire(shape);
        Invocation dec = null;
        try {
            dec = decoder.acquire(shape);
            for (int i = 0; i < plan.images(); i++) {
                for (int j = 0; j < rowSize; j++) {
                    z[j] = latents[i * rowSize + j] / sf;  // float32 division, as torch's latents / scaling_factor
                }
                if (pqc != null) {
                    pqc.write(0, 0, z, 0, rowSize);
                    pqc.run();
                    read(pqc, ArtifactRole.VAE_POST_QUANT_CONV, "latents", shape, q);
                } else {
                    System.arraycopy(z, 0, q, 0, rowSize);
                }
                dec.write(0, 0, q, 0, rowSize);
                dec.run();
                read(dec, ArtifactRole.VAE_DECODER, "image", new long[] {1, 3, plan.height(), plan.width()}, pixels);
                images.add(RgbImage.fromDecoderOutput(pixels, 0, plan.height(), plan.width()));
            }
        } finally {
            if (pqc != null) {
                postQuantConv.release(pqc);
            }
            if (dec != null) {
                decoder.release(dec);
            }
        }
        return images;
    }

    /**
     * The VAE encoder (with quant_conv) on images: the latent distribution's parameters, diffusers'
     * {@code vae.encode(image).latent_dist} as {@code moments} = (mean, logvar) along the channels. Image-to-image
     * and inpainting start from it.
     *
     * @param pixels images [n,3,height,width] flat, float32 in [-1,1] (diffusers' {@code VaeImageProcessor.preprocess})
     * @param n      images
     * @param height image height
     * @param width  image width
     * @return moments [n, 2 x latent channels, height/8, width/8] flat: per image the mean's channels, then the logvar's
     * @throws InvalidRequestException (field {@code image}) when the model has no VAE encoder, naming its file
     */
    protected float[] encodeImage(float[] pixels, int n, int height, int width) {
        InvocationPool encoder = components.vaeEncoder();
        int vs = model.vaeScaleFactor();
        long[] in = {1, 3, height, width};
        long[] out = {1, 2L * model.latentChannels(), height / vs, width / vs};
        int inRow = 3 * height * width;
        int outRow = Math.toIntExact(out[1] * out[2] * out[3]);
        if (pixels.length != n * inRow) {
            throw new IllegalArgumentException(pixels.length + " values for " + n + " images of " + Arrays.toString(in));
        }
        float[] moments = new float[n * outRow];
        float[] row = new float[outRow];
        Invocation inv = encoder.acquire(in);
        try {
            for (int i = 0; i < n; i++) {
                inv.write(0, 0, pixels, i * inRow, inRow);
                inv.run();
                read(inv, ArtifactRole.VAE_ENCODER, "latent_parameters", out, row);
                System.arraycopy(row, 0, moments, i * outRow, outRow);
            }
        } finally {
            encoder.release(inv);
        }
        record("moments", moments);
        return moments;
    }

    /**
     * diffusers' {@code scaling_factor * retrieve_latents(vae.encode(image), generator)}: the VAE encoder's latent
     * distribution ({@code DiagonalGaussianDistribution}) sampled with one draw from the request's generator, as
     * diffusers' {@code sample}: {@code logvar = clamp(logvar, -30, 20)}, {@code std = exp(0.5 * logvar)},
     * {@code mean + std * randn(mean.shape)}, then times {@code vae/config.json}'s {@code scaling_factor}; float32
     * throughout.
     *
     * @param image     one preprocessed image [3, H, W] ({@code VaeImageProcessor.preprocess})
     * @param generator the request's generator: one draw of [1, latent channels, H/8, W/8]
     * @return the scaled latents [1, latent channels, H/8, W/8] flat
     * @throws InvalidRequestException (field {@code image}) when the model has no VAE encoder, naming its file
     */
    protected float[] encodeLatents(FloatImage image, TorchGenerator generator) {
        float[] moments = encodeImage(image.chw(), 1, image.height(), image.width());
        int size = moments.length / 2;
        float[] eps = new float[size];
        generator.randn(eps);
        float sf = (float) model.scalingFactor();
        float[] z = new float[size];
        for (int i = 0; i < size; i++) {
            float logvar = Math.min(Math.max(moments[size + i], -30f), 20f);
            float std = (float) Math.exp(0.5f * logvar);
            z[i] = sf * (moments[i] + std * eps[i]);
        }
        return z;
    }

    /**
     * diffusers' image-to-image start image ({@code image_processor.preprocess(image)}): its own size floored to a
     * multiple of 8 (Pillow's LANCZOS only when that changes it), or the request's height/width when it gives them (an
     * extension: diffusers' image-to-image pipelines take no size). Refuses initial latents and a model without a VAE
     * encoder before any work.
     *
     * @param req the request, with an image
     * @return the preprocessed image [3, H, W] in [-1, 1]
     * @throws InvalidRequestException (field {@code latents} or {@code image})
     */
    protected FloatImage startImage(Request req) {
        if (req.latents() != null) {
            throw new InvalidRequestException("latents", "image-to-image starts from the image's latents; initial "
                    + "latents cannot be given");
        }
        components.vaeEncoder();  // a model without an encoder is refused before any work
        RgbImage start = req.image();
        return req.height() == null && req.width() == null ? VaeImageProcessor.preprocess(start)
                : VaeImageProcessor.preprocess(start, req.height() != null ? req.height() : start.height(),
                        req.width() != null ? req.width() : start.width());
    }

    /**
     * {@link #checkInputs(Request, int, int, String, String)} at an image-to-image start image's size (a misfit is
     * named by {@code height}/{@code width} when the request gave them, else by {@code image}).
     *
     * @param req   the request
     * @param image its preprocessed start image ({@link #startImage})
     * @return the plan
     */
    protected Plan checkInputs(Request req, FloatImage image) {
        return checkInputs(req, image.height(), image.width(), req.height() != null ? "height" : "image",
                req.width() != null ? "width" : "image");
    }

    /**
     * diffusers' image-to-image {@code prepare_latents}: {@code scaling_factor} x the start image's posterior sample
     * (draw 1, once for all images), duplicated to the batch; the noise (draw 2); {@code add_noise} at the first
     * timestep.
     *
     * @param image     the preprocessed start image
     * @param plan      the plan (its scheduler and images)
     * @param generator the request's generator
     * @param t0        the first timestep that runs
     * @return the start latents [n, 4, h, w] flat
     */
    protected float[] noisedImageLatents(FloatImage image, Plan plan, TorchGenerator generator, double t0) {
        float[] initLatents = repeat(encodeLatents(image, generator), plan.images());
        float[] noise = new float[initLatents.length];
        generator.randn(noise);
        float[] latents = new float[initLatents.length];
        plan.scheduler().addNoise(initLatents, noise, t0, latents);
        record("init_latents", latents);
        return latents;
    }

    /**
     * Refuses a task the model's UNet does not take: an inpainting UNet (its sample has the mask and the masked
     * image's latents besides the latents) runs only inpainting, as diffusers' other pipelines fail on it.
     *
     * @param inpainting true for the inpainting task
     * @throws InvalidRequestException (field {@code mask_image}) for an inpainting UNet without a mask
     */
    protected void checkUnetTakes(boolean inpainting) {
        if (!inpainting && model.inpaintingUnet()) {
            throw new InvalidRequestException("mask_image", "this is an inpainting model (its UNet takes "
                    + model.unetInChannels() + " input channels: latents, mask and masked-image latents): give a "
                    + "start image and a mask");
        }
    }

    /** {@return {@code n} copies of one image's latents, as diffusers' {@code torch.cat}/{@code repeat} to the batch} */
    static float[] repeat(float[] one, int n) {
        float[] out = new float[one.length * n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(one, 0, out, i * one.length, one.length);
        }
        return out;
    }

    /** Reads output {@code name} of a role's invocation, checked to have {@code shape}, into {@code out}. */
    private static void read(Invocation inv, ArtifactRole role, String name, long[] shape, float[] out) {
        List<TensorSpec> outs = inv.outputs();
        int i = TensorBinding.output(role, outs, name);
        if (!outs.get(i).accepts(shape)) {
            throw new BackendException(role + " returned " + name + " " + outs.get(i) + ", expected "
                    + Arrays.toString(shape));
        }
        inv.read(i, out, 0);
    }
}
