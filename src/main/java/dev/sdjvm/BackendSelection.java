package dev.sdjvm;

import dev.sdjvm.model.ModelDirectory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Chooses the backend for a model directory and logs the choice. */
final class BackendSelection {
    private static final Logger LOG = LoggerFactory.getLogger(BackendSelection.class);

    private BackendSelection() {
    }

    static Backend select(ModelDirectory dir, Backend requested) {
        if (requested == Backend.NEURON) {
            throw new BackendException("backend NEURON requested, but Neuron support is not available in this build");
        }
        LOG.info("backend: CPU (libtorch) for {}", dir.root());
        return Backend.CPU;
    }
}
