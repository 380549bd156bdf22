package dev.sdjvm.pipeline;

import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.BackendProvider;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ModelDirectory;
import dev.sdjvm.model.ModelLayout;
import dev.sdjvm.model.NeuronArchive;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Decides, once per load, what runs a model directory, and opens that backend through its {@link BackendProvider}
 * (found with {@link ServiceLoader}: the backends are separate artifacts, and the core names no class of theirs). A
 * backend the model needs whose artifact is not on the class or module path is a {@link BackendException} naming
 * that artifact.
 * <ul>
 *   <li>{@link Kind#AUTO}: a manifest with target {@code cpu} runs on libtorch's CPU. Otherwise each artifact's
 *       NEFF is looked for (by the Neuron backend: inside the {@code .pt}, beside it, in the compiler work directory):
 *       NEFFs for every artifact of the directory run through the Neuron runtime ({@link Kind#NEURON}, no libtorch); none on
 *       CPU-traced artifacts run on the CPU; none on Neuron-compiled artifacts (manifest target {@code neuron} or
 *       Neuron ops in {@code unet.pt}) is an error naming where the NEFFs were looked for.</li>
 *   <li>{@link Kind#CPU}: refuses Neuron-compiled artifacts.</li>
 *   <li>{@link Kind#NEURON}: needs a NEFF for every artifact and libnrt.</li>
 * </ul>
 */
public final class BackendSelection {
    private static final Logger LOG = LoggerFactory.getLogger(BackendSelection.class);

    /** The backends on the class or module path, by type (the first provider of a type wins). */
    private static volatile Map<BackendProvider.Type, BackendProvider> installed;

    private BackendSelection() {
    }

    /** {@return the backend providers on the class or module path, by type} */
    public static Map<BackendProvider.Type, BackendProvider> installed() {
        Map<BackendProvider.Type, BackendProvider> m = installed;
        if (m == null) {
            m = new EnumMap<>(BackendProvider.Type.class);
            for (BackendProvider p : ServiceLoader.load(BackendProvider.class, BackendSelection.class.getClassLoader())) {
                m.putIfAbsent(p.type(), p);
            }
            LOG.debug("backends installed: {}", m.keySet());
            installed = m = Map.copyOf(m);
        }
        return m;
    }

    /** The provider of a backend, or an error naming the artifact that provides it and why it is needed. */
    private static BackendProvider provider(Map<BackendProvider.Type, BackendProvider> providers,
                                            BackendProvider.Type type, String why) {
        BackendProvider p = providers.get(type);
        if (p == null) {
            throw new BackendException(type.label() + " not found: add " + type.artifact() + " to the class or module "
                    + "path (" + why + ")");
        }
        return p;
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
    public record Plan(Kind backend, Map<ArtifactRole, Optional<BackendProvider.Found>> neffs, String reason) {
        /**
         * Where a role's NEFF was found.
         *
         * @param role a role
         * @return e.g. {@code unet.pt record 'unet/data/0' at byte 64 (NEFF ...)}, or null when none was found
         */
        public String neff(ArtifactRole role) {
            return neffs.getOrDefault(role, Optional.empty()).map(BackendProvider.Found::describe).orElse(null);
        }

        /**
         * As {@link #neff} with the NEFF's SHA-256 (reads the whole NEFF: for {@code sd info}, not for loading).
         *
         * @param role the artifact
         * @return where the NEFF is, how it was found, its header and its hash; null without one
         */
        public String neffWithHash(ArtifactRole role) {
            return neffs.getOrDefault(role, Optional.empty()).map(BackendProvider.Found::describeWithHash).orElse(null);
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
        return plan(dir, requested, installed());
    }

    /**
     * As {@link #plan(ModelDirectory, Kind)} with the given backends installed.
     *
     * @param dir       the model directory
     * @param requested the backend asked for
     * @param providers the backends installed, by type
     * @return the plan
     */
    public static Plan plan(ModelDirectory dir, Kind requested, Map<BackendProvider.Type, BackendProvider> providers) {
        String target = dir.manifest() == null ? null : dir.manifest().target();
        Path unet = dir.artifact(ArtifactRole.UNET);
        switch (requested) {
            case CPU:
                if ("neuron".equalsIgnoreCase(target) || dir.layout() == ModelLayout.OPTIMUM_NEURON
                        || NeuronArchive.isNeuronCompiled(unet)) {
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
        BackendProvider neuron = providers.get(BackendProvider.Type.NEURON);
        if (neuron == null) {
            // without the Neuron backend no NEFF can be looked for: what the files say decides (open() then names
            // the artifact of a backend that is missing)
            if (requested == Kind.NEURON) {
                return new Plan(Kind.NEURON, Map.of(), "requested");
            }
            if ("neuron".equalsIgnoreCase(target) || dir.layout() == ModelLayout.OPTIMUM_NEURON
                    || NeuronArchive.isNeuronCompiled(unet)) {
                return new Plan(Kind.NEURON, Map.of(), unet.getFileName() + " is compiled for Neuron");
            }
            return new Plan(Kind.CPU, Map.of(), "CPU-traced TorchScript (no Neuron ops; NEFFs not looked for "
                    + "without the Neuron backend)");
        }
        Map<ArtifactRole, Optional<BackendProvider.Found>> neffs = neuron.survey(dir);
        List<ArtifactRole> missing = new ArrayList<>();
        neffs.forEach((role, neff) -> {
            if (neff.isEmpty()) {
                missing.add(role);
            }
        });
        if (missing.isEmpty()) {
            return new Plan(Kind.NEURON, Map.copyOf(neffs), "every artifact carries its NEFF");
        }
        String where = dir.layout() == ModelLayout.OPTIMUM_NEURON
                ? "in each <component>/" + ModelDirectory.OPTIMUM_FILE_NAME + " (every record scanned for a NEFF header), "
                + "beside it as model.neff, or in " + dir.root().resolve("compiler_workdir") + "/<role>/"
                : "in the .pt (every record scanned for a NEFF header), beside it as compiled_models/<name>.neff, "
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
        if ("neuron".equalsIgnoreCase(target) || dir.layout() == ModelLayout.OPTIMUM_NEURON
                || NeuronArchive.isNeuronCompiled(unet)) {
            throw new ModelLoadException(unet, "these artifacts are compiled for Neuron, but no NEFF was found (looked "
                    + where + "); the JVM runs Neuron-compiled artifacts only through their NEFFs (docs/neuron.md): "
                    + "put each compiled graph's .neff beside its .pt, or trace the model for CPU with "
                    + "tools/model/trace_cpu_sd21.py");
        }
        return new Plan(Kind.CPU, Map.copyOf(neffs), "CPU-traced TorchScript (no NEFF, no Neuron ops)");
    }

    /**
     * Opens the backend a plan chose.
     *
     * @param dir     the model directory
     * @param plan    its plan
     * @param options how to open it
     * @return the backend; close it after the pipelines loaded on it
     * @throws BackendException when the backend cannot start (libtorch or libnrt missing, no NeuronCore), or its
     *                          artifact is not on the class or module path (naming the artifact)
     */
    public static ArtifactBackend open(ModelDirectory dir, Plan plan, Options options) {
        return open(dir, plan, options, installed());
    }

    /**
     * As {@link #open(ModelDirectory, Plan, Options)} with the given backends installed.
     *
     * @param dir       the model directory
     * @param plan      its plan
     * @param options   how to open it
     * @param providers the backends installed, by type
     * @return the backend
     */
    public static ArtifactBackend open(ModelDirectory dir, Plan plan, Options options,
                                       Map<BackendProvider.Type, BackendProvider> providers) {
        BackendProvider.Type type = switch (plan.backend()) {
            case CPU -> BackendProvider.Type.CPU;
            case NEURON -> BackendProvider.Type.NEURON;
            default -> throw new IllegalArgumentException(String.valueOf(plan.backend()));
        };
        Map<ArtifactRole, BackendProvider.Found> found = new EnumMap<>(ArtifactRole.class);
        if (type == BackendProvider.Type.NEURON) {
            plan.neffs().forEach((role, s) -> found.put(role, s.orElseThrow()));
        }
        ArtifactBackend b = provider(providers, type, dir.root() + " needs it: " + plan.reason()).open(dir, found,
                new BackendProvider.Options(options.threads(), options.optimize(), options.measure(),
                        options.tuningCache(), options.hugePages(), options.singleThreadedBlas(), options.trimMemory(),
                        options.passiveWait()));
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
     * without loading native code; {@code unknown}, or {@code none} without it (or without the CPU backend)}
     */
    public static String libtorchVersion() {
        BackendProvider cpu = installed().get(BackendProvider.Type.CPU);
        return cpu == null ? "none" : cpu.version();
    }
}
