package dev.sdjvm.backend.torch;

import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.PipelineArtifacts;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.ModelDirectory;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** libtorch (org.bytedeco:pytorch): TorchScript artifacts on the CPU. */
public final class TorchBackend implements ArtifactBackend {
    private static final Logger LOG = LoggerFactory.getLogger(TorchBackend.class);
    private final boolean optimize;
    private final TorchSettings settings;
    private final CpuTuning tuning;
    /** role -> the rewrites made, for {@link #describe} (the same for every pipeline of this backend) */
    private final Map<String, String> rewrites = new java.util.concurrent.ConcurrentSkipListMap<>();

    /**
     * @param threads  libtorch intra-op threads, 0 = libtorch's default
     * @param settings which graph rewrites ({@link TorchOptimizer}, chosen by {@link RewriteTuner}) and process
     *                 settings
     */
    public TorchBackend(int threads, TorchSettings settings) {
        this.settings = settings;
        this.optimize = settings.optimize();
        this.tuning = new CpuTuning(settings.tuningCache());
        Torch.configure(settings.hugePages(), settings.passiveWait());
        Torch.load();
        if (threads > 0) {
            Torch.setNumThreads(threads);
        }
        if (settings.singleThreadedBlas()) {
            TorchOptimizer.singleThreadedBlas();
        }
    }

    @Override
    public int devices() {
        return 1;
    }

    @Override
    public String describe() {
        return "libtorch " + Torch.version() + " (CPU, " + Torch.numThreads() + " threads" + (!optimize
                ? ", graphs as traced" : ", graph rewrites " + (rewrites.isEmpty() ? "not chosen yet"
                : rewrites.entrySet().stream().map(e -> e.getKey() + " " + e.getValue())
                        .collect(java.util.stream.Collectors.joining(", ")))) + ")";
    }

