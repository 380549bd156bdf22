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
import dev.sdjvm.pipeline.BackendSelection;
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
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
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
 * native memory; calls after close fail with {@link IllegalStateException}.
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
        if (request == null) {
            throw new InvalidRequestException("request", "must not be null");
        }
        options.limits().check(request, pipeline.model().height(), pipeline.model().width());
        checkOpen();
        try {
            permits.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new GenerationCancelledException("interrupted while waiting for a free slot");
        }
        running.incrementAndGet();
        PipelineComponents p = null;
        try {
            checkOpen();
            // throughput mode: a pipeline per request; a permit guarantees one is idle
            p = all.size() > 1 ? idle.poll() : pipeline;
            return result(Pipelines.generate(p, request(request), () -> closed));
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

    /** The pipeline's view of a request (its own record: the pipeline package does not depend on this one). */
    private static Request request(GenerationRequest r) {
        StepListener l = r.listener();
        return new Request(r.prompt(), r.negativePrompt(), r.steps(), r.guidanceScale(), r.seed(), r.numImages(),
                r.scheduler(), r.schedulerOverrides(), r.height(), r.width(), r.latents(), l == null ? null : l::onStep,
                r.deadline(), r.initImage(), r.resolvedStrength(), r.mask());
    }

    private static GenerationResult result(Result r) {
        return new GenerationResult(r.images(), r.seed(), r.latents(), new GenerationResult.Timings(r.tokenizeNanos(),
                r.encodeNanos(), r.denoiseNanos(), r.unetNanos(), r.decodeNanos(), r.totalNanos(), r.steps()),
                r.promptTruncated(), r.scheduler());
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
                    a == null || a.floatInputDType() == null ? null : a.floatInputDType().manifestName(),
                    a == null ? null : a.batch(), null, a != null ? "manifest" : neff != null ? "neff" : "unknown (not loaded)",
                    neff,
                    a == null ? List.of() : a.inputs().stream().map(StableDiffusion::describe).toList(),
                    a == null ? List.of() : a.outputs().stream().map(StableDiffusion::describe).toList()));
        }
        return new ModelInfo(dir.root(), dir.height(), dir.width(), arts, 0, 0, backend(plan.backend()), plan.reason(),
                dir.schedulerConfig(), manifest(dir), 0, false);
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
                    spec.inputDType() == null ? null : spec.inputDType().manifestName(), spec.batch(), spec.device(),
                    spec.source(), spec.neff(), a.inputs().stream().map(Object::toString).toList(),
                    a.outputs().stream().map(Object::toString).toList()));
        }
        return new ModelInfo(m.root(), m.height(), m.width(), arts, pipeline.unetReplicas(), all.size(), kind,
                backend.describe(), m.schedulerConfig(), manifest(m), loadNanos, true);
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
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
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
