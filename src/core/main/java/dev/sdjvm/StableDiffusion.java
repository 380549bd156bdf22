package dev.sdjvm;

import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.GenerationCancelledException;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.errors.RequestLimitException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.DefaultModel;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.ModelLayout;
import dev.sdjvm.pipeline.BackendSelection;
import dev.sdjvm.pipeline.DiffusionStages;
import dev.sdjvm.pipeline.PipelineComponents;
import dev.sdjvm.pipeline.Pipelines;
import dev.sdjvm.pipeline.Request;
import dev.sdjvm.pipeline.Result;
import dev.sdjvm.tokenizer.ClipTokenizer;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Stable Diffusion from the JVM: the facade (text-to-image, image-to-image, inpainting).
 * <pre>{@code
 * try (StableDiffusion sd = StableDiffusion.load(Path.of("sd2_512_root"))) {
 *     BufferedImage img = sd.generate("a lovely cat");
 *     GenerationResult r = sd.generate(GenerationRequest.builder("a lighthouse").steps(20).seed(7L).build());
 * }
 * }</pre>
 *
 * <p><b>Thread safety.</b> An instance may be shared: {@link #generate} can be called from many threads. At most
 * {@link LoadOptions#maxConcurrent()} generations run at once (the others wait their turn); each has its own
 * scheduler, random generator and native tensors, so the images depend only on the request and its seed, whatever
 * runs beside it. {@link #close} cancels running generations at their next step, waits for them, then frees all
 * native memory; calls after close fail with {@link IllegalStateException}. {@link #generateAsync(GenerationRequest)}
 * returns a future instead; cancelling it cancels the generation at its next step boundary.
 */
public final class StableDiffusion implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StableDiffusion.class);

    private final PipelineComponents pipeline;
    private final List<PipelineComponents> all;
    private final BlockingQueue<PipelineComponents> idle;
    private final LoadOptions options;
    private final Semaphore permits;
    private final AtomicInteger running = new AtomicInteger();
    private volatile boolean closed;
    private ExecutorService asyncExecutor;  // guarded by this; generateAsync's threads, started on first use
    private final ArtifactBackend backend;
    private final Backend kind;
    private final long loadNanos;

    private StableDiffusion(List<PipelineComponents> pipelines, LoadOptions options, ArtifactBackend backend, Backend kind,
                            long loadNanos) {
        this.backend = backend;
        this.kind = kind;
        this.pipeline = pipelines.get(0);
        this.all = List.copyOf(pipelines);
        this.idle = new ArrayBlockingQueue<>(pipelines.size(), true, pipelines);
        this.options = options;
        this.permits = new Semaphore(slots(options), true);
        this.loadNanos = loadNanos;
    }

    private static int slots(LoadOptions o) {
        return o.pipelines() > 1 ? o.pipelines() : o.maxConcurrent();
    }

    /**
     * Loads a model directory (AWS's {@code sd2_512_root} layout) with the default options.
     *
     * @param modelDir the model directory
     * @return the loaded model; close it to free its native memory
     * @throws ModelLoadException naming the file at fault when the directory, an artifact or a config is unusable
     */
    public static StableDiffusion load(Path modelDir) {
        return load(modelDir, LoadOptions.defaults());
    }

    /**
     * Loads a model directory.
     *
     * @param modelDir the model directory
     * @param options  how to load it
     * @return the loaded model; close it to free its native memory
     * @throws ModelLoadException naming the file at fault when the directory, an artifact or a config is unusable
     * @throws BackendException   when the requested backend is not available
     */
    public static StableDiffusion load(Path modelDir, LoadOptions options) {
        long t0 = System.nanoTime();
        ModelDirectory dir = ModelDirectory.open(modelDir);
        Pipelines.requireSupported(dir);  // an SDXL or unknown model fails here, naming what is unsupported
        ClipTokenizer tokenizer = ClipTokenizer.load(dir.tokenizerDir());
        BackendSelection.Plan plan = BackendSelection.plan(dir, kind(options.backend()));
        CpuOptions cpu = options.cpu();
        ArtifactBackend backend = BackendSelection.open(dir, plan, new BackendSelection.Options(options.threads(),
                options.optimize(), cpu.measure(), cpu.tuningCache(), cpu.hugePages(), cpu.singleThreadedBlas(),
                cpu.trimMemory(), cpu.passiveWait()));
        int replicas = options.unetReplicas() > 0 ? options.unetReplicas()
                : BackendSelection.defaultUnetReplicas(plan.backend(), backend.devices(), options.pipelines());
        List<PipelineComponents> ps = new ArrayList<>();
        try {
            for (int i = 0; i < options.pipelines(); i++) {
                ps.add(PipelineComponents.load(dir, tokenizer, backend, i, replicas, options.warmup()));
            }
        } catch (RuntimeException e) {
            for (PipelineComponents p : ps) {
                try {
                    p.close();
                } catch (RuntimeException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            backend.close();
            throw e;
        }
        long dt = System.nanoTime() - t0;
        LOG.info("model ready in {} ms ({} pipeline(s), {} UNet replica(s) each, {})", dt / 1_000_000, ps.size(), replicas,
                backend.describe());
        return new StableDiffusion(ps, options, backend, backend(plan.backend()), dt);
    }

    private static BackendSelection.Kind kind(Backend b) {
        return BackendSelection.Kind.valueOf(b.name());
    }

    private static Backend backend(BackendSelection.Kind k) {
        return Backend.valueOf(k.name());
    }

    /**
     * Loads the small model embedded in this library (see the README: what it can draw).
     *
     * @return the loaded model; close it to free its native memory
     */
    public static StableDiffusion loadDefault() {
        return load(defaultModelPath());
    }

    /**
     * Loads the embedded model with the given options.
     *
     * @param options how to load it
     * @return the loaded model; close it to free its native memory
     */
    public static StableDiffusion loadDefault(LoadOptions options) {
        return load(defaultModelPath(), options);
    }

    /**
     * One image for a prompt, with diffusers' defaults (50 steps, guidance 7.5, a random seed).
     *
     * @param prompt the prompt
     * @return the image
     */
    public BufferedImage generate(String prompt) {
        return generate(GenerationRequest.of(prompt)).image();
    }

    /**
     * Runs the pipeline of the request's task (diffusers' {@code __call__} of {@code StableDiffusionPipeline},
     * {@code StableDiffusionImg2ImgPipeline} with an init image, {@code StableDiffusionInpaintPipeline} with an
     * image and a mask).
     *
     * @param request what to generate
     * @return the images, the seed and the timings
     * @throws InvalidRequestException   for an invalid request, before any native work (an image task on a model
     *                                   without {@code compiled_models/vae_encoder.pt} names that file)
     * @throws RequestLimitException     for a request over {@link LoadOptions#limits()}, before any work
     * @throws GenerationCancelledException when the listener, the deadline or {@link #close} cancelled it
     * @throws BackendException          when libtorch failed
     */
    public GenerationResult generate(GenerationRequest request) {
        return generate(request, null);
    }

    /**
     * The request as this model runs it: its own steps, guidance scale and (with an image) strength, or where it has
     * none the model's defaults ({@link ModelInfo#defaultSteps()}, {@link ModelInfo#defaultGuidanceScale()}, and the
     * strength of diffusers' pipeline for the family and task: 0.8 image-to-image, 1.0 inpainting, 0.3 SDXL
     * image-to-image). {@link GenerationResult#request()} is this request.
     *
     * @param request a request
     * @return the request with every default the model decides filled in
     */
    public GenerationRequest withModelDefaults(GenerationRequest request) {
        ModelDirectory m = pipeline.model();
        return request.withDefaults(DiffusionStages.defaultSteps(m), DiffusionStages.defaultGuidanceScale(m),
                DiffusionStages.defaultStrength(m, request.mask() != null));
    }

    /**
     * {@link #generate(GenerationRequest)}, also cancelled when {@code cancelled} turns true (checked while waiting
     * for a slot through {@code waiting}, and at every step boundary).
     */
    private GenerationResult generate(GenerationRequest given, AsyncGeneration async) {
        if (given == null) {
            throw new InvalidRequestException("request", "must not be null");
        }
        GenerationRequest request = withModelDefaults(given);
        options.limits().check(request, pipeline.model().height(), pipeline.model().width());
        checkOpen();
        try {
            if (async != null) {
                async.waiting(Thread.currentThread());
            }
            try {
                permits.acquire();
            } finally {
                if (async != null) {
                    async.doneWaiting();
                }
            }
        } catch (InterruptedException e) {
            if (async != null && async.isCancelled()) {
                throw new GenerationCancelledException("cancelled while waiting for a free slot");
            }
            Thread.currentThread().interrupt();
            throw new GenerationCancelledException("interrupted while waiting for a free slot");
        }
        running.incrementAndGet();
        PipelineComponents p = null;
        try {
            checkOpen();
            // throughput mode: a pipeline per request; a permit guarantees one is idle
            p = all.size() > 1 ? idle.poll() : pipeline;
            BooleanSupplier cancelled = async == null ? () -> closed : () -> closed || async.isCancelled();
            return result(Pipelines.generate(p, request(request), cancelled), request);
        } catch (dev.sdjvm.pipeline.NonFiniteLatentsException e) {
            if (request.schedulerOverrides() != null && !request.schedulerOverrides().isEmpty()) {
                throw new InvalidRequestException("scheduler_overrides", "these overrides " + request.schedulerOverrides()
                        + " make the scheduler's arithmetic overflow: " + e.getMessage());
            }
            throw e;
        } finally {
            if (all.size() > 1 && p != null) {
                idle.add(p);
            }
            running.decrementAndGet();
            permits.release();
        }
    }

    /**
     * {@link #generate(GenerationRequest)} on this instance's own threads ({@link LoadOptions#maxConcurrent()} of
     * them, or one per pipeline; daemon threads, started on first use, stopped by {@link #close}); requests beyond
     * those wait in line, in order. See {@link #generateAsync(GenerationRequest, Executor)}.
     *
     * @param request what to generate
     * @return the result to come; cancel it to cancel the generation
     */
    public CompletableFuture<GenerationResult> generateAsync(GenerationRequest request) {
        return generateAsync(request, asyncExecutor());
    }

    /**
     * {@link #generate(GenerationRequest)} run by {@code executor}.
     *
     * <p><b>Cancelling.</b> {@code future.cancel(...)} (either argument) cancels the generation: before it started,
     * it never runs; waiting for a free slot, it stops waiting; running, it stops at the end of the denoising step
     * in progress (a step is not interrupted inside the UNet), frees its pipeline for the next call and returns
     * no images. The future is then completed with a {@link java.util.concurrent.CancellationException} at once,
     * without waiting for that step to end.
     *
     * <p><b>Interruption.</b> Cancelling interrupts the executor's thread only while it waits for a slot (and clears
     * that interrupt before the thread returns to the executor); the denoising loop is never interrupted by a
     * cancel, it checks a flag. If the executor itself interrupts the thread (e.g. {@code shutdownNow()}), the
     * generation stops at its next step boundary, as a synchronous {@link #generate} does, and the future fails with
     * a {@link GenerationCancelledException}; the thread's interrupt status is kept.
     *
     * <p>Every failure {@link #generate(GenerationRequest)} throws (an invalid request, a limit, a closed instance, a
     * backend error) completes the future exceptionally with that exception; an executor that rejects the task
     * completes it with its {@link java.util.concurrent.RejectedExecutionException}.
     *
     * @param request  what to generate
     * @param executor runs the generation (it blocks its thread for the whole generation)
     * @return the result to come; cancel it to cancel the generation
     * @throws NullPointerException if {@code executor} is null
     */
    public CompletableFuture<GenerationResult> generateAsync(GenerationRequest request, Executor executor) {
        Objects.requireNonNull(executor, "executor");
        AsyncGeneration f = new AsyncGeneration();
        try {
            executor.execute(() -> {
                if (f.isDone()) {
                    return;  // cancelled before it started
                }
                try {
                    f.complete(generate(request, f));
                } catch (Throwable t) {
                    f.completeExceptionally(t);
                }
            });
        } catch (RejectedExecutionException e) {
            f.completeExceptionally(e);
        }
        return f;
    }

    private synchronized ExecutorService asyncExecutor() {
        checkOpen();
        if (asyncExecutor == null) {
            AtomicInteger n = new AtomicInteger();
            asyncExecutor = Executors.newFixedThreadPool(slots(options), r -> {
                Thread t = new Thread(r, "sdjvm-generate-" + n.incrementAndGet());
                t.setDaemon(true);
                return t;
            });
        }
        return asyncExecutor;
    }

    /**
     * A generation's future: cancelling it is seen by the denoising loop at its next step boundary, and interrupts
     * the generating thread while (only while) it waits for a slot.
     */
    private static final class AsyncGeneration extends CompletableFuture<GenerationResult> {
        private final Object lock = new Object();
        private Thread waiter;          // guarded by lock
        private boolean interrupted;    // guarded by lock: this future interrupted the waiter

        @Override
        public boolean cancel(boolean mayInterruptIfRunning) {
            boolean done = super.cancel(mayInterruptIfRunning);
            synchronized (lock) {
                if (isCancelled() && waiter != null && !interrupted) {
                    interrupted = true;
                    waiter.interrupt();
                }
            }
            return done;
        }

        void waiting(Thread t) {
            synchronized (lock) {
                waiter = t;
                if (isCancelled() && !interrupted) {
                    interrupted = true;
                    t.interrupt();
                }
            }
        }

        void doneWaiting() {
            synchronized (lock) {
                waiter = null;
                if (interrupted) {
                    Thread.interrupted();  // ours, not the executor's: do not leak it to the thread's next task
                }
            }
        }
    }

    /** The pipeline's view of a request (its own record: the pipeline package does not depend on this one). */
    private static Request request(GenerationRequest r) {
        StepListener l = r.listener();
        return new Request(r.prompt(), r.negativePrompt(), r.steps().orElseThrow(), r.guidanceScale().orElseThrow(),
                r.seed(), r.numImages(),
                r.scheduler(), r.schedulerOverrides(), r.height(), r.width(), r.latents(), l == null ? null : l::onStep,
                r.deadline(), r.initImage(), r.resolvedStrength(), r.mask(), r.guidanceRescale());
    }

    private static GenerationResult result(Result r, GenerationRequest request) {
        return GenerationResult.builder().images(r.images()).seed(r.seed()).latents(r.latents())
                .timings(new GenerationResult.Timings(r.tokenizeNanos(), r.encodeNanos(), r.denoiseNanos(),
                        r.unetNanos(), r.decodeNanos(), r.totalNanos(), r.steps()))
                .promptTruncated(r.promptTruncated()).scheduler(r.scheduler()).request(request).build();
    }

    /**
     * The version of the org.bytedeco:pytorch artifact on the class path (e.g. {@code 2.10.0-1.5.13}), read without
     * loading native code.
     *
     * @return the version, or {@code unknown}
     */
    public static String libtorchVersion() {
        return BackendSelection.libtorchVersion();
    }

    /**
     * The directory holding the small model embedded in this library (extracted once from the jar into
     * {@code ~/.cache/sdjvm/}, or {@code -Dsdjvm.cache=DIR}; used in place from a classes directory).
     *
     * @return the embedded model's directory
     */
    public static Path defaultModelPath() {
        return DefaultModel.path();
    }

    /**
     * What a model directory is, from its files alone: nothing is loaded and no native code runs apart from reading
     * the archives (each artifact's NEFF is looked for). Dtypes and batches come from our tools' manifest when there
     * is one; {@link ModelInfo#backend()} is what {@link Backend#AUTO} would choose.
     *
     * @param modelDir the model directory
     * @return the facts; {@link ModelInfo#loaded()} is false
     * @throws ModelLoadException naming the file at fault when the directory or a config is unusable
     */
    public static ModelInfo inspect(Path modelDir) {
        ModelDirectory dir = ModelDirectory.open(modelDir);
        BackendSelection.Plan plan = BackendSelection.plan(dir, BackendSelection.Kind.AUTO);
        Map<String, ModelInfo.Artifact> arts = new LinkedHashMap<>();
        for (var e : dir.artifacts().entrySet()) {
            ArtifactRole role = e.getKey();
            var a = dir.manifest() == null ? null : dir.manifest().artifacts().get(role.id());
            String neff = plan.neffWithHash(role);
            arts.put(role.id(), new ModelInfo.Artifact(role.id(), e.getValue(),
                    a == null ? null : dtype(a.floatInputDType()), a == null ? null : a.batch(), null,
                    a != null ? ModelInfo.Source.MANIFEST : neff != null ? ModelInfo.Source.NEFF : ModelInfo.Source.UNKNOWN,
                    neff,
                    a == null ? List.of() : a.inputs().stream().map(StableDiffusion::describe).toList(),
                    a == null ? List.of() : a.outputs().stream().map(StableDiffusion::describe).toList()));
        }
        return new ModelInfo(dir.root(), dir.height(), dir.width(), arts, 0, 0, backend(plan.backend()), plan.reason(),
                dir.schedulerConfig(), manifest(dir), 0, false, layout(dir, backend(plan.backend())),
                dir.family().family().name(), dir.family().evidence(), dir.family().problem(),
                DiffusionStages.defaultScheduler(dir), DiffusionStages.defaultSteps(dir),
                DiffusionStages.defaultGuidanceScale(dir), Pipelines.tasks(dir));
    }

    /** The layout's name for {@link ModelInfo#layout()}: compiled_models is AWS's on Neuron, TorchScript on the CPU. */
    private static String layout(ModelDirectory dir, Backend backend) {
        if (dir.layout() == ModelLayout.OPTIMUM_NEURON) {
            return ModelInfo.LAYOUT_OPTIMUM;
        }
        return backend == Backend.NEURON ? ModelInfo.LAYOUT_AWS : ModelInfo.LAYOUT_CPU;
    }

    private static ModelInfo.DType dtype(dev.sdjvm.model.DType d) {
        return d == null ? null : ModelInfo.DType.valueOf(d.name());
    }

    private static String describe(dev.sdjvm.model.Manifest.TensorSpec t) {
        return t.name() + ":" + t.dtype().manifestName() + t.shape();
    }

    private static ModelInfo.Manifest manifest(ModelDirectory dir) {
        var m = dir.manifest();
        return m == null ? null : new ModelInfo.Manifest(m.format(), m.target(), m.createdBy(), m.torch(),
                m.torchNeuronx(), m.neuronxCc());
    }

    /** {@return the model directory, the artifacts' dtypes, batches, devices and tensors, and the image size} */
    public ModelInfo info() {
        checkOpen();
        var m = pipeline.model();
        Map<String, ModelInfo.Artifact> arts = new LinkedHashMap<>();
        for (var spec : pipeline.specs().values()) {
            dev.sdjvm.backend.Artifact a = pipeline.artifacts().get(spec.role());
            arts.put(spec.role().id(), new ModelInfo.Artifact(spec.role().id(), spec.file(),
                    dtype(spec.inputDType()), spec.batch(), spec.device() == null ? null : ModelInfo.Device.parse(spec.device()),
                    ModelInfo.Source.valueOf(spec.source().toUpperCase(java.util.Locale.ROOT)), spec.neff(), a.inputs().stream().map(Object::toString).toList(),
                    a.outputs().stream().map(Object::toString).toList()));
        }
        return new ModelInfo(m.root(), m.height(), m.width(), arts, pipeline.unetReplicas(), all.size(), kind,
                backend.describe(), m.schedulerConfig(), manifest(m), loadNanos, true, layout(m, kind),
                m.family().family().name(), m.family().evidence(), m.family().problem(),
                DiffusionStages.defaultScheduler(m), DiffusionStages.defaultSteps(m),
                DiffusionStages.defaultGuidanceScale(m), Pipelines.tasks(m));
    }

    /** {@return the model's tokenizer} */
    public ClipTokenizer tokenizer() {
        checkOpen();
        return pipeline.tokenizer();
    }

    /** {@return the options this instance was loaded with} */
    public LoadOptions options() {
        return options;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this StableDiffusion instance is closed");
        }
    }

    /**
     * Cancels running generations at their next step, waits for them (up to 60 s), frees native memory. Native memory
     * is never freed under a running call: each artifact waits for the libtorch or {@code nrt_execute} call running on
     * it before it is freed, and any later use fails with {@link IllegalStateException}. Idempotent.
     */
    @Override
    public void close() {
        ExecutorService async;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            async = asyncExecutor;
        }
        if (async != null) {
            async.shutdown();  // queued generateAsync calls still run and fail at once: the instance is closed
        }
        try {
            if (!permits.tryAcquire(slots(options), 60, TimeUnit.SECONDS)) {
                LOG.warn("{} generation(s) still running after 60 s; closing: each artifact waits for the call running "
                        + "on it, then those generations fail with 'closed'", running.get());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            all.forEach(PipelineComponents::close);
        } finally {
            backend.close();
        }
    }
}
