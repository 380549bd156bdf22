package dev.sdjvm.pipeline;

import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.PipelineArtifacts;
import dev.sdjvm.errors.InvalidRequestException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.SdxlConfig;
import dev.sdjvm.tokenizer.ClipTokenizer;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One loaded copy of a model, what every task pipeline runs on (diffusers' {@code components}): the model directory,
 * the tokenizer, the artifacts of every role on the backend's devices, an {@link InvocationPool} per role (the UNet:
 * per replica) and the UNet runner with its replica threads. The facade holds one per {@code LoadOptions.pipelines}.
 *
 * <p>Thread-safe: generations may run on it concurrently (each takes its own invocations from the pools). Owns its
 * artifacts: {@link #close} frees them.
 */
public final class PipelineComponents implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PipelineComponents.class);

    private final ModelDirectory model;
    private final ClipTokenizer tokenizer;
    /** SDXL's configuration and second tokenizer, or null for the SD 2.x shape. */
    private final SdxlConfig sdxl;
    private final ClipTokenizer tokenizer2;
    private final PipelineArtifacts artifacts;
    private final Map<ArtifactRole, InvocationPool> pools = new EnumMap<>(ArtifactRole.class);
    private final List<InvocationPool> unetPools;
    private final ExecutorService replicaThreads;
    private final UNetRunner unet;

    private PipelineComponents(ModelDirectory model, ClipTokenizer tokenizer, PipelineArtifacts artifacts) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.sdxl = SdxlComponents.detect(model);
        this.tokenizer2 = sdxl == null ? null : ClipTokenizer.load(sdxl.tokenizer2Dir());
        this.artifacts = artifacts;
        artifacts.artifacts().forEach((role, list) -> {
            if (role.placement() != ArtifactRole.Placement.REPLICAS) {
                pools.put(role, new InvocationPool(list.get(0)));
            }
        });
        this.unetPools = artifacts.unets().stream().map(InvocationPool::new).toList();
        int replicas = unetPools.size();
        this.replicaThreads = replicas > 1 ? Executors.newFixedThreadPool(replicas - 1, daemonThreads()) : null;
        this.unet = new UNetRunner(unetPools, replicaThreads,
                model.unetSignature().conditioning(),
                model.unetInChannels(), model.latentHeight(), model.latentWidth());
        if (sdxl != null) {
            SdxlComponents.checkVaeUpcast(sdxl, artifacts.specs());
        }
        // one line per artifact came from the backend; the full specs at DEBUG
        LOG.info("loaded {} ({}, {}x{}, latents {}x{}x{}, {} UNet replica(s))", model.root(), model.family().family(),
                model.height(), model.width(), model.latentChannels(), model.latentHeight(), model.latentWidth(),
                replicas);
        LOG.debug("artifacts of {}: {}", model.root(), artifacts.specs().values());
    }

    /**
     * Loads pipeline {@code index} of a model directory on a backend.
     *
     * @param model        the model directory
     * @param tokenizer    its tokenizer
     * @param backend      where the artifacts run
     * @param index        0-based; on Neuron each pipeline has its own group of cores
     * @param unetReplicas UNet copies for concurrent chunks (CFG data parallel), &gt;= 1
     * @param warmup       run each artifact once to check shapes (CPU: and find dtype/batch without a manifest)
     * @return the loaded components; close them to free the artifacts
     */
    public static PipelineComponents load(ModelDirectory model, ClipTokenizer tokenizer, ArtifactBackend backend,
                                          int index, int unetReplicas, boolean warmup) {
        Pipelines.requireSupported(model);
        PipelineArtifacts a = backend.loadPipeline(model, index, unetReplicas, warmup);
        try {
            return new PipelineComponents(model, tokenizer, a);
        } catch (RuntimeException e) {
            PipelineArtifacts.closeQuietly(List.of(a), e);
            throw e;
        }
    }

    /** {@return the model directory} */
    public ModelDirectory model() {
        return model;
    }

    /** {@return the tokenizer} */
    public ClipTokenizer tokenizer() {
        return tokenizer;
    }

    /** {@return SDXL's configuration, or null for a model of the SD 2.x shape} */
    SdxlConfig sdxl() {
        return sdxl;
    }

    /** {@return SDXL's second tokenizer ({@code tokenizer_2/}), or null for a model of the SD 2.x shape} */
    ClipTokenizer tokenizer2() {
        return tokenizer2;
    }

    /** {@return the loaded artifacts} */
    public PipelineArtifacts artifacts() {
        return artifacts;
    }

    /** {@return per role, what was found out about each artifact (dtype, batch, device, source)} */
    public Map<ArtifactRole, ArtifactSpec> specs() {
        return artifacts.specs();
    }

    /** {@return the number of UNet replicas} */
    public int unetReplicas() {
        return unet.replicas();
    }

    /** The UNet runner (its replicas and the threads that run them). */
    UNetRunner unet() {
        return unet;
    }

    /**
     * The invocation pool of a role the model has (not the UNet: {@link #unet()}).
     *
     * @throws IllegalArgumentException for the UNet or an optional role the model does not have
     */
    InvocationPool pool(ArtifactRole role) {
        InvocationPool p = pools.get(role);
        if (p == null) {
            throw new IllegalArgumentException("no invocation pool for " + role);
        }
        return p;
    }

    /**
     * The VAE encoder's pool, for the tasks that start from an image.
     *
     * @throws InvalidRequestException (field {@code image}) naming the missing file when the model has no VAE encoder
     */
    InvocationPool vaeEncoder() {
        if (!pools.containsKey(ArtifactRole.VAE_ENCODER)) {
            String file = model.layout() == dev.sdjvm.model.ModelLayout.OPTIMUM_NEURON
                    ? ArtifactRole.VAE_ENCODER.optimumComponent().orElseThrow() + "/"
                    + dev.sdjvm.model.ModelDirectory.OPTIMUM_FILE_NAME
                    : "compiled_models/" + ArtifactRole.VAE_ENCODER.fileName();
            throw new InvalidRequestException("image", "this model has no VAE encoder (" + file
                    + "): image-to-image and inpainting need it");
        }
        return pools.get(ArtifactRole.VAE_ENCODER);
    }

    /** {@return the artifact of a role (the first UNet replica)} */
    Artifact artifact(ArtifactRole role) {
        return artifacts.get(role);
    }

    @Override
    public void close() {
        if (replicaThreads != null) {
            replicaThreads.shutdownNow();
        }
        pools.values().forEach(InvocationPool::close);
        unetPools.forEach(InvocationPool::close);
        artifacts.close();
    }

    private static ThreadFactory daemonThreads() {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, "sdjvm-unet-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
