package dev.sdjvm.backend.torch;

import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.PipelineArtifacts;
import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.ModelDirectory;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;
import org.bytedeco.pytorch.Tensor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * libtorch (org.bytedeco:pytorch): TorchScript artifacts on the CPU, or, with libtorchneuron loaded into the process
 * ({@code Backend.TORCH_NEURON}), Neuron-compiled TorchScript that libtorchneuron dispatches to the NeuronCores.
 */
public final class TorchBackend implements ArtifactBackend {
    private static final Logger LOG = LoggerFactory.getLogger(TorchBackend.class);
    private final boolean neuron;
    private final boolean optimize;
    private final TorchSettings settings;
    private final CpuTuning tuning;
    /** role -> the rewrites made, for {@link #describe} (the same for every pipeline of this backend) */
    private final Map<String, String> rewrites = new java.util.concurrent.ConcurrentSkipListMap<>();

    /**
     * @param neuron   false: the CPU; true: Neuron-compiled TorchScript through libtorchneuron (which the caller loads
     *                 after this constructor has loaded libtorch), with explicit core placement
     * @param threads  libtorch intra-op threads, 0 = libtorch's default
     * @param settings CPU: which graph rewrites ({@link TorchOptimizer}, chosen by {@link RewriteTuner}) and process
     *                 settings; the rewrites are ignored with {@code neuron} (Neuron-compiled graphs run as they are)
     */
    public TorchBackend(boolean neuron, int threads, TorchSettings settings) {
        this.neuron = neuron;
        this.settings = settings;
        this.optimize = settings.optimize() && !neuron;
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
        return "libtorch " + Torch.version() + " (" + (neuron ? "libtorchneuron" : "CPU") + ", "
                + Torch.numThreads() + " threads" + (neuron ? "" : !optimize ? ", graphs as traced"
                : ", graph rewrites " + (rewrites.isEmpty() ? "not chosen yet" : rewrites.entrySet().stream()
                        .map(e -> e.getKey() + " " + e.getValue()).collect(java.util.stream.Collectors.joining(", "))))
                + ")";
    }

    @Override
    public PipelineArtifacts loadPipeline(ModelDirectory dir, int pipeline, int unetReplicas, boolean warmup) {
        List<TorchModule> opened = new ArrayList<>();
        // on Neuron, pipeline p owns cores [p*k, p*k+k) (k = UNet replicas): UNet replica r on core p*k+r, the text
        // encoder on the first and the VAE on the last, as the NEFF path places them
        int group = Math.max(1, unetReplicas);
        int first = pipeline * group;
        try {
            TorchArtifactProbe probe = new TorchArtifactProbe(dir);
            place(first);
            TorchModule te = track(opened, TorchModule.load(dir.artifacts().get("text_encoder"), "text_encoder", false));
            optimize(te, () -> new Tensor[] {Tensors.empty(DType.INT64, 1, TorchArtifactProbe.TOKENS).zero_()});
            int teHidden = -1;
            List<TorchModule> unets = new ArrayList<>();
            for (int i = 0; i < unetReplicas; i++) {
                place(first + i);
                TorchModule u = track(opened, TorchModule.load(dir.artifacts().get("unet"), "unet", false));
                if (optimize && u.parameterDType().isPresent()) {
                    if (teHidden < 0) {
                        try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
                            teHidden = probe.textEncoderHiddenSize(te);
                        }
                    }
                    DType d = probe.facts("unet", u).dtype();
                    int h = teHidden;
                    optimize(u, () -> probe.unetInputs(d == null ? DType.FLOAT32 : d, h));
                }
                unets.add(u);
            }
            place(first + group - 1);
            TorchModule pqc = track(opened, TorchModule.load(dir.artifacts().get("vae_post_quant_conv"), "vae_post_quant_conv", false));
            TorchModule dec = track(opened, TorchModule.load(dir.artifacts().get("vae_decoder"), "vae_decoder", false));
            optimize(pqc, () -> probe.latentInputs(pqc.parameterDType().orElse(DType.FLOAT32)));
            optimize(dec, () -> probe.latentInputs(dec.parameterDType().orElse(DType.FLOAT32)));

            trim();  // the load's freed buffers, before the warm-up's activations
            Map<String, TorchArtifactProbe.Facts> facts = new LinkedHashMap<>();
            int hidden;
            try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
                facts.put("text_encoder", probe.facts("text_encoder", te));
                hidden = warmup ? probe.textEncoderHiddenSize(te) : 0;
                TorchArtifactProbe.Facts u = probe.facts("unet", unets.get(0));
                if (warmup || u.dtype() == null) {  // no dtype: a "probe" artifact, learnt by running it
                    u = probe.probeUnet(unets.get(0), u, hidden > 0 ? hidden : probe.textEncoderHiddenSize(te));
                }
                facts.put("unet", u);
                for (var e : Map.of("vae_post_quant_conv", pqc, "vae_decoder", dec).entrySet()) {
                    TorchArtifactProbe.Facts f = probe.facts(e.getKey(), e.getValue());
                    facts.put(e.getKey(), f.dtype() != null ? f : new TorchArtifactProbe.Facts(DType.FLOAT32, f.batch(), "default"));
                }
                if (warmup) {
                    trim();  // the UNet run's activations, before the VAE's
                    probe.checkVae(pqc, facts.get("vae_post_quant_conv").dtype(), dec, facts.get("vae_decoder").dtype());
                }
            }
            Map<String, ArtifactSpec> specs = new LinkedHashMap<>();
            facts.forEach((role, f) -> specs.put(role, new ArtifactSpec(role, dir.artifacts().get(role), f.dtype(),
                    f.batch(), device(role, first, group, unetReplicas), f.source(), null)));
            List<Artifact> unetArtifacts = new ArrayList<>();
            for (TorchModule u : unets) {
                unetArtifacts.add(new TorchArtifact(u, probe.inputs("unet", facts.get("unet"), hidden)));
            }
            trim();  // and the warm-up's
            return new PipelineArtifacts(new TorchArtifact(te, probe.inputs("text_encoder", facts.get("text_encoder"), hidden)),
                    unetArtifacts,
                    new TorchArtifact(pqc, probe.inputs("vae_post_quant_conv", facts.get("vae_post_quant_conv"), hidden)),
                    new TorchArtifact(dec, probe.inputs("vae_decoder", facts.get("vae_decoder"), hidden),
                            !neuron && settings.trimMemory()),
                    specs);
        } catch (RuntimeException e) {
            PipelineArtifacts.closeQuietly(opened, e);
            throw e;
        }
    }

    /**
     * Rewrites a module (loaded as traced) for this CPU: the rewrites measured faster here ({@link CpuTuning}), or all
     * applicable ones when measuring is off. Nothing for modules without floating-point parameters.
     */
    private void optimize(TorchModule m, java.util.function.Supplier<Tensor[]> inputs) {
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

    private String device(String role, int first, int group, int replicas) {
        if (!neuron) {
            return "cpu";
        }
        return switch (role) {
            case "text_encoder" -> "nc" + first;
            case "unet" -> java.util.stream.IntStream.range(0, replicas).mapToObj(r -> "nc" + (first + r))
                    .collect(java.util.stream.Collectors.joining(","));
            default -> "nc" + (first + group - 1);
        };
    }

    /** libtorchneuron: the next module loads onto NeuronCore {@code core}. Nothing on the CPU. */
    private void place(int core) {
        if (neuron) {
            NeuronCorePlacement.setDefaultCores(core, 1);
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
