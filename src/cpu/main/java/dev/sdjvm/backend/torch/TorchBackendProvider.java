package dev.sdjvm.backend.torch;

import dev.sdjvm.backend.ArtifactBackend;
import dev.sdjvm.backend.BackendProvider;
import dev.sdjvm.model.ArtifactRole;
import dev.sdjvm.model.ModelDirectory;
import java.util.Map;
import java.util.Optional;

/** The CPU backend (libtorch through JavaCPP) as the core finds it: a {@link BackendProvider} service. */
public final class TorchBackendProvider implements BackendProvider {
    /** Called by {@link java.util.ServiceLoader}. */
    public TorchBackendProvider() {
    }

    @Override
    public Type type() {
        return Type.CPU;
    }

    /** The CPU backend runs the {@code .pt} files themselves: nothing to look for. */
    @Override
    public Map<ArtifactRole, Optional<Found>> survey(ModelDirectory dir) {
        return Map.of();
    }

    @Override
    public ArtifactBackend open(ModelDirectory dir, Map<ArtifactRole, Found> found, Options o) {
        return new TorchBackend(o.threads(), new TorchSettings(o.optimize(), o.measure(), o.tuningCache(),
                o.hugePages(), o.singleThreadedBlas(), o.trimMemory(), o.passiveWait()));
    }

    /** {@return the org.bytedeco:pytorch version ({@link Torch#version()})} */
    @Override
    public String version() {
        return Torch.version();
    }
}
