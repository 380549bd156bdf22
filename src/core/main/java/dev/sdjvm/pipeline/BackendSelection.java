package dev.sdjvm.pipeline;

import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.neuron.NeffBackend;
import dev.sdjvm.backend.neuron.NeffLocator;
import dev.sdjvm.backend.neuron.NeuronArchive;
import dev.sdjvm.backend.neuron.NeuronDevices;
import dev.sdjvm.backend.neuron.NeuronRuntime;
import dev.sdjvm.backend.torch.Torch;
import dev.sdjvm.backend.torch.TorchBackend;
import dev.sdjvm.backend.torch.TorchSettings;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ModelDirectory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides, once per load, what runs a model directory, and opens that backend: the one place that knows the concrete
 * backends ({@code backend.torch}, {@code backend.neuron}), so that the facade does not.
 * <ul>
 *   <li>{@link Kind#AUTO}: a manifest with target {@code cpu} runs on libtorch's CPU. Otherwise each artifact's
 *       NEFF is looked for ({@link NeffLocator}: inside the {@code .pt}, beside it, in the compiler work directory):
 *       NEFFs for every artifact of the directory run through the Neuron runtime ({@link Kind#NEURON}, no libtorch); none on
 *       CPU-traced artifacts run on the CPU; none on Neuron-compiled artifacts (manifest target {@code neuron} or
 *       Neuron ops in {@code unet.pt}) is an error naming where the NEFFs were looked for.</li>
 *   <li>{@link Kind#CPU}: refuses Neuron-compiled artifacts.</li>
 *   <li>{@link Kind#NEURON}: needs a NEFF for every artifact and libnrt.</li>
 * </ul>
 */
public final class BackendSelection {
    private static final Logger LOG = LoggerFactory.getLogger(BackendSelection.class);

    private BackendSelection() {
    }

    /** A backend: the facade's {@code Backend}, value for value. */
    public enum Kind {
        /** Chosen from the artifacts. */
        AUTO,
        /** libtorch on the CPU. */
        CPU,
        /** Each artifact's NEFF through libnrt. */
        NEURON
    }

    /**
     * How to open a backend: the facade's {@code LoadOptions} and {@code CpuOptions} as the pipeline sees them (it does
     * not depend on the facade's package). All but {@code threads} apply to the CPU backend only.
     *
     * @param threads            libtorch intra-op threads, 0 = libtorch's default
     * @param optimize           rewrite the TorchScript graphs at load
     * @param measure            keep only the rewrites measured faster on this CPU
     * @param tuningCache        where measured decisions are cached, or null
     * @param hugePages          transparent huge pages for libtorch's allocator
     * @param singleThreadedBlas OpenBLAS on one thread
     * @param trimMemory         {@code malloc_trim} after loading and before VAE runs
     * @param passiveWait        {@code OMP_WAIT_POLICY=PASSIVE}
     */
    public record Options(int threads, boolean optimize, boolean measure, Path tuningCache, boolean hugePages,
                          boolean singleThreadedBlas, boolean trimMemory, boolean passiveWait) {
    }

    /**
     * What will run a model directory.
     *
     * @param backend   the backend chosen ({@link Kind#CPU} or {@link Kind#NEURON})
     * @param neffs     per role, the NEFF found (empty when none was looked for or found)
     * @param reason    why this backend, in one sentence
     */
    public record Plan(Kind backend, Map<ArtifactRole, Optional<NeffLocator.NeffSource>> neffs, String reason) {
        /**
         * Where a role's NEFF was found.
         *
         * @param role a role
         * @return e.g. {@code unet.pt record 'unet/data/0' at byte 64 (NEFF ...)}, or null when none was found
         */
        public String neff(ArtifactRole role) {
            return neffs.getOrDefault(role, Optional.empty()).map(NeffLocator.NeffSource::describe).orElse(null);
        }

        /**
         * As {@link #neff} with the NEFF's SHA-256 (reads the whole NEFF: for {@code sd info}, not for loading).
         *
         * @param role the artifact
         * @return where the NEFF is, how it was found, its header and its hash; null without one
         */
        public String neffWithHash(ArtifactRole role) {
            return neffs.getOrDefault(role, Optional.empty()).map(n -> n.describe() + ", sha256 " + n.sha256())
                    .orElse(null);
        }
    }

    /**
     * Decides what runs a model directory, from its files (each artifact's NEFF is looked for; nothing is loaded).
     *
     * @param dir       the model directory
     * @param requested the backend asked for
     * @return the plan
     * @throws BackendException   when CPU is asked for Neuron-compiled artifacts
     * @throws ModelLoadException when NEFFs are missing where they are needed, naming where they were looked for
     */
    public static Plan plan(ModelDirectory dir, Kind requested) {
        String target = dir.manifest() == null ? null : dir.manifest().target();
        Path unet = dir.artifact(ArtifactRole.UNET);
        switch (requested) {
            case CPU:
                if ("neuron".equalsIgnoreCase(target) || NeuronArchive.isNeuronCompiled(unet)) {
                    throw new BackendException("backend CPU requested, but " + unet + " is compiled for Neuron; "
                            + "trace the model for CPU with tools/model/trace_cpu_sd21.py, or run on an inf2 instance");
                }
                return new Plan(Kind.CPU, Map.of(), "requested");
            case NEURON:
            case AUTO:
                break;
            default:
                throw new IllegalArgumentException(String.valueOf(requested));
        }
        if (requested == Kind.AUTO && "cpu".equalsIgnoreCase(target)) {
            return new Plan(Kind.CPU, Map.of(), "the manifest's target is cpu");
        }
        Map<ArtifactRole, Optional<NeffLocator.NeffSource>> neffs = new EnumMap<>(ArtifactRole.class);
        for (ArtifactRole role : dir.artifacts().keySet()) {
            neffs.put(role, NeffLocator.find(dir, role));
        }
        List<ArtifactRole> missing = new ArrayList<>();
        neffs.forEach((role, neff) -> {
            if (neff.isEmpty()) {
                missing.add(role);
            }
        });
        if (missing.isEmpty()) {
            return new Plan(Kind.NEURON, neffs, "every artifact carries its NEFF");
        }
        String where = "in the .pt (every record scanned for a NEFF header), beside it as compiled_models/<name>.neff, "
                + "or in " + dir.root().resolve("compiler_workdir") + "/<role>/";
        if (missing.size() < neffs.size()) {
            throw new ModelLoadException(dir.artifact(missing.get(0)), "no NEFF found for " + missing + " (looked "
                    + where + "), although " + neffs.entrySet().stream().filter(e -> e.getValue().isPresent())
                    .map(Map.Entry::getKey).toList() + " have one: the NEFF path needs one for every artifact");
        }
        if (requested == Kind.NEURON) {
            throw new ModelLoadException(unet, "backend NEURON runs each artifact's NEFF, and " + unet.getFileName()
                    + " holds no NEFF (looked " + where + ")");
        }
        if ("neuron".equalsIgnoreCase(target) || NeuronArchive.isNeuronCompiled(unet)) {
            throw new ModelLoadException(unet, "these artifacts are compiled for Neuron, but no NEFF was found (looked "
                    + where + "); the JVM runs Neuron-compiled artifacts only through their NEFFs (docs/neuron.md): "
                    + "put each compiled graph's .neff beside its .pt, or trace the model for CPU with "
                    + "tools/model/trace_cpu_sd21.py");
        }
        return new Plan(Kind.CPU, neffs, "CPU-traced TorchScript (no NEFF, no Neuron ops)");
    }

    /**
     * Opens the backend a plan chose.
     *
     * @param dir     the model directory
     * @param plan    its plan
     * @param options how to open it
     * @return the backend; close it after the pipelines loaded on it
     * @throws BackendException when the backend cannot start (libtorch or libnrt missing, no NeuronCore)
     */
    public static ArtifactBackend open(ModelDirectory dir, Plan plan, Options options) {
        ArtifactBackend b = switch (plan.backend()) {
            case CPU -> new TorchBackend(options.threads(), new TorchSettings(options.optimize(), options.measure(),
                    options.tuningCache(), options.hugePages(), options.singleThreadedBlas(), options.trimMemory(),
                    options.passiveWait()));
            case NEURON -> {
                Map<ArtifactRole, NeffLocator.NeffSource> neffs = new EnumMap<>(ArtifactRole.class);
                plan.neffs().forEach((role, s) -> neffs.put(role, s.orElseThrow()));
                yield new NeffBackend(neuronRuntime(), neffs);
            }
            default -> throw new IllegalArgumentException(String.valueOf(plan.backend()));
        };
        LOG.info("backend: {} for {} ({}): {}", plan.backend(), dir.root(), plan.reason(), b.describe());
        return b;
    }

    /**
     * UNet replicas when the caller asks for automatic (0): 2 on Neuron, AWS's {@code DataParallel(unet, [0, 1])}
     * (the CFG halves on two cores at once), when the visible cores allow two per pipeline; 1 on the CPU (one
     * generation already uses every core).
     *
     * @param backend   the backend the plan chose
     * @param devices   its devices ({@link ArtifactBackend#devices()})
     * @param pipelines pipelines to place on them
     * @return the replicas per pipeline
     */
    public static int defaultUnetReplicas(Kind backend, int devices, int pipelines) {
        return backend == Kind.NEURON && devices / pipelines >= 2 ? 2 : 1;
    }

    /**
     * {@return the version of the org.bytedeco:pytorch artifact on the class path (e.g. {@code 2.10.0-1.5.13}), read
     * without loading native code; {@code unknown}, or {@code none} without it}
     */
    public static String libtorchVersion() {
        return Torch.version();
    }

    /** libnrt.so bound; when it is missing, the message also says what the device scan found. */
    private static NeuronRuntime neuronRuntime() {
        List<Path> candidates = NeuronRuntime.candidates(System.getProperty(NeuronRuntime.PATH_PROPERTY), System.getenv());
        Path lib = candidates.stream().filter(java.nio.file.Files::isRegularFile).findFirst().orElse(null);
        if (lib == null) {
            String devices;
            try {
                NeuronDevices d = NeuronDevices.discover();
                devices = d.present() ? "Neuron devices are present (" + d + "), so the runtime library is what is missing"
                        : "there is no /dev/neuron* device either: not an Inferentia2/Trainium instance, or the "
                        + "aws-neuronx-dkms driver is not loaded";
            } catch (RuntimeException e) {
                devices = "device scan failed: " + e.getMessage();
            }
            throw new BackendException("these artifacts carry NEFFs for the Neuron runtime, but " + "libnrt.so was not "
                    + "found (looked in " + candidates + "; install aws-neuronx-runtime-lib or set -D"
                    + NeuronRuntime.PATH_PROPERTY + " / " + NeuronRuntime.PATH_ENV + "); " + devices);
        }
        return NeuronRuntime.open(lib);
    }
}
