package dev.sdjvm.backend.neuron;

import com.sun.jna.Memory;
import dev.sdjvm.backend.Artifact;
import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.Invocation;
import dev.sdjvm.backend.PipelineArtifacts;
import dev.sdjvm.backend.TensorSpec;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactSpec;
import dev.sdjvm.model.DType;
import dev.sdjvm.model.ModelDirectory;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
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
 * core and the VAE (post_quant_conv + decoder) on its last. Throughput mode ({@code pipelines > 1}) thus puts
 * independent pipelines on disjoint core groups (inf2.xlarge/8xlarge: 2 cores, inf2.24xlarge 12, inf2.48xlarge 24).
 */
public final class NeffBackend implements ArtifactBackend {
    private static final Logger LOG = LoggerFactory.getLogger(NeffBackend.class);

    private final NeuronRuntime runtime;
    private final Map<String, NeffLocator.NeffSource> neffs;
    private final int visibleCores;
    private volatile boolean closed;

    /**
     * Initialises the runtime (process-wide, see {@link NeuronRuntime#attach()}).
     *
     * @param neffs the NEFF of each of the four roles
     */
    public NeffBackend(NeuronRuntime runtime, Map<String, NeffLocator.NeffSource> neffs) {
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

    @Override
    public PipelineArtifacts loadPipeline(ModelDirectory dir, int pipeline, int unetReplicas, boolean warmup) {
        if (closed) {
            throw new IllegalStateException("the Neuron backend is closed");
        }
        int[] cores = cores(pipeline, unetReplicas, visibleCores);
        List<Artifact> loaded = new ArrayList<>();
        try {
            NeffArtifact te = load("text_encoder", cores[0], 1, loaded).get(0);
            List<NeffArtifact> unets = new ArrayList<>();
            int[] unetCores = new int[unetReplicas];
            for (int r = 0; r < unetReplicas; r++) {
                unetCores[r] = cores[r % cores.length];
            }
            unets.addAll(loadOn("unet", unetCores, loaded));
            NeffArtifact pqc = load("vae_post_quant_conv", cores[cores.length - 1], 1, loaded).get(0);
            NeffArtifact dec = load("vae_decoder", cores[cores.length - 1], 1, loaded).get(0);
            int hidden = checkTextEncoder(te);
            for (NeffArtifact u : unets) {
                checkUnet(u, dir, hidden);
            }
            checkVae(pqc, dec, dir);
            if (warmup) {
                for (Artifact a : loaded) {
                    warm(a);
                }
            }
            Map<String, ArtifactSpec> specs = new LinkedHashMap<>();
            specs.put("text_encoder", spec(te, outputDType(te), List.of(te)));
            specs.put("unet", spec(unets.get(0), inputDType(unets.get(0)), unets));
            specs.put("vae_post_quant_conv", spec(pqc, inputDType(pqc), List.of(pqc)));
            specs.put("vae_decoder", spec(dec, inputDType(dec), List.of(dec)));
            LOG.info("pipeline {}: NEFFs loaded on NeuronCores {} ({})", pipeline, Arrays.toString(cores), specs.values());
            return new PipelineArtifacts(te, new ArrayList<>(unets), pqc, dec, specs);
        } catch (RuntimeException e) {
            PipelineArtifacts.closeQuietly(loaded, e);
            throw e;
        }
    }

    private List<NeffArtifact> load(String role, int core, int copies, List<Artifact> loaded) {
        int[] on = new int[copies];
        Arrays.fill(on, core);
        return loadOn(role, on, loaded);
    }

    /** Reads the role's NEFF once and loads it onto each core of {@code on}. */
    private List<NeffArtifact> loadOn(String role, int[] on, List<Artifact> loaded) {
        NeffLocator.NeffSource src = neffs.get(role);
        if (src == null) {
            throw new ModelLoadException(null, "no NEFF for " + role);
        }
        List<NeffArtifact> out = new ArrayList<>();
        try (Memory bytes = src.load()) {
            for (int core : on) {
                NeffArtifact a;
                try {
                    a = NeffArtifact.load(runtime, bytes, src.header().totalSize(), core, role, src.file());
                } catch (BackendException e) {
                    throw new BackendException("cannot load the " + role + " NEFF (" + src.describe() + ") on NeuronCore "
                            + core + ": " + e.getMessage(), e.status(), e);
                }
                loaded.add(a);
                out.add(a);
            }
        }
        return out;
    }

    /** The text encoder: one [1,T] integer input; an output [1,T,H] (last_hidden_state). Returns H. */
    private static int checkTextEncoder(NeffArtifact te) {
        List<TensorSpec> in = te.inputs();
        if (in.size() != 1 || in.get(0).rank() != 2 || in.get(0).dim(0) != 1
                || (in.get(0).dtype() != DType.INT64 && in.get(0).dtype() != DType.INT32)) {
            throw misfit(te, "expected one input of token ids [1,77] (int64 or int32), the NEFF has " + te.inputs());
        }
        long tokens = in.get(0).dim(1);
        for (TensorSpec o : te.outputs()) {
            if (o.rank() == 3 && o.dim(0) == 1 && o.dim(1) == tokens) {
                return Math.toIntExact(o.dim(2));
            }
        }
        throw misfit(te, "expected an output last_hidden_state [1," + tokens + ",H], the NEFF has " + te.outputs());
    }

    private static void checkUnet(NeffArtifact u, ModelDirectory dir, int hidden) {
        for (TensorSpec s : u.inputs()) {
            if (s.rank() == 3 && s.dim(2) != hidden) {
                throw misfit(u, "encoder_hidden_states " + s + " does not take the text encoder's hidden size " + hidden);
            }
        }
        // the sample's layout is checked by the pipeline's UNet runner against the model directory
    }

    private static void checkVae(NeffArtifact pqc, NeffArtifact dec, ModelDirectory dir) {
        long[] lat = {1, dir.latentChannels(), dir.latentHeight(), dir.latentWidth()};
        for (NeffArtifact a : List.of(pqc, dec)) {
            if (a.inputs().size() != 1 || !Arrays.equals(a.inputs().get(0).shape(), lat)) {
                throw misfit(a, "expected one input of latents " + Arrays.toString(lat) + " (from unet/config.json and "
                        + "vae/config.json), the NEFF has " + a.inputs());
            }
        }
        if (pqc.outputs().stream().noneMatch(o -> Arrays.equals(o.shape(), lat))) {
            throw misfit(pqc, "expected an output " + Arrays.toString(lat) + ", the NEFF has " + pqc.outputs());
        }
        long[] img = {1, 3, dir.height(), dir.width()};
        if (dec.outputs().stream().noneMatch(o -> Arrays.equals(o.shape(), img))) {
            throw misfit(dec, "expected an image output " + Arrays.toString(img) + ", the NEFF has " + dec.outputs());
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

    private static DType outputDType(NeffArtifact a) {
        return a.outputs().stream().filter(o -> o.rank() == 3).map(TensorSpec::dtype).findFirst().orElse(null);
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
