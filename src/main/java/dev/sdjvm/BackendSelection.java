package dev.sdjvm;

import dev.sdjvm.backend.neuron.NeuronPlatform;
import dev.sdjvm.model.ModelDirectory;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Chooses the backend for a model directory, logs the choice, and on Neuron loads libtorchneuron (after libtorch,
 * before any {@code torch::jit::load}).
 * <ul>
 *   <li>AUTO: Neuron-compiled artifacts (manifest target "neuron", or Neuron ops inside the UNet archive) need
 *       Neuron; CPU-traced ones run on libtorch CPU.</li>
 *   <li>CPU: refuses Neuron-compiled artifacts (they cannot run without NeuronCores).</li>
 *   <li>NEURON: requires devices, libnrt and a compatible libtorchneuron, and Neuron-compiled artifacts.</li>
 * </ul>
 */
final class BackendSelection {
    private static final Logger LOG = LoggerFactory.getLogger(BackendSelection.class);

    private BackendSelection() {
    }

    static Backend select(ModelDirectory dir, Backend requested) {
        boolean compiled = NeuronPlatform.isNeuronCompiled(dir);
        Path unet = dir.artifacts().get("unet");
        switch (requested) {
            case CPU:
                if (compiled) {
                    throw new BackendException("backend CPU requested, but " + unet + " is compiled for Neuron; "
                            + "trace the model for CPU with tools/model/trace_cpu_sd21.py, or run on an inf2 instance");
                }
                break;
            case NEURON:
            case AUTO:
                if (requested == Backend.AUTO && !compiled) {
                    break;
                }
                NeuronPlatform neuron = NeuronPlatform.detect();
                if (!neuron.available()) {
                    throw new BackendException((requested == Backend.NEURON ? "backend NEURON requested"
                            : "the artifacts in " + dir.root() + " are compiled for Neuron") + ", but Neuron is not available here: "
                            + neuron.reason());
                }
                if (!compiled) {
                    throw new BackendException("backend NEURON requested, but " + unet + " is not compiled for Neuron "
                            + "(compile it with tools/model/neuron_compile_sd21.py)");
                }
                neuron.loadTorchNeuron();
                LOG.info("backend: NEURON ({}) for {}", neuron, dir.root());
                return Backend.NEURON;
            default:
                throw new IllegalArgumentException(String.valueOf(requested));
        }
        LOG.info("backend: CPU (libtorch) for {}", dir.root());
        return Backend.CPU;
    }
}
