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
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.InferenceMode;

/** libtorch (org.bytedeco:pytorch): TorchScript artifacts on the CPU. */
public final class TorchBackend implements ArtifactBackend {
    private final boolean optimize;

    /**
     * @param threads  libtorch intra-op threads, 0 = libtorch's default
     * @param optimize rewrite the graphs for faster inference at load ({@link TorchOptimizer})
     */
    public TorchBackend(int threads, boolean optimize) {
        this.optimize = optimize;
        Torch.load();
        if (threads > 0) {
            Torch.setNumThreads(threads);
        }
    }

    @Override
    public int devices() {
        return 1;
    }

    @Override
    public String describe() {
        return "libtorch " + Torch.version() + " (CPU, " + Torch.numThreads() + " threads"
                + (optimize ? ", graphs optimized" : ", graphs as traced") + ")";
    }

    @Override
    public PipelineArtifacts loadPipeline(ModelDirectory dir, int pipeline, int unetReplicas, boolean warmup) {
        List<TorchModule> opened = new ArrayList<>();
        try {
            Map<ArtifactRole, List<TorchModule>> modules = new EnumMap<>(ArtifactRole.class);
            for (ArtifactRole role : ArtifactRole.values()) {
                if (!dir.has(role)) {
                    continue;
                }
                int copies = role.placement() == ArtifactRole.Placement.REPLICAS ? unetReplicas : 1;
                List<TorchModule> list = new ArrayList<>();
                for (int i = 0; i < copies; i++) {
                    list.add(track(opened, TorchModule.load(dir.artifact(role), role.id(), optimize)));
                }
                modules.put(role, list);
            }
            TorchModule te = modules.get(ArtifactRole.TEXT_ENCODER).get(0);
            TorchModule unet = modules.get(ArtifactRole.UNET).get(0);

            TorchOptimizer.releaseFreedMemory();  // the load's freed buffers, before the warm-up's activations
            TorchArtifactProbe probe = new TorchArtifactProbe(dir);
            Map<ArtifactRole, TorchArtifactProbe.Facts> facts = new EnumMap<>(ArtifactRole.class);
            int hidden;
            try (PointerScope scope = new PointerScope(); InferenceMode guard = new InferenceMode()) {
                facts.put(ArtifactRole.TEXT_ENCODER, probe.facts(ArtifactRole.TEXT_ENCODER, te));
                hidden = warmup ? probe.textEncoderHiddenSize(te) : 0;
                TorchArtifactProbe.Facts u = probe.facts(ArtifactRole.UNET, unet);
                if (warmup || u.dtype() == null) {  // no dtype: a "probe" artifact, learnt by running it
                    u = probe.probeUnet(unet, u, hidden > 0 ? hidden : probe.textEncoderHiddenSize(te));
                }
                facts.put(ArtifactRole.UNET, u);
                for (ArtifactRole role : modules.keySet()) {
                    if (!facts.containsKey(role)) {  // the VAE's parts: float32 unless they say otherwise
                        TorchArtifactProbe.Facts f = probe.facts(role, modules.get(role).get(0));
                        facts.put(role, f.dtype() != null ? f : new TorchArtifactProbe.Facts(DType.FLOAT32, f.batch(), "default"));
                    }
                }
                if (warmup) {
                    TorchOptimizer.releaseFreedMemory();  // the UNet run's activations, before the VAE's
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
                specs.put(role, new ArtifactSpec(role, dir.artifact(role), f.dtype(), f.batch(), "cpu", f.source(), null));
                List<TensorSpec> inputs = probe.inputs(role, f, hidden);
                boolean releaseFirst = role == ArtifactRole.VAE_DECODER || role == ArtifactRole.VAE_ENCODER;
                List<Artifact> list = new ArrayList<>();
                for (TorchModule m : e.getValue()) {
                    list.add(new TorchArtifact(role, m, inputs, releaseFirst));
                }
                artifacts.put(role, list);
            }
            TorchOptimizer.releaseFreedMemory();  // and the warm-up's
            return new PipelineArtifacts(artifacts, specs);
        } catch (RuntimeException e) {
            PipelineArtifacts.closeQuietly(opened, e);
            throw e;
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
