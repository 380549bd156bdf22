package dev.sdjvm.backend.neuron;

import dev.sdjvm.errors.BackendException;
import dev.sdjvm.errors.ModelLoadException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The availability check of the libtorchneuron fallback ({@code Backend.TORCH_NEURON}): are Neuron devices,
 * libnrt and a libtorchneuron compatible with this JVM's libtorch all here, and if so load libtorchneuron at the right
 * moment. Also tells whether a TorchScript artifact was compiled for Neuron (used by the backend selection for every
 * path). The default Neuron path does not go through this class: it runs each artifact's NEFF through libnrt
 * ({@link NeffBackend}, {@link NeuronRuntime}); see docs/neuron.md.
 *
 * <pre>{@code
 * NeuronPlatform neuron = NeuronPlatform.detect();
 * if (NeuronPlatform.isNeuronCompiled(dir.resolve("compiled_models/unet.pt"))) {
 *     neuron.loadTorchNeuron();             // throws a BackendException naming what is missing
 *     // ... torch::jit::load the artifacts
 * }
 * }</pre>
 *
 * {@link #detect()} never throws: it gathers every problem into {@link #problems()}; {@link #requireAvailable()} and
 * {@link #loadTorchNeuron()} turn them into one {@link BackendException}.
 */
public final class NeuronPlatform {
    private static final Logger LOG = LoggerFactory.getLogger(NeuronPlatform.class);

    /** Text that only a Neuron-compiled TorchScript archive contains (ops, custom class, op namespace). */
    private static final String[] NEURON_MARKERS = {"ops.neuron.", "torch.classes.neuron", "neuron::forward"};
    private static final long MAX_SCANNED_ENTRY = 64L << 20;

    private final NeuronDevices devices;
    private final NeuronRuntime runtime;
    private final NeuronRuntime.Version runtimeVersion;
    private final Path torchNeuron;
    private final TorchNeuronPackaging.Inspection inspection;
    private final TorchNeuronPackaging.LibtorchVersion libtorch;
    private final List<String> problems;

    private NeuronPlatform(NeuronDevices devices, NeuronRuntime runtime, NeuronRuntime.Version runtimeVersion,
            Path torchNeuron, TorchNeuronPackaging.Inspection inspection,
            TorchNeuronPackaging.LibtorchVersion libtorch, List<String> problems) {
        this.devices = devices;
        this.runtime = runtime;
        this.runtimeVersion = runtimeVersion;
        this.torchNeuron = torchNeuron;
        this.inspection = inspection;
        this.libtorch = libtorch;
        this.problems = List.copyOf(problems);
    }

    /** Detection on this machine, with this process's properties and environment. */
    public static NeuronPlatform detect() {
        Map<String, String> env = System.getenv();
        return detect(Path.of("/"), env, NeuronRuntime.candidates(System.getProperty(NeuronRuntime.PATH_PROPERTY), env),
                TorchNeuronLocator.candidates(Path.of("/"), System.getProperty(TorchNeuronLocator.PATH_PROPERTY), env),
                Boolean.getBoolean(TorchNeuronPackaging.ASSUME_COMPATIBLE_PROPERTY));
    }

    /**
     * Detection with everything injectable (tests, diagnostics): the root of {@code /dev} and {@code /sys}, the
     * environment (visibility variables), and the candidate files for libnrt.so and libtorchneuron.so.
     */
    public static NeuronPlatform detect(Path root, Map<String, String> env, List<Path> nrtCandidates,
            List<Path> torchNeuronCandidates, boolean assumeCompatible) {
        List<String> problems = new ArrayList<>();
        NeuronDevices devices = null;
        try {
            devices = NeuronDevices.discover(root, env);
            if (!devices.present()) {
                problems.add("no Neuron device: " + root.resolve("dev") + "/neuron* does not exist (not an "
                        + "Inferentia2/Trainium instance, or the aws-neuronx-dkms driver is not loaded)");
            } else if (devices.visibleCores().isEmpty()) {
                problems.add("no NeuronCore is visible to this process (" + devices + ")");
            }
        } catch (BackendException e) {
            problems.add(e.getMessage());
        }

        NeuronRuntime runtime = null;
        NeuronRuntime.Version version = null;
        Path nrt = nrtCandidates.stream().filter(Files::isRegularFile).findFirst().orElse(null);
        if (nrt == null) {
            problems.add("libnrt.so (Neuron runtime) not found; looked in " + nrtCandidates + " (install "
                    + "aws-neuronx-runtime-lib, or set -D" + NeuronRuntime.PATH_PROPERTY + " / "
                    + NeuronRuntime.PATH_ENV + ")");
        } else {
            try {
                runtime = NeuronRuntime.open(nrt);
                version = runtime.version();
            } catch (BackendException e) {
                problems.add(e.getMessage());
            }
        }

        Path tn = torchNeuronCandidates.stream().filter(Files::isRegularFile).findFirst().orElse(null);
        TorchNeuronPackaging.Inspection insp = null;
        TorchNeuronPackaging.LibtorchVersion lt = null;
        if (tn == null) {
            problems.add(TorchNeuronLocator.LIB_NAME + " (torch-neuronx) not found; looked in "
                    + torchNeuronCandidates.size() + " places, e.g. " + torchNeuronCandidates.subList(0,
                    Math.min(4, torchNeuronCandidates.size())) + " (pip install torch-neuronx in a venv, or set -D"
                    + TorchNeuronLocator.PATH_PROPERTY + " / " + TorchNeuronLocator.PATH_ENV + ")");
        } else {
            try {
                insp = TorchNeuronPackaging.inspect(tn);
                lt = TorchNeuronPackaging.libtorchVersion();
                TorchNeuronPackaging.checkVersion(insp, lt, assumeCompatible);
            } catch (BackendException e) {
                problems.add(e.getMessage());
            }
            if (insp != null && nrt != null) {
                problems.addAll(TorchNeuronSymbols.runtimeProblems(insp, nrt));
            }
        }
        NeuronPlatform p = new NeuronPlatform(devices, runtime, version, tn, insp, lt, problems);
        LOG.debug("{}", p);
        return p;
    }

    /**
     * True when devices, libnrt and a compatible libtorchneuron were all found (its torch release matches
     * org.bytedeco:pytorch, and the found libnrt exports the {@code nrt_*} functions and symbol versions it imports).
     */
    public boolean available() {
        return problems.isEmpty();
    }

    /** Everything that is missing or incompatible (empty when {@link #available()}). */
    public List<String> problems() {
        return problems;
    }

    /** A one-paragraph human-readable reason why Neuron is not available, or "available". */
    public String reason() {
        return available() ? "available" : String.join("; ", problems);
    }

    /** The discovered devices, or null when discovery itself failed (see {@link #problems()}). */
    public NeuronDevices devices() {
        return devices;
    }

    /** The bound runtime, or null. */
    public NeuronRuntime runtime() {
        return runtime;
    }

    /** libnrt's version, or null. */
    public NeuronRuntime.Version runtimeVersion() {
        return runtimeVersion;
    }

    /** The libtorchneuron.so found, or null. */
    public Path torchNeuronLibrary() {
        return torchNeuron;
    }

    /** What the pre-load inspection of libtorchneuron found, or null. */
    TorchNeuronPackaging.Inspection torchNeuronInspection() {
        return inspection;
    }

    /**
     * @throws BackendException "Neuron backend requested but not available: ..." listing every missing piece
     */
    public void requireAvailable() {
        if (!available()) {
            throw new BackendException("Neuron backend requested but not available: " + reason());
        }
    }

    /**
     * Loads libtorch (JavaCPP, idempotent) and then libtorchneuron into this process, after all checks; idempotent
     * (a second platform pointing at another libtorchneuron.so is refused: one per process).
     * Call before the first {@code torch::jit::load} of a Neuron-compiled artifact. libnrt.so was already
     * {@code dlopen}ed by {@link #detect()}, so libtorchneuron's {@code DT_NEEDED} on it resolves by soname even
     * without {@code LD_LIBRARY_PATH}.
     *
     * @throws BackendException when Neuron is not available or a check fails
     */
    public synchronized void loadTorchNeuron() {
        requireAvailable();
        if (TorchNeuronLoader.isLoaded()) {
            TorchNeuronLoader.load(torchNeuron); // no-op for the same file, refuses another one
            return;
        }
        org.bytedeco.javacpp.Loader.load(org.bytedeco.pytorch.global.torch.class);
        TorchNeuronLoader.load(torchNeuron);
    }

    // ------------------------------------------------------------------------------------------------ artifacts

    /**
     * Whether a model directory's artifacts were compiled for Neuron: its manifest's {@code target} when it has one,
     * otherwise the Neuron ops inside {@code unet.pt} ({@link #isNeuronCompiled(Path)}).
     */
    public static boolean isNeuronCompiled(dev.sdjvm.model.ModelDirectory dir) {
        if (dir.manifest() != null && dir.manifest().target() != null) {
            return "neuron".equalsIgnoreCase(dir.manifest().target());
        }
        return isNeuronCompiled(dir.artifacts().get("unet"));
    }

    /**
     * True when the TorchScript archive {@code artifact} (a zip) was compiled for Neuron: one of its
     * {@code code/} sources or its {@code data.pkl}/{@code constants.pkl} mentions the Neuron ops or custom class
     * ({@code torch.ops.neuron.*}, {@code __torch__.torch.classes.neuron.*}, {@code neuron::forward*}). A CPU trace
     * contains none of them.
     *
     * @throws ModelLoadException when the file is missing or is not a zip archive
     */
    public static boolean isNeuronCompiled(Path artifact) {
        if (!Files.isRegularFile(artifact)) {
            throw new ModelLoadException(artifact, "no such TorchScript file");
        }
        try (ZipFile zip = new ZipFile(artifact.toFile())) {
            Enumeration<? extends ZipEntry> entries = zip.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                if (e.isDirectory() || !scanned(e.getName())) {
                    continue;
                }
                if (e.getSize() > MAX_SCANNED_ENTRY) {
                    continue;
                }
                try (InputStream in = zip.getInputStream(e)) {
                    String text = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
                    for (String m : NEURON_MARKERS) {
                        if (text.contains(m)) {
                            return true;
                        }
                    }
                }
            }
            return false;
        } catch (ZipException e) {
            throw new ModelLoadException(artifact, "not a TorchScript archive (not a zip file): " + e.getMessage(), e);
        } catch (IOException e) {
            throw new ModelLoadException(artifact, "cannot read: " + e, e);
        }
    }

    private static boolean scanned(String name) {
        return name.contains("/code/") || name.startsWith("code/") || name.endsWith("data.pkl")
                || name.endsWith("constants.pkl");
    }

    @Override
    public String toString() {
        return "NeuronPlatform{" + (available() ? "available" : "unavailable: " + reason()) + ", devices=" + devices
                + ", nrt=" + (runtime == null ? null : runtime.library()) + " " + runtimeVersion + ", torchneuron="
                + torchNeuron + (libtorch == null ? "" : ", libtorch " + libtorch.mavenVersion()) + "}";
    }
}
