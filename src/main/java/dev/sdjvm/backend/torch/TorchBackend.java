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
            TorchModule te = track(opened, TorchModule.load(dir.artifacts().get("text_encoder"), "text_encoder", optimize));
            List<TorchModule> unets = new ArrayList<>();
            for (int i = 0; i < unetReplicas; i++) {
                unets.add(track(opened, TorchModule.load(dir.artifacts().get("unet"), "unet", optimize)));
            }
            TorchModule pqc = track(opened, TorchModule.load(dir.artifacts().get("vae_post_quant_conv"), "vae_post_quant_conv", optimize));
            TorchModule dec = track(opened, TorchModule.load(dir.artifacts().get("vae_decoder"), "vae_decoder", optimize));

            TorchOptimizer.releaseFreedMemory();  // the load's freed buffers, before the warm-up's activations
            TorchArtifactProbe probe = new TorchArtifactProbe(dir);
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
                    TorchOptimizer.releaseFreedMemory();  // the UNet run's activations, before the VAE's
                    probe.checkVae(pqc, facts.get("vae_post_quant_conv").dtype(), dec, facts.get("vae_decoder").dtype());
                }
            }
            Map<String, ArtifactSpec> specs = new LinkedHashMap<>();
            facts.forEach((role, f) -> specs.put(role, new ArtifactSpec(role, dir.artifacts().get(role), f.dtype(),
                    f.batch(), "cpu", f.source(), null)));
            List<Artifact> unetArtifacts = new ArrayList<>();
            for (TorchModule u : unets) {
                unetArtifacts.add(new TorchArtifact(u, probe.inputs("unet", facts.get("unet"), hidden)));
            }
            TorchOptimizer.releaseFreedMemory();  // and the warm-up's
            return new PipelineArtifacts(new TorchArtifact(te, probe.inputs("text_encoder", facts.get("text_encoder"), hidden)),
                    unetArtifacts,
                    new TorchArtifact(pqc, probe.inputs("vae_post_quant_conv", facts.get("vae_post_quant_conv"), hidden)),
                    new TorchArtifact(dec, probe.inputs("vae_decoder", facts.get("vae_decoder"), hidden), true),
                    specs);
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