    @Override
    public PipelineArtifacts loadPipeline(ModelDirectory dir, int pipeline, int unetReplicas, boolean warmup) {
        if (dir.decoderIncludesPostQuantConv()) {  // an optimum-neuron export: compiled for Neuron only
            throw new dev.sdjvm.errors.ModelLoadException(dir.root(), "the CPU backend runs compiled_models/ with a "
                    + "separate vae_post_quant_conv.pt; this " + dir.layout().id() + " directory is compiled for Neuron");
        }
        List<TorchModule> opened = new ArrayList<>();
        try {
            TorchArtifactProbe probe = new TorchArtifactProbe(dir);
            Map<ArtifactRole, List<TorchModule>> modules = new EnumMap<>(ArtifactRole.class);
            Map<ArtifactRole, Long> loadNanos = new EnumMap<>(ArtifactRole.class);
            int teHidden = -1;
            for (ArtifactRole role : ArtifactRole.values()) {
                if (!dir.has(role)) {
                    continue;
                }
                int copies = role.placement() == ArtifactRole.Placement.REPLICAS ? unetReplicas : 1;
                List<TorchModule> list = new ArrayList<>();
                long t0 = System.nanoTime();
                for (int i = 0; i < copies; i++) {
                    // loaded as traced, then rewritten with the rewrites chosen for this CPU on the role's inputs
                    TorchModule m = track(opened, TorchModule.load(dir.artifact(role), role.id(), false));
                    DType d = m.parameterDType().orElse(DType.FLOAT32);
                    switch (role) {
                        case TEXT_ENCODER, TEXT_ENCODER_2 -> optimize(m, () -> new Tensor[] {
                            Tensors.empty(DType.INT64, 1, TorchArtifactProbe.TOKENS).zero_()});
                        case UNET -> {
                            if (optimize && m.parameterDType().isPresent()) {
                                if (teHidden < 0) {
                                    try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
                                        teHidden = probe.conditioningHiddenSize(modules.get(ArtifactRole.TEXT_ENCODER).get(0),
                                                secondEncoder(modules));
                                    }
                                }
                                DType u = probe.facts(role, m).dtype();
                                int h = teHidden;
                                optimize(m, () -> probe.unetInputs(u == null ? DType.FLOAT32 : u, h));
                            }
                        }
                        case VAE_POST_QUANT_CONV, VAE_DECODER -> optimize(m, () -> probe.latentInputs(d));
                        case VAE_ENCODER -> optimize(m, () -> probe.imageInputs(d));
                    }
                    list.add(m);
                }
                loadNanos.put(role, System.nanoTime() - t0);
                modules.put(role, list);
            }
            TorchModule te = modules.get(ArtifactRole.TEXT_ENCODER).get(0);
            TorchModule unet = modules.get(ArtifactRole.UNET).get(0);

            trim();  // the load's freed buffers, before the warm-up's activations
            Map<ArtifactRole, TorchArtifactProbe.Facts> facts = new EnumMap<>(ArtifactRole.class);
            int hidden;
            try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
                facts.put(ArtifactRole.TEXT_ENCODER, probe.facts(ArtifactRole.TEXT_ENCODER, te));
                hidden = warmup ? probe.conditioningHiddenSize(te, secondEncoder(modules)) : 0;
                TorchArtifactProbe.Facts u = probe.facts(ArtifactRole.UNET, unet);
                if (warmup || u.dtype() == null) {  // no dtype: a "probe" artifact, learnt by running it
                    u = probe.probeUnet(unet, u, hidden > 0 ? hidden : probe.conditioningHiddenSize(te, secondEncoder(modules)));
                }
                facts.put(ArtifactRole.UNET, u);
                for (ArtifactRole role : modules.keySet()) {
                    if (!facts.containsKey(role)) {  // the VAE's parts: float32 unless they say otherwise
                        TorchArtifactProbe.Facts f = probe.facts(role, modules.get(role).get(0));
                        facts.put(role, f.dtype() != null ? f : new TorchArtifactProbe.Facts(DType.FLOAT32, f.batch(), "default"));
                    }
                }
                if (warmup) {
                    trim();  // the UNet run's activations, before the VAE's
                    probe.checkVae(modules.get(ArtifactRole.VAE_POST_QUANT_CONV).get(0),
                            facts.get(ArtifactRole.VAE_POST_QUANT_CONV).dtype(),
                            modules.get(ArtifactRole.VAE_DECODER).get(0), facts.get(ArtifactRole.VAE_DECODER).dtype());
                    if (modules.containsKey(ArtifactRole.VAE_ENCODER)) {
                        probe.checkEncoder(modules.get(ArtifactRole.VAE_ENCODER).get(0),
                                facts.get(ArtifactRole.VAE_ENCODER).dtype());
                    }
                }
            }
            Map<ArtifactRole, ArtifactSpec> specs = new EnumMap<>(ArtifactRole.class);
            Map<ArtifactRole, List<Artifact>> artifacts = new EnumMap<>(ArtifactRole.class);
            for (var e : modules.entrySet()) {
                ArtifactRole role = e.getKey();
                TorchArtifactProbe.Facts f = facts.get(role);
                ArtifactSpec spec = new ArtifactSpec(role, dir.artifact(role), f.dtype(), f.batch(), "cpu", f.source(), null);
                specs.put(role, spec);
                List<TensorSpec> inputs = probe.inputs(role, f, hidden);
                LOG.info("{}: {} ({} on cpu{}, batch {}, inputs {}; loaded{} in {} ms)", role, spec.file().getFileName(),
                        f.dtype() == null ? "?" : f.dtype().manifestName(),
                        e.getValue().size() > 1 ? " x" + e.getValue().size() : "", f.batch() == null ? "any" : f.batch(),
                        TensorSpec.summary(inputs), optimize ? " and rewritten" : "", loadNanos.get(role) / 1_000_000);
                LOG.debug("{}: {}", role, spec);
                // the VAE's full-size activations set the peak RSS right after the UNet's were freed
                boolean trimFirst = settings.trimMemory()
                        && (role == ArtifactRole.VAE_DECODER || role == ArtifactRole.VAE_ENCODER);
                List<Artifact> list = new ArrayList<>();
                for (TorchModule m : e.getValue()) {
                    list.add(new TorchArtifact(role, m, inputs, trimFirst));
                }
                artifacts.put(role, list);
            }
            trim();  // and the warm-up's
            return new PipelineArtifacts(artifacts, specs);
        } catch (RuntimeException e) {
            PipelineArtifacts.closeQuietly(opened, e);
            throw e;
        }
    }

    /** SDXL's second text encoder, or null. */
    private static TorchModule secondEncoder(Map<ArtifactRole, List<TorchModule>> modules) {
        List<TorchModule> l = modules.get(ArtifactRole.TEXT_ENCODER_2);
        return l == null ? null : l.get(0);
    }

    /**
     * Rewrites a module (loaded as traced) for this CPU: the rewrites measured faster here ({@link CpuTuning}), or all
     * applicable ones when measuring is off. Nothing for modules without floating-point parameters.
     */
    private void optimize(TorchModule m, Supplier<Tensor[]> inputs) {
        if (!optimize) {
            return;
        }
        var dtype = m.parameterDType();
        if (dtype.isEmpty()) {
            return;  // Neuron-compiled or weightless: nothing to rewrite
        }
        RewriteTuner.Decision d;
        Boolean forced = TorchOptimizer.Cpu.bf16Override();
        if (!settings.measure()) {
            d = RewriteTuner.all(dtype.get(), forced != null ? !forced : !TorchOptimizer.Cpu.hasNativeBf16());
        } else {
            d = tuning.decide(m.file(), m.role(), dtype.get(), inputs, forced);
        }
        TorchOptimizer.Report r = m.rewrite(dtype.get(), d.rewrites());
        double speedup = d.speedup();
        rewrites.put(m.role(), Rewrite.describe(d.rewrites()) + (Double.isNaN(speedup) ? ""
                : String.format(" (%s, %.2fx)", d.how(), speedup)));
        if (r != null) {
            LOG.debug("optimized {}", r);
        }
    }

    private void trim() {
        if (settings.trimMemory()) {
            TorchOptimizer.releaseFreedMemory();
        }
    }

    private static <T extends AutoCloseable> T track(List<? super T> opened, T c) {
        opened.add(c);
        return c;
    }

    @Override
    public void close() {
        // libtorch stays loaded for the process; the modules belong to the pipelines
    }
}
