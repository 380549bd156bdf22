package dev.sdjvm.model;

import dev.sdjvm.errors.ModelLoadException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * Tells whether a TorchScript archive was compiled for Neuron ({@code torch_neuronx.trace}), from its text alone: the
 * backend selection refuses to run such an artifact on the CPU, and names what is missing when none of its NEFFs can
 * be found (libtorch cannot run a Neuron-compiled graph; the JVM runs its NEFF through libnrt instead).
 */
public final class NeuronArchive {
    /** Text that only a Neuron-compiled TorchScript archive contains (ops, custom class, op namespace). */
    private static final String[] NEURON_MARKERS = {"ops.neuron.", "torch.classes.neuron", "neuron::forward"};
    private static final long MAX_SCANNED_ENTRY = 64L << 20;

    private NeuronArchive() {
    }

    /**
     * Whether a model directory's artifacts were compiled for Neuron: its manifest's {@code target} when it has one,
     * otherwise the Neuron ops inside {@code unet.pt} ({@link #isNeuronCompiled(Path)}).
     */
    public static boolean isNeuronCompiled(ModelDirectory dir) {
        if (dir.manifest() != null && dir.manifest().target() != null) {
            return "neuron".equalsIgnoreCase(dir.manifest().target());
        }
        return isNeuronCompiled(dir.artifact(ArtifactRole.UNET));
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
}
