package dev.sdjvm;

import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.PipelineArtifacts;
import dev.sdjvm.backend.TensorBinding;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.GenerationCancelledException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.scheduler.Scheduler;
import dev.sdjvm.scheduler.Schedulers;
import dev.sdjvm.tensor.TorchGenerator;
import dev.sdjvm.tokenizer.ClipTokenizer;
import dev.sdjvm.tokenizer.Encoding;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * diffusers' {@code StableDiffusionPipeline.__call__} over the four artifacts of a model directory, in its stages:
 * {@link #checkInputs}, {@link #encodePrompt}, {@link #prepareLatents}, {@link #denoise}, {@link #decodeLatents}.
 * Pure Java apart from the artifacts, which run on the backend chosen once at load time ({@link ArtifactBackend}:
 * libtorch on the CPU, or the Neuron runtime running each artifact's NEFF).
 *
 * <p>Thread-safe: {@link #generate} may run on several threads at once; each call has its own scheduler, generator
 * and invocations, so results depend only on the request (and its seed). Owns its artifacts: {@link #close} frees them.
 */
final class DiffusionPipeline implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DiffusionPipeline.class);
    /** The scheduler AWS's SD 2.1 deployment swaps in: {@code DPMSolverMultistepScheduler.from_config(config)}. */
    public static final String DEFAULT_SCHEDULER = "DPMSolverMultistepScheduler";

    private final ModelDirectory model;
    private final ClipTokenizer tokenizer;
    private final PipelineArtifacts artifacts;
    private final InvocationPool textEncoder;
    private final List<InvocationPool> unetPools;
    private final InvocationPool postQuantConv;
    private final InvocationPool decoder;
    private final ExecutorService pool;
    private final UNetRunner unet;

    private DiffusionPipeline(ModelDirectory model, ClipTokenizer tokenizer, PipelineArtifacts artifacts) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.artifacts = artifacts;
        this.textEncoder = new InvocationPool(artifacts.textEncoder());
        this.unetPools = artifacts.unets().stream().map(InvocationPool::new).toList();
        this.postQuantConv = new InvocationPool(artifacts.postQuantConv());
        this.decoder = new InvocationPool(artifacts.decoder());
        int replicas = artifacts.unets().size();
        this.pool = replicas > 1 ? Executors.newFixedThreadPool(replicas - 1, daemonThreads()) : null;
        this.unet = new UNetRunner(unetPools, pool, model.latentChannels(), model.latentHeight(), model.latentWidth());
        LOG.info("loaded {} ({}x{}, latents {}x{}x{}): {}", model.root(), model.height(), model.width(),
                model.latentChannels(), model.latentHeight(), model.latentWidth(), artifacts.specs().values());
    }

    /**
     * Loads pipeline {@code index} of a model directory on a backend.
     *
     * @param unetReplicas UNet copies for concurrent chunks (CFG data parallel), &gt;= 1
     * @param warmup       run each artifact once to check shapes (CPU: and find dtype/batch without a manifest)
     */
    public static DiffusionPipeline load(ModelDirectory model, ClipTokenizer tokenizer, ArtifactBackend backend, int index,
                                         int unetReplicas, boolean warmup) {
        PipelineArtifacts a = backend.loadPipeline(model, index, unetReplicas, warmup);
        try {
            return new DiffusionPipeline(model, tokenizer, a);
        } catch (RuntimeException e) {
            PipelineArtifacts.closeQuietly(List.of(a), e);
            throw e;
        }
    }

    /** The model directory. */
    public ModelDirectory model() {
        return model;
    }

    /** The tokenizer. */
    public ClipTokenizer tokenizer() {
        return tokenizer;
    }

    /** What was found out about each artifact (dtype, batch, device, source). */
    public Map<ArtifactRole, ArtifactSpec> specs() {
        return artifacts.specs();
    }

    /** The loaded artifacts. */
    public PipelineArtifacts artifacts() {
        return artifacts;
    }

    /** Number of UNet replicas. */
    public int unetReplicas() {
        return unet.replicas();
    }

    /** The scheduler name a request resolves to: its own, else {@value #DEFAULT_SCHEDULER}. */
    public static String schedulerName(GenerationRequest r) {
        return r.scheduler() == null || r.scheduler().isBlank() ? DEFAULT_SCHEDULER : r.scheduler();
    }

    /** Builds the scheduler a request asks for (before any native work). */
    public Scheduler scheduler(GenerationRequest r) {
        String name = schedulerName(r);
        if ("config".equalsIgnoreCase(name)) {
            return Schedulers.fromConfig(model.schedulerConfig(), r.schedulerOverrides());
        }
        return Schedulers.create(name, model.schedulerConfig(), r.schedulerOverrides());
    }

    /** A request checked against this model: sizes, scheduler and seed resolved. */
    record Plan(int height, int width, int latentHeight, int latentWidth, int images, boolean cfg, float guidance,
                long seed, Scheduler scheduler, int rowSize) {
        int rows() {
            return cfg ? 2 * images : images;
        }
    }

    /**
     * Generates images. See {@link dev.sdjvm.StableDiffusion#generate(GenerationRequest)}.
     *
     * @param cancelled checked at every step (e.g. the pipeline is closing); may be null
     */
    public GenerationResult generate(GenerationRequest req, BooleanSupplier cancelled) {
        long t0 = System.nanoTime();
        // 1. Check inputs (the request checked itself when it was built; here: against this model)
        Plan plan = checkInputs(req);
        // 2.-3. Encode the prompt (negative first under classifier-free guidance)
        long tTok = System.nanoTime();
        Encoding pos = tokenizer.tokenize(req.prompt());
        Encoding neg = plan.cfg() ? tokenizer.tokenize(req.negativePrompt() == null ? "" : req.negativePrompt()) : null;
        warnTruncated(pos, neg);
        long tEnc = System.nanoTime();
        float[] embeddings = encodePrompt(pos, neg, plan);
        long tLat = System.nanoTime();
        // 4. Timesteps were set in checkInputs, before the latents, as diffusers does
        // 5. Prepare latents: randn([n,4,h,w], generator) * init_noise_sigma
        TorchGenerator generator = new TorchGenerator(plan.seed());
        float[] latents = prepareLatents(req.latents(), plan, generator);
        // 6. Stochastic schedulers continue the same generator, as diffusers passes it to step()
        plan.scheduler().setNoiseSource(generator::randn);
        // 7. Denoising loop
        long loopStart = System.nanoTime();
        long unetNanos = denoise(latents, embeddings, plan, req.listener(), req.deadline(), cancelled);
        long loopEnd = System.nanoTime();
        // 8. Decode: vae_decoder(post_quant_conv(latents / scaling_factor)), postprocessed to 8-bit RGB
        List<RgbImage> images = decodeLatents(latents, plan);
        long end = System.nanoTime();
        var timings = new GenerationResult.Timings(tEnc - tTok, tLat - tEnc, loopEnd - loopStart, unetNanos,
                end - loopEnd, end - t0, plan.scheduler().timesteps().length);
        return new GenerationResult(List.copyOf(images), plan.seed(), latents, timings, pos.truncated(),
                plan.scheduler().name());
    }

    /** diffusers' {@code check_inputs} against the model: size, latents, scheduler, steps. */
    Plan checkInputs(GenerationRequest req) {
        final int vs = model.vaeScaleFactor();
        final int height = req.height() != null ? req.height() : model.height();
        final int width = req.width() != null ? req.width() : model.width();
        if (height != model.height() || width != model.width()) {
            // CPU-traced artifacts take any size; compiled ones (a static batch, Neuron) only their own
            if (unet.fixedSize()) {
                throw new InvalidRequestException(height != model.height() ? "height" : "width", "the artifacts are compiled for "
                        + model.height() + "x" + model.width() + " images; got " + height + "x" + width);
            }
            if (height % vs != 0 || width % vs != 0) {
                throw new InvalidRequestException(height % vs != 0 ? "height" : "width", "must be a multiple of "
                        + vs + " (the VAE scale factor); got " + height + "x" + width);
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
        scheduler.setTimesteps(req.steps());
        long seed = req.seed() != null ? req.seed() : ThreadLocalRandom.current().nextLong(0, 1L << 53);
        return new Plan(height, width, lh, lw, n, req.doClassifierFreeGuidance(), (float) req.guidanceScale(), seed,
                scheduler, rowSize);
    }

    private void warnTruncated(Encoding pos, Encoding neg) {
        if (pos.truncated()) {
            LOG.warn("The prompt has {} tokens; the text encoder takes {}: the part after token {} was truncated",
                    pos.tokenCount(), tokenizer.maxLength() - 2, tokenizer.maxLength() - 2);
        }
        if (neg != null && neg.truncated()) {
            LOG.warn("The negative prompt has {} tokens and was truncated to {}", neg.tokenCount(), tokenizer.maxLength() - 2);
        }
    }

    /**
     * diffusers' {@code encode_prompt}: the text encoder's {@code last_hidden_state} for each prompt, as float32, one
     * row per UNet row: {@code [uncond] * n + [cond] * n} under CFG, else {@code [cond] * n}.
     */
    float[] encodePrompt(Encoding pos, Encoding neg, Plan plan) {
        float[] cond = encode(pos);
        float[] uncond = neg != null ? encode(neg) : null;
        int row = cond.length;
        float[] emb = new float[plan.rows() * row];
        for (int r = 0; r < plan.rows(); r++) {
            System.arraycopy(plan.cfg() && r < plan.images() ? uncond : cond, 0, emb, r * row, row);
        }
        return emb;
    }

    private float[] encode(Encoding e) {
        int[] ids = e.inputIds();
        Invocation inv = textEncoder.acquire(new long[] {1, ids.length});
        try {
            inv.write(0, 0, ids, 0, ids.length);
            inv.run();
            List<TensorSpec> outs = inv.outputs();
            int k = TensorBinding.output(ArtifactRole.TEXT_ENCODER, outs, "last_hidden_state");
            TensorSpec h = outs.get(k);
            if (h.rank() != 3 || h.dim(0) != 1 || h.dim(1) != ids.length) {
                throw new BackendException("text_encoder returned last_hidden_state " + h + "; expected [1," + ids.length
                        + ",H]");
            }
            float[] out = new float[(int) h.numel()];
            inv.read(k, out, 0);  // diffusers: prompt_embeds.to(float32) in a float32 pipeline
            return out;
        } finally {
            textEncoder.release(inv);
        }
    }

    /** diffusers' {@code prepare_latents}: the caller's latents, or {@code randn(generator)}, times init_noise_sigma. */
    float[] prepareLatents(float[] given, Plan plan, TorchGenerator generator) {
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
     * The denoising loop: scale the input, run the UNet on every row, combine the CFG halves in float32, step the
     * scheduler in place. Returns the nanoseconds spent in UNet calls.
     */
    long denoise(float[] latents, float[] embeddings, Plan plan, StepListener listener, Instant deadline,
                 BooleanSupplier cancelled) {
        Scheduler scheduler = plan.scheduler();
        double[] timesteps = scheduler.timesteps();
        int n = plan.images();
        int rowSize = plan.rowSize();
        boolean cfg = plan.cfg();
        float g = plan.guidance();
        float[] scaled = new float[latents.length];
        float[] noise = new float[plan.rows() * rowSize];
        float[] eps = cfg ? new float[latents.length] : noise;
        int hidden = embeddings.length / plan.rows() / tokenizer.maxLength();
        long unetNanos = 0;
        long loopStart = System.nanoTime();
        try (UNetRunner.Session session = unet.open(plan.rows(), n,
                new long[] {model.latentChannels(), plan.latentHeight(), plan.latentWidth()}, embeddings, hidden)) {
            for (int k = 0; k < timesteps.length; k++) {
                double t = timesteps[k];
                scheduler.scaleModelInput(latents, t, scaled);
                long u0 = System.nanoTime();
                session.run(scaled, (float) t, noise);
                unetNanos += System.nanoTime() - u0;
                if (cfg) {
                    // noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond), float32
                    int half = n * rowSize;
                    for (int i = 0; i < half; i++) {
                        float u = noise[i];
                        eps[i] = u + g * (noise[half + i] - u);
                    }
                }
                scheduler.step(eps, t, latents, latents);
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

    /** diffusers' decode: {@code vae.decode(latents / scaling_factor)} then {@code VaeImageProcessor.postprocess}. */
    List<RgbImage> decodeLatents(float[] latents, Plan plan) {
        int rowSize = plan.rowSize();
        long[] shape = {1, model.latentChannels(), plan.latentHeight(), plan.latentWidth()};
        float sf = (float) model.scalingFactor();
        float[] z = new float[rowSize];
        float[] q = new float[rowSize];
        float[] pixels = new float[3 * plan.height() * plan.width()];
        List<RgbImage> images = new ArrayList<>(plan.images());
        Invocation pqc = postQuantConv.acquire(shape);
        Invocation dec = null;
        try {
            dec = decoder.acquire(shape);
            for (int i = 0; i < plan.images(); i++) {
                for (int j = 0; j < rowSize; j++) {
                    z[j] = latents[i * rowSize + j] / sf;  // float32 division, as torch's latents / scaling_factor
                }
                pqc.write(0, 0, z, 0, rowSize);
                pqc.run();
                read(pqc, ArtifactRole.VAE_POST_QUANT_CONV, "latents", shape, q);
                dec.write(0, 0, q, 0, rowSize);
                dec.run();
                read(dec, ArtifactRole.VAE_DECODER, "image", new long[] {1, 3, plan.height(), plan.width()}, pixels);
                images.add(RgbImage.fromDecoderOutput(pixels, 0, plan.height(), plan.width()));
            }
        } finally {
            postQuantConv.release(pqc);
            if (dec != null) {
                decoder.release(dec);
            }
        }
        return images;
    }

    /** Reads output {@code name} of the invocation's role, checked to have {@code shape}, into {@code out}. */
    private static void read(Invocation inv, ArtifactRole role, String name, long[] shape, float[] out) {
        List<TensorSpec> outs = inv.outputs();
        int i = TensorBinding.output(role, outs, name);
        if (!outs.get(i).accepts(shape)) {
            throw new BackendException(role + " returned " + name + " " + outs.get(i) + ", expected " + Arrays.toString(shape));
        }
        inv.read(i, out, 0);
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
        textEncoder.close();
        unetPools.forEach(InvocationPool::close);
        postQuantConv.close();
        decoder.close();
        artifacts.close();
    }

    private static java.util.concurrent.ThreadFactory daemonThreads() {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, "sdjvm-unet-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
