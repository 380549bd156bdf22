package dev.sdjvm.backend.neuron;

import com.sun.jna.Memory;
import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.HiddenStatesLayout;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.PipelineArtifacts;
import dev.sdjvm.backend.TensorBinding;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.SdxlConfig;
import dev.sdjvm.model.UNetSignature;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The NEFF path: each artifact's compiled NEFF runs on the NeuronCores through the Neuron runtime's C API (libnrt via
 * JNA), with no libtorch, Python or torch-neuronx in the process.
 *
 * <h2>Placement</h2>
 * Pipeline {@code p} of {@code k} UNet replicas owns the cores {@code [p*k, p*k + k)} of the visible ones
 * ({@code NEURON_RT_VISIBLE_CORES}): UNet replica {@code r} on core {@code p*k + r} (two replicas = AWS's
 * {@code DataParallel(unet, [0, 1])}: the CFG halves run on two cores at once), the text encoder on the group's first
 * core and the VAE (post_quant_conv, decoder, and the encoder when the model has one) on its last: each role's
 * {@link ArtifactRole#placement()}. Throughput mode ({@code pipelines > 1}) thus puts
 * independent pipelines on disjoint core groups (inf2.xlarge/8xlarge: 2 cores, inf2.24xlarge 12, inf2.48xlarge 24).
 */
public final class NeffBackend implements ArtifactBackend {
    private static final Logger LOG = LoggerFactory.getLogger(NeffBackend.class);

    private final NeuronRuntime runtime;
    private final Map<ArtifactRole, NeffLocator.NeffSource> neffs;
    private final int visibleCores;
    private volatile boolean closed;

    /**
     * Initialises the runtime (process-wide, see {@link NeuronRuntime#attach()}).
     *
     * @param neffs the NEFF of each role the model directory has
     */
    public NeffBackend(NeuronRuntime runtime, Map<ArtifactRole, NeffLocator.NeffSource> neffs) {
        this.runtime = runtime;
        this.neffs = Map.copyOf(neffs);
        runtime.attach();
        try {
            this.visibleCores = runtime.visibleCoreCount();
            if (visibleCores < 1) {
                throw new BackendException("the Neuron runtime sees no NeuronCore (nrt_get_visible_nc_count = "
                        + visibleCores + "; check NEURON_RT_VISIBLE_CORES)");
            }
        } catch (RuntimeException e) {
            runtime.detach();
            throw e;
        }
    }

    @Override
    public int devices() {
        return visibleCores;
    }

    @Override
    public String describe() {
        NeuronRuntime.Version v = runtime.versionOrNull();
        return "Neuron runtime " + (v == null ? "(version unknown)" : v) + " (" + runtime.library() + "; " + visibleCores + " of "
                + runtime.totalCoreCountOrUnknown() + " NeuronCores visible)";
    }

    /** The cores of pipeline {@code pipeline} with {@code replicas} UNet replicas (see the class comment). */
    static int[] cores(int pipeline, int replicas, int visible) {
        int group = Math.max(1, replicas);
        int first = pipeline * group;
        if (first + group > visible) {
            throw new BackendException(visible + " NeuronCore(s) visible: pipeline " + (pipeline + 1) + " with " + replicas
                    + " UNet replica(s) needs cores " + first + ".." + (first + group - 1) + " (pipelines x UNet replicas "
                    + "must not exceed the visible cores; see NEURON_RT_VISIBLE_CORES)");
        }
        int[] c = new int[group];
        for (int i = 0; i < group; i++) {
            c[i] = first + i;
        }
        return c;
    }

    /** The model's manifest while a pipeline loads, or null. */
    private volatile dev.sdjvm.model.Manifest manifest;

    @Override
    public PipelineArtifacts loadPipeline(ModelDirectory dir, int pipeline, int unetReplicas, boolean warmup) {
        manifest = dir.manifest();  // shapes and dtypes the runtime may not report (NrtTensorInfo.complete)
        if (closed) {
            throw new IllegalStateException("the Neuron backend is closed");
        }
        int[] cores = cores(pipeline, unetReplicas, visibleCores);
        UNetSignature signature = dir.unetSignature();
        List<Artifact> loaded = new ArrayList<>();
        try {
            Map<ArtifactRole, List<NeffArtifact>> byRole = new EnumMap<>(ArtifactRole.class);
            Map<ArtifactRole, Long> loadNanos = new EnumMap<>(ArtifactRole.class);
            for (ArtifactRole role : ArtifactRole.values()) {
                if (!dir.has(role)) {
                    continue;
                }
                int[] on = switch (role.placement()) {
                    case FIRST_CORE -> new int[] {cores[0]};
                    case LAST_CORE -> new int[] {cores[cores.length - 1]};
                    case REPLICAS -> {
                        int[] c = new int[unetReplicas];
                        for (int r = 0; r < unetReplicas; r++) {
                            c[r] = cores[r % cores.length];
                        }
                        yield c;
                    }
                };
                long t0 = System.nanoTime();
                byRole.put(role, loadOn(role, role.inputs(signature), on, loaded));
                loadNanos.put(role, System.nanoTime() - t0);
            }
            int hidden = checkTextEncoder(byRole.get(ArtifactRole.TEXT_ENCODER).get(0));
            int textEmbeds = -1;
            if (byRole.containsKey(ArtifactRole.TEXT_ENCODER_2)) {
                // SDXL: the UNet is conditioned on both encoders' penultimate hidden states, side by side
                NeffArtifact te1 = byRole.get(ArtifactRole.TEXT_ENCODER).get(0);
                HiddenStatesLayout l1 = layout(te1);
                HiddenStatesLayout l2 = layout(byRole.get(ArtifactRole.TEXT_ENCODER_2).get(0));
                if (!l2.projection()) {
                    throw misfit(byRole.get(ArtifactRole.TEXT_ENCODER_2).get(0), "SDXL's second encoder returns "
                            + "(text_embeds, last_hidden_state, ...), the NEFF (last_hidden_state, pooler_output, ...)");
                }
                hidden = l1.hiddenSize() + l2.hiddenSize();
                textEmbeds = l2.pooledSize();
            }
            for (NeffArtifact u : byRole.get(ArtifactRole.UNET)) {
                checkUnet(u, hidden, textEmbeds);
            }
            checkVae(byRole.containsKey(ArtifactRole.VAE_POST_QUANT_CONV)
                    ? byRole.get(ArtifactRole.VAE_POST_QUANT_CONV).get(0) : null, byRole.get(ArtifactRole.VAE_DECODER).get(0), dir);
            if (byRole.containsKey(ArtifactRole.VAE_ENCODER)) {
                checkEncoder(byRole.get(ArtifactRole.VAE_ENCODER).get(0), dir);
            }
            if (warmup) {
                for (Artifact a : loaded) {
                    warm(a);
                }
            }
            Map<ArtifactRole, ArtifactSpec> specs = new EnumMap<>(ArtifactRole.class);
            Map<ArtifactRole, List<Artifact>> artifacts = new EnumMap<>(ArtifactRole.class);
            byRole.forEach((role, list) -> {
                NeffArtifact a = list.get(0);
                DType dtype = role == ArtifactRole.TEXT_ENCODER || role == ArtifactRole.TEXT_ENCODER_2  // int ids in
                        ? a.outputs().get(bindOutput(a, "last_hidden_state")).dtype() : inputDType(a);
                ArtifactSpec spec = spec(a, dtype, list);
                specs.put(role, spec);
                artifacts.put(role, new ArrayList<>(list));
                // one line per artifact, with the two versions that must fit together side by side: the compiler
                // that built the NEFF and the runtime
                NeffLocator.NeffSource src = neffs.get(role);
                LOG.info("{}: {} ({} on {}, batch {}, inputs {}; NEFF built by {}, Neuron runtime {}; loaded in {} ms)",
                        role, spec.file().getFileName(), dtype.manifestName(), spec.device(), spec.batch(),
                        TensorSpec.summary(a.inputs()), src.header().buildVersion().isEmpty()
                                ? "an unnamed compiler" : "neuronx-cc " + src.header().buildVersion(),
                        runtime.versionOrNull(), loadNanos.get(role) / 1_000_000);
                LOG.debug("{}: {}", role, spec);
            });
            LOG.info("pipeline {}: NEFFs loaded on NeuronCores {}", pipeline, Arrays.toString(cores));
            return new PipelineArtifacts(artifacts, specs);
        } catch (RuntimeException e) {
            PipelineArtifacts.closeQuietly(loaded, e);
            throw e;
        }
    }

    /** Reads the role's NEFF once and loads it onto each core of {@code on}. */
    private List<NeffArtifact> loadOn(ArtifactRole role, List<String> contract, int[] on, List<Artifact> loaded) {
        NeffLocator.NeffSource src = neffs.get(role);
        if (src == null) {
            throw new ModelLoadException(null, "no NEFF for " + role);
        }
        List<NeffArtifact> out = new ArrayList<>();
        LOG.debug("{}: loading NEFF {}, built by {}, on Neuron runtime {}", role, src.describe(),
                src.header().buildVersion().isEmpty() ? "an unnamed compiler" : "neuronx-cc " + src.header().buildVersion(),
                runtime.versionOrNull());
        try (Memory bytes = src.load()) {
            for (int core : on) {
                NeffArtifact a;
                try {
                    a = NeffArtifact.load(runtime, bytes, src.header().totalSize(), core, role, contract, src.file(),
                            manifest == null ? null : manifest.artifacts().get(role.id()));
                } catch (BackendException e) {
                    throw new BackendException("cannot load the " + role + " NEFF (" + src.describe() + ") on NeuronCore "
                            + core + ": " + e.getMessage(), e.status(), e);
                }
                loaded.add(a);
                out.add(a);
                checkWeightsInlined(a);
            }
        }
        return out;
    }

    /**
     * A NEFF with more inputs than its role takes was compiled with its weights as inputs (torch-neuronx's
     * {@code inline_weights_to_neff=False}, optimum-cli's default): torch-neuronx feeds them from the TorchScript
     * module in an order no public source documents, so such a NEFF is refused at load.
     */
    private static void checkWeightsInlined(NeffArtifact a) {
        int extra = a.inputs().size() - a.contract().size();
        if (extra > 0) {
            throw misfit(a, "it takes " + a.inputs().size() + " inputs, the " + a.role() + " " + a.contract().size()
                    + " " + a.contract() + ": " + extra + " more, as a NEFF compiled with its weights as inputs "
                    + "(torch_neuronx.trace(..., inline_weights_to_neff=False); optimum-cli export neuron without "
                    + "--inline-weights-neff). Their order is not documented, so it cannot run here: compile with the "
                    + "weights inlined (docs/neuron.md)");
        }
    }

    /** The text encoder: one [1,T] integer input; its last_hidden_state output [1,T,H]. Returns H. */
    private static int checkTextEncoder(NeffArtifact te) {
        TensorSpec in = te.inputs().get(bindInput(te, "input_ids"));
        if (te.inputs().size() != 1 || in.rank() != 2 || in.dim(0) != 1
                || (in.dtype() != DType.INT64 && in.dtype() != DType.INT32)) {
            throw misfit(te, "expected one input of token ids [1,77] (int64 or int32), the NEFF has " + te.inputs());
        }
        long tokens = in.dim(1);
        TensorSpec o = te.outputs().get(bindOutput(te, "last_hidden_state"));
        if (o.rank() != 3 || o.dim(0) != 1 || o.dim(1) != tokens) {
            throw misfit(te, "its last_hidden_state " + o + " is not [1," + tokens + ",H] (outputs " + te.outputs() + ")");
        }
        return Math.toIntExact(o.dim(2));
    }

    /**
     * The UNet's encoder_hidden_states take the text encoder's hidden size (SDXL: both encoders', side by side), and an
     * SDXL UNet's text_embeds the second encoder's width and time_ids six values (the sample is checked by the
     * pipeline).
     */
    private static void checkUnet(NeffArtifact u, int hidden, int textEmbeds) {
        TensorSpec s = u.inputs().get(bindInput(u, "encoder_hidden_states"));
        if (s.rank() != 3 || s.dim(2) != hidden) {
            throw misfit(u, "encoder_hidden_states " + s + " does not take the text encoder" + (textEmbeds >= 0
                    ? "s' hidden sizes together, " : "'s hidden size ") + hidden);
        }
        if (textEmbeds >= 0) {
            long b = s.dim(0);
            TensorSpec te = u.inputs().get(bindInput(u, "text_embeds"));
            if (te.rank() != 2 || te.dim(0) != b || te.dim(1) != textEmbeds) {
                throw misfit(u, "text_embeds " + te + " is not [" + b + "," + textEmbeds + "] (text_encoder_2's text_embeds)");
            }
            TensorSpec ti = u.inputs().get(bindInput(u, "time_ids"));
            if (ti.rank() != 2 || ti.dim(0) != b || ti.dim(1) != SdxlConfig.TIME_IDS) {
                throw misfit(u, "time_ids " + ti + " is not [" + b + "," + SdxlConfig.TIME_IDS + "]");
            }
        }
    }

    /** An SDXL text encoder: one [1,T] integer input; the structure of its outputs ({@link HiddenStatesLayout}). */
    private static HiddenStatesLayout layout(NeffArtifact te) {
        TensorSpec in = te.inputs().get(bindInput(te, "input_ids"));
        if (te.inputs().size() != 1 || in.rank() != 2 || in.dim(0) != 1
                || (in.dtype() != DType.INT64 && in.dtype() != DType.INT32)) {
            throw misfit(te, "expected one input of token ids [1,77] (int64 or int32), the NEFF has " + te.inputs());
        }
        try {
            return HiddenStatesLayout.of(te.role(), te.outputs(), in.dim(1));
        } catch (BackendException e) {
            throw misfit(te, e.getMessage());
        }
    }

    private static void checkVae(NeffArtifact pqc, NeffArtifact dec, ModelDirectory dir) {
        long[] lat = {1, dir.latentChannels(), dir.latentHeight(), dir.latentWidth()};
        for (NeffArtifact a : pqc == null ? List.of(dec) : List.of(pqc, dec)) {
            if (a.inputs().size() != 1 || !Arrays.equals(a.inputs().get(bindInput(a, "latents")).shape(), lat)) {
                throw misfit(a, "expected one input of latents " + Arrays.toString(lat) + " (from unet/config.json and "
                        + "vae/config.json), the NEFF has " + a.inputs());
            }
        }
        if (pqc != null && !Arrays.equals(pqc.outputs().get(bindOutput(pqc, "latents")).shape(), lat)) {
            throw misfit(pqc, "expected an output " + Arrays.toString(lat) + ", the NEFF has " + pqc.outputs());
        }
        long[] img = {1, 3, dir.height(), dir.width()};
        if (!Arrays.equals(dec.outputs().get(bindOutput(dec, "image")).shape(), img)) {
            throw misfit(dec, "expected an image output " + Arrays.toString(img) + ", the NEFF has " + dec.outputs());
        }
    }

    /** The VAE encoder: one image input [1,3,H,W]; moments [1, 2 x latent channels, h, w] out. */
    private static void checkEncoder(NeffArtifact enc, ModelDirectory dir) {
        long[] img = {1, 3, dir.height(), dir.width()};
        if (enc.inputs().size() != 1 || !Arrays.equals(enc.inputs().get(bindInput(enc, "image")).shape(), img)) {
            throw misfit(enc, "expected one input of an image " + Arrays.toString(img) + ", the NEFF has " + enc.inputs());
        }
        long[] moments = {1, 2L * dir.latentChannels(), dir.latentHeight(), dir.latentWidth()};
        if (!Arrays.equals(enc.outputs().get(bindOutput(enc, "latent_parameters")).shape(), moments)) {
            throw misfit(enc, "expected the latent distribution's parameters " + Arrays.toString(moments)
                    + " out, the NEFF has " + enc.outputs());
        }
    }

    private static int bindInput(NeffArtifact a, String name) {
        try {
            return TensorBinding.input(a, name);
        } catch (BackendException e) {
            throw misfit(a, "no input " + name + " (input" + a.contract().indexOf(name) + "): " + a.inputs());
        }
    }

    private static int bindOutput(NeffArtifact a, String name) {
        try {
            return TensorBinding.output(a.role(), a.outputs(), name);
        } catch (BackendException e) {
            throw misfit(a, "no output " + name + " (output" + a.role().outputs().indexOf(name) + "): " + a.outputs());
        }
    }

    private static ModelLoadException misfit(NeffArtifact a, String what) {
        return new ModelLoadException(a.file(), a.role() + " NEFF does not fit: " + what);
    }

    /** One execution on zeros, so that a NEFF the runtime cannot run fails the load, not the first request. */
    private static void warm(Artifact a) {
        long[][] shapes = a.inputs().stream().map(TensorSpec::shape).toArray(long[][]::new);
        try (Invocation inv = a.open(shapes)) {
            for (int i = 0; i < shapes.length; i++) {
                int n = Math.toIntExact(a.inputs().get(i).numel());
                DType d = a.inputs().get(i).dtype();
                if (d == DType.INT64 || d == DType.INT32) {
                    inv.write(i, 0, new int[n], 0, n);
                } else {
                    inv.write(i, 0, new float[n], 0, n);
                }
            }
            inv.run();
        } catch (BackendException e) {
            throw new BackendException("warm-up run of " + a.role() + " on " + a.device() + " failed: " + e.getMessage(),
                    e.status(), e);
        }
    }

    private static DType inputDType(NeffArtifact a) {
        return a.inputs().stream().map(TensorSpec::dtype).filter(d -> d != DType.INT64 && d != DType.INT32)
                .findFirst().orElse(null);
    }

    private ArtifactSpec spec(NeffArtifact a, DType dtype, List<NeffArtifact> replicas) {
        long b = a.inputs().get(0).dim(0);
        String device = replicas.stream().map(NeffArtifact::device).collect(Collectors.joining(","));
        return new ArtifactSpec(a.role(), a.file(), dtype, (int) b, device, "neff", neffs.get(a.role()).describe());
    }

    /** Detaches from the runtime ({@code nrt_close} after the last user). Call after the pipelines are closed. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            runtime.detach();
        }
    }
}
