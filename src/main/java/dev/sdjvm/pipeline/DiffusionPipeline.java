package dev.sdjvm.pipeline;

import dev.sdjvm.BackendException;
import dev.sdjvm.GenerationCancelledException;
import dev.sdjvm.GenerationRequest;
import dev.sdjvm.GenerationResult;
import dev.sdjvm.InvalidRequestException;
import dev.sdjvm.ModelLoadException;
import dev.sdjvm.StepListener;
import dev.sdjvm.backend.torch.Tensors;
import dev.sdjvm.backend.torch.TorchModule;
import dev.sdjvm.image.RgbImage;
import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.Manifest;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.scheduler.Scheduler;
import dev.sdjvm.scheduler.Schedulers;
import dev.sdjvm.tokenizer.ClipTokenizer;
import dev.sdjvm.tokenizer.Encoding;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Generator;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * diffusers' {@code StableDiffusionPipeline.__call__} over the four TorchScript artifacts of a model directory.
 * Thread-safe: {@link #generate} may run on several threads at once; each call has its own scheduler, generator
 * and native tensors, so results depend only on the request (and its seed). Owns its modules: {@link #close} frees them.
 */
public final class DiffusionPipeline implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DiffusionPipeline.class);
    /** The scheduler AWS's SD 2.1 deployment swaps in: {@code DPMSolverMultistepScheduler.from_config(config)}. */
    public static final String DEFAULT_SCHEDULER = "DPMSolverMultistepScheduler";

    private final ModelDirectory model;
    private final ClipTokenizer tokenizer;
    private final TorchModule textEncoder;
    private final List<TorchModule> unets;
    private final TorchModule postQuantConv;
    private final TorchModule decoder;
    private final Map<String, ArtifactSpec> specs = new LinkedHashMap<>();
    private final ExecutorService pool;
    private final UNetRunner unetRunner;
    private final int hiddenSize;

    private DiffusionPipeline(ModelDirectory model, ClipTokenizer tokenizer, TorchModule textEncoder,
                              List<TorchModule> unets, TorchModule postQuantConv, TorchModule decoder,
                              int unetReplicas, boolean warmup) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.textEncoder = textEncoder;
        this.unets = unets;
        this.postQuantConv = postQuantConv;
        this.decoder = decoder;
        this.pool = unetReplicas > 1 ? Executors.newFixedThreadPool(unetReplicas - 1, daemonThreads()) : null;
        Manifest mf = model.manifest();
        try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
            specs.put("text_encoder", specFromManifestOrParams("text_encoder", textEncoder, mf));
            // text encoder check: [1,77] ids -> [1,77,H]
            int h = warmup ? checkTextEncoder() : 0;
            ArtifactSpec unetSpec = specFromManifestOrParams("unet", unets.get(0), mf);
            if (warmup || unetSpec.inputDType() == null) {  // no dtype: a "probe" spec, learnt by running it
                unetSpec = probeUnet(unetSpec, h);
            }
            specs.put("unet", unetSpec);
            specs.put("vae_post_quant_conv", specFromManifestOrParams("vae_post_quant_conv", postQuantConv, mf));
            specs.put("vae_decoder", specFromManifestOrParams("vae_decoder", decoder, mf));
            for (String role : List.of("vae_post_quant_conv", "vae_decoder")) {
                if (specs.get(role).inputDType() == null) {
                    specs.put(role, new ArtifactSpec(role, specs.get(role).file(), DType.FLOAT32,
                            specs.get(role).batch(), "default"));
                }
            }
            if (warmup) {
                checkVae();
            }
            this.hiddenSize = h;
        }
        this.unetRunner = new UNetRunner(unets, specs.get("unet").inputDType(), specs.get("unet").batch(), pool);
        LOG.info("loaded {} ({}x{}, latents {}x{}x{}): {}", model.root(), model.height(), model.width(),
                model.latentChannels(), model.latentHeight(), model.latentWidth(), specs.values());
    }

    /**
     * Loads a model directory's artifacts into libtorch.
     *
     * @param unetReplicas UNet copies for concurrent chunks (CFG data parallel), &gt;= 1
     * @param warmup       run each artifact once to check shapes and find dtype/batch of artifacts without a manifest
     */
    public static DiffusionPipeline load(ModelDirectory model, int unetReplicas, boolean warmup) {
        ClipTokenizer tokenizer = ClipTokenizer.load(model.tokenizerDir());
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            TorchModule te = track(opened, TorchModule.load(model.artifacts().get("text_encoder"), "text_encoder"));
            List<TorchModule> unets = new ArrayList<>();
            for (int i = 0; i < unetReplicas; i++) {
                unets.add(track(opened, TorchModule.load(model.artifacts().get("unet"), "unet")));
            }
            TorchModule pqc = track(opened, TorchModule.load(model.artifacts().get("vae_post_quant_conv"), "vae_post_quant_conv"));
            TorchModule dec = track(opened, TorchModule.load(model.artifacts().get("vae_decoder"), "vae_decoder"));
            return new DiffusionPipeline(model, tokenizer, te, unets, pqc, dec, unetReplicas, warmup);
        } catch (RuntimeException e) {
            for (AutoCloseable c : opened) {
                try {
                    c.close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }

    private static <T extends AutoCloseable> T track(List<AutoCloseable> opened, T c) {
        opened.add(c);
        return c;
    }

    private ArtifactSpec specFromManifestOrParams(String role, TorchModule m, Manifest mf) {
        if (mf != null && mf.artifacts().containsKey(role)) {
            Manifest.Artifact a = mf.artifacts().get(role);
            // the text encoder takes int64 ids: report the dtype it computes in (its parameters)
            DType d = a.floatInputDType() != null ? a.floatInputDType() : m.parameterDType().orElse(null);
            return new ArtifactSpec(role, m.file(), d, a.batch(), "manifest");
        }
        var d = m.parameterDType();
        if (d.isPresent()) {
            // a module with its weights in the graph was traced for CPU: any batch
            return new ArtifactSpec(role, m.file(), d.get(), null, "parameters");
        }
        return new ArtifactSpec(role, m.file(), null, null, "probe");
    }

    private int checkTextEncoder() {
        TorchModule m = textEncoder;
        try (PointerScope s = new PointerScope()) {
            Tensor ids = Tensors.fromIntsAsLong(tokenizer.tokenize("").inputIds(), 1, tokenizer.maxLength());
            Tensor out;
            try {
                out = m.forwardTensor("last_hidden_state", ids);
            } catch (BackendException e) {
                throw new ModelLoadException(m.file(), "text_encoder does not accept int64 input_ids [1,"
                        + tokenizer.maxLength() + "]: " + e.getMessage(), e);
            }
            long[] sh = Tensors.shape(out);
            if (sh.length != 3 || sh[0] != 1 || sh[1] != tokenizer.maxLength()) {
                throw new ModelLoadException(m.file(), "text_encoder returned " + java.util.Arrays.toString(sh)
                        + ", expected last_hidden_state [1," + tokenizer.maxLength() + ",H]");
            }
            return Math.toIntExact(sh[2]);
        }
    }

    /** Finds the UNet's dtype and batch by running it, and checks that it fits the text encoder and the latents. */
    private ArtifactSpec probeUnet(ArtifactSpec spec, int hidden) {
        TorchModule m = unets.get(0);
        if (hidden == 0) {
            hidden = checkTextEncoder();
        }
        List<DType> dtypes = spec.inputDType() != null ? List.of(spec.inputDType())
                : List.of(DType.BFLOAT16, DType.FLOAT32);  // AWS compiles the UNet in bf16
        BackendException last = null;
        for (DType d : dtypes) {
            try {
                runUnetOnce(m, d, spec.batch() != null ? spec.batch() : 1, hidden);
            } catch (BackendException e) {
                last = e;
                continue;
            }
            Integer batch = spec.batch();
            String source = spec.source();
            if (batch == null && "probe".equals(source)) {
                // no weights in the graph (e.g. Neuron-compiled): static shapes are likely; try batch 2
                try {
                    runUnetOnce(m, d, 2, hidden);
                } catch (BackendException e) {
                    batch = 1;
                }
            }
            return new ArtifactSpec("unet", m.file(), d, batch, source);
        }
        throw new ModelLoadException(m.file(), "unet does not accept sample [B," + model.latentChannels() + ","
                + model.latentHeight() + "," + model.latentWidth() + "], timestep [B], encoder_hidden_states [B,77,"
                + hidden + "] (text_encoder hidden size) in " + dtypes + ": " + (last == null ? "" : last.getMessage()), last);
    }

    private void runUnetOnce(TorchModule m, DType d, int b, int hidden) {
        try (PointerScope s = new PointerScope()) {
            Tensor x = Tensors.to(Tensors.empty(DType.FLOAT32, b, model.latentChannels(), model.latentHeight(),
                    model.latentWidth()).zero_(), d);
            Tensor t = Tensors.to(Tensors.empty(DType.FLOAT32, b).fill_(new Scalar(999.0)), d);
            Tensor e = Tensors.to(Tensors.empty(DType.FLOAT32, b, tokenizer.maxLength(), hidden).zero_(), d);
            Tensor out = m.forwardTensor("sample", x, t, e);
            if (!java.util.Arrays.equals(Tensors.shape(out), Tensors.shape(x))) {
                throw new ModelLoadException(m.file(), "unet returned " + Tensors.shapeString(out) + " for a sample "
                        + Tensors.shapeString(x));
            }
        }
    }

    private void checkVae() {
        try (PointerScope s = new PointerScope()) {
            long[] lat = {1, model.latentChannels(), model.latentHeight(), model.latentWidth()};
            Tensor z = Tensors.empty(DType.FLOAT32, lat).zero_();
            Tensor q;
            try {
                q = postQuantConv.forwardTensor(null, Tensors.to(z, specs.get("vae_post_quant_conv").inputDType()));
            } catch (BackendException e) {
                throw new ModelLoadException(postQuantConv.file(), "vae_post_quant_conv does not accept latents "
                        + java.util.Arrays.toString(lat) + ": " + e.getMessage(), e);
            }
            if (!java.util.Arrays.equals(Tensors.shape(q), lat)) {
                throw new ModelLoadException(postQuantConv.file(), "vae_post_quant_conv returned " + Tensors.shapeString(q)
                        + ", expected " + java.util.Arrays.toString(lat));
            }
            Tensor img;
            try {
                img = decoder.forwardTensor("sample", Tensors.to(q, specs.get("vae_decoder").inputDType()));
            } catch (BackendException e) {
                throw new ModelLoadException(decoder.file(), "vae_decoder does not accept latents "
                        + java.util.Arrays.toString(lat) + ": " + e.getMessage(), e);
            }
            long[] expect = {1, 3, model.height(), model.width()};
            if (!java.util.Arrays.equals(Tensors.shape(img), expect)) {
                throw new ModelLoadException(decoder.file(), "vae_decoder returned " + Tensors.shapeString(img)
                        + ", expected " + java.util.Arrays.toString(expect) + " (vae/config.json block_out_channels gives scale "
                        + model.vaeScaleFactor() + ")");
            }
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

    /** What was found out about each artifact (dtype, batch, source). */
    public Map<String, ArtifactSpec> specs() {
        return java.util.Collections.unmodifiableMap(specs);
    }

    /** Number of UNet replicas. */
    public int unetReplicas() {
        return unets.size();
    }

    /** Builds the scheduler a request asks for (checked before any native work). */
    public Scheduler scheduler(GenerationRequest r) {
        String name = r.scheduler() == null || r.scheduler().isBlank() ? DEFAULT_SCHEDULER : r.scheduler();
        if ("config".equalsIgnoreCase(name)) {
            return Schedulers.fromConfig(model.schedulerConfig(), r.schedulerOverrides());
        }
        return Schedulers.create(name, model.schedulerConfig(), r.schedulerOverrides());
    }

    /**
     * Generates images. See {@link dev.sdjvm.StableDiffusion#generate(GenerationRequest)}.
     *
     * @param cancelled checked at every step (e.g. the pipeline is closing); may be null
     */
    public GenerationResult generate(GenerationRequest req, java.util.function.BooleanSupplier cancelled) {
        long t0 = System.nanoTime();
        // 1. Check inputs
        req.validate();
        final int vs = model.vaeScaleFactor();
        final int height = req.height() != null ? req.height() : model.height();
        final int width = req.width() != null ? req.width() : model.width();
        if (height != model.height() || width != model.width()) {
            // CPU-traced artifacts take any size; compiled ones (a static batch, Neuron) only their own
            ArtifactSpec u = specs.get("unet");
            boolean fixed = u.batch() != null || "probe".equals(u.source())
                    || model.manifest() != null && "neuron".equalsIgnoreCase(model.manifest().target());
            if (fixed) {
                throw new InvalidRequestException(height != model.height() ? "height" : "width", "the artifacts are compiled for "
                        + model.height() + "x" + model.width() + " images; got " + height + "x" + width);
            }
            if (height % vs != 0 || width % vs != 0) {
                throw new InvalidRequestException(height % vs != 0 ? "height" : "width", "must be a multiple of "
                        + vs + " (the VAE scale factor); got " + height + "x" + width);
            }
        }
        final int lh = height / vs;
        final int lw = width / vs;
        if (req.seed() != null && req.seed() < 0) {
            throw new InvalidRequestException("seed", "must be >= 0, got " + req.seed());
        }
        final int n = req.numImages();
        Scheduler scheduler = scheduler(req);
        scheduler.setBatchSize(n);  // per-sample thresholding over the [n,4,h,w] latents
        scheduler.setTimesteps(req.steps());
        final int rowSize = model.latentChannels() * lh * lw;
        if (req.latents() != null && req.latents().length != n * rowSize) {
            throw new InvalidRequestException("latents", "expected " + n + "x" + model.latentChannels() + "x"
                    + lh + "x" + lw + " = " + (n * rowSize) + " values, got "
                    + req.latents().length);
        }

        // 2. Define call parameters
        boolean cfg = req.doClassifierFreeGuidance();
        long seed = req.seed() != null ? req.seed() : ThreadLocalRandom.current().nextLong(0, 1L << 53);
        float g = (float) req.guidanceScale();

        try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
            // 3. Encode input prompt (diffusers encode_prompt: negative first under CFG)
            long tTok = System.nanoTime();
            Encoding pos = tokenizer.tokenize(req.prompt());
            if (pos.truncated()) {
                LOG.warn("The prompt has {} tokens; the text encoder takes {}: the part after token {} was truncated",
                        pos.tokenCount(), tokenizer.maxLength() - 2, tokenizer.maxLength() - 2);
            }
            Encoding neg = cfg ? tokenizer.tokenize(req.negativePrompt() == null ? "" : req.negativePrompt()) : null;
            if (neg != null && neg.truncated()) {
                LOG.warn("The negative prompt has {} tokens and was truncated to {}", neg.tokenCount(), tokenizer.maxLength() - 2);
            }
            long tEnc = System.nanoTime();
            Tensor posEmb = encode(pos);
            Tensor negEmb = cfg ? encode(neg) : null;
            int rows = cfg ? 2 * n : n;
            long[] embShape = Tensors.shape(posEmb);
            Tensor emb = Tensors.empty(DType.FLOAT32, rows, embShape[1], embShape[2]);
            for (int r = 0; r < rows; r++) {
                emb.narrow(0, r, 1).copy_(cfg && r < n ? negEmb : posEmb);
            }
            long tLat = System.nanoTime();

            // 4. Prepare timesteps (done above, before the latents, as diffusers)
            double[] timesteps = scheduler.timesteps();

            // 5. Prepare latent variables: randn([n,4,h,w], generator) * init_noise_sigma
            Generator gen = Tensors.generator(seed);
            float[] latents = req.latents() != null ? req.latents().clone()
                    : Tensors.randn(gen, n, model.latentChannels(), lh, lw);
            float sigma0 = scheduler.initNoiseSigma();
            for (int i = 0; i < latents.length; i++) {
                latents[i] = latents[i] * sigma0;
            }

            // 6. Extra step kwargs: stochastic schedulers continue the same generator, as diffusers passes it to step()
            scheduler.setNoiseSource(out -> {
                try (PointerScope ns = new PointerScope()) {
                    Tensors.randn(gen, out);
                }
            });

            // 7. Denoising loop
            float[] scaled = new float[latents.length];
            float[] noise = new float[rows * rowSize];
            float[] eps = cfg ? new float[latents.length] : noise;
            long unetNanos = 0;
            long loopStart = System.nanoTime();
            StepListener listener = req.listener();
            Instant deadline = req.deadline();
            try (UNetRunner.Session session = unetRunner.open(rows, n,
                    new long[] {model.latentChannels(), lh, lw}, emb)) {
                for (int k = 0; k < timesteps.length; k++) {
                    double t = timesteps[k];
                    scheduler.scaleModelInput(latents, t, scaled);
                    long u0 = System.nanoTime();
                    session.run(scaled, t, noise);
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
            long loopEnd = System.nanoTime();

            // 8. Decode: vae_decoder(post_quant_conv(latents / scaling_factor)), then postprocess to uint8 RGB
            List<RgbImage> images = new ArrayList<>(n);
            float[] pixels = new float[3 * height * width];
            for (int i = 0; i < n; i++) {
                images.add(decode(latents, i * rowSize, pixels, lh, lw));
            }
            long end = System.nanoTime();
            var timings = new GenerationResult.Timings(tEnc - tTok, tLat - tEnc, loopEnd - loopStart, unetNanos,
                    end - loopEnd, end - t0, timesteps.length);
            return new GenerationResult(List.copyOf(images), seed, latents, timings, pos.truncated());
        }
    }

    private Tensor encode(Encoding e) {
        Tensor ids = Tensors.fromIntsAsLong(e.inputIds(), 1, e.inputIds().length);
        Tensor out = textEncoder.forwardTensor("last_hidden_state", ids);
        return Tensors.to(out, DType.FLOAT32);  // diffusers: prompt_embeds.float() in a float32 pipeline
    }

    private RgbImage decode(float[] latents, int offset, float[] pixels, int lh, int lw) {
        int height = lh * model.vaeScaleFactor();
        int width = lw * model.vaeScaleFactor();
        try (PointerScope s = new PointerScope()) {
            Tensor z = Tensors.fromFloats(latents, offset, 1, model.latentChannels(), lh, lw);
            z = z.div(new Scalar(model.scalingFactor()));  // the same libtorch kernel as diffusers' latents / scaling_factor
            Tensor q = postQuantConv.forwardTensor(null, Tensors.to(z, specs.get("vae_post_quant_conv").inputDType()));
            Tensor img = decoder.forwardTensor("sample", Tensors.to(q, specs.get("vae_decoder").inputDType()));
            if (img.numel() != pixels.length) {
                throw new BackendException("vae_decoder returned " + Tensors.shapeString(img) + ", expected [1,3,"
                        + height + "," + width + "]");
            }
            Tensors.copyTo(img, pixels, 0);
            return RgbImage.fromDecoderOutput(pixels, 0, height, width);
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
        textEncoder.close();
        for (TorchModule u : unets) {
            u.close();
        }
        postQuantConv.close();
        decoder.close();
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
