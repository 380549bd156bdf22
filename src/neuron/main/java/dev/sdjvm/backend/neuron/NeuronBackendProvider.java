package dev.sdjvm.backend.neuron;

import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.BackendProvider;
import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ModelDirectory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The Neuron backend (each artifact's NEFF through libnrt, via JNA) as the core finds it: a {@link BackendProvider}
 * service. {@link #survey} looks for each artifact's NEFF ({@link NeffLocator}); {@link #open} binds libnrt.
 */
public final class NeuronBackendProvider implements BackendProvider {
    /** Called by {@link java.util.ServiceLoader}. */
    public NeuronBackendProvider() {
    }

    /** A role's NEFF, as the core sees it. */
    private record Neff(NeffLocator.NeffSource source) implements Found {
        @Override
        public String describe() {
            return source.describe();
        }

        @Override
        public String describeWithHash() {
            return source.describe() + ", sha256 " + source.sha256();
        }
    }

    @Override
    public Type type() {
        return Type.NEURON;
    }

    @Override
    public Map<ArtifactRole, Optional<Found>> survey(ModelDirectory dir) {
        Map<ArtifactRole, Optional<Found>> neffs = new EnumMap<>(ArtifactRole.class);
        for (ArtifactRole role : dir.artifacts().keySet()) {
            neffs.put(role, NeffLocator.find(dir, role).map(Neff::new));
        }
        return neffs;
    }

    @Override
    public ArtifactBackend open(ModelDirectory dir, Map<ArtifactRole, Found> found, Options options) {
        Map<ArtifactRole, NeffLocator.NeffSource> neffs = new EnumMap<>(ArtifactRole.class);
        found.forEach((role, f) -> {
            if (!(f instanceof Neff n)) {
                throw new IllegalArgumentException(role + ": not a NEFF this backend found: " + f);
            }
            neffs.put(role, n.source());
        });
        return new NeffBackend(neuronRuntime(), neffs);
    }

    /** {@return the JNA version the runtime is bound with} */
    @Override
    public String version() {
        return "JNA " + com.sun.jna.Native.VERSION;
    }

    /** libnrt.so bound; when it is missing, the message also says what the device scan found. */
    private static NeuronRuntime neuronRuntime() {
        List<Path> candidates = NeuronRuntime.candidates(System.getProperty(NeuronRuntime.PATH_PROPERTY), System.getenv());
        Path lib = candidates.stream().filter(Files::isRegularFile).findFirst().orElse(null);
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
