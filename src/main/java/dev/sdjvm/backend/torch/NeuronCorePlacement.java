package dev.sdjvm.backend.torch;

import dev.sdjvm.errors.BackendException;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.CompilationUnit;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.QualifiedName;
import org.bytedeco.pytorch.global.torch;

/**
 * Explicit NeuronCore placement for the libtorchneuron fallback: torch-neuronx places each Neuron-compiled TorchScript
 * module on the cores that are the default when it is loaded, and its Python helper
 * {@code torch_neuronx.experimental.neuron_cores_context(start_nc, nc_count)} sets that default with
 * {@code torch.classes.neuron.Runtime().set_default_neuron_cores(start_nc, nc_count)}. The same TorchScript custom class
 * is reachable from the JVM: this compiles a two-line TorchScript function calling it and runs it before each
 * {@code torch::jit::load}. Only works with libtorchneuron loaded (it registers {@code torch.classes.neuron}).
 */
final class NeuronCorePlacement {
    private static final String SOURCE = """
            def sdjvm_set_default_neuron_cores(start_nc: int, nc_count: int) -> int:
                runtime = torch.classes.neuron.Runtime()
                runtime.set_default_neuron_cores(start_nc, nc_count)
                return start_nc
            """;

    private NeuronCorePlacement() {
    }

    /**
     * Makes {@code [start, start + count)} the cores the next loaded Neuron module goes to.
     *
     * @throws BackendException when {@code torch.classes.neuron.Runtime} is not registered (libtorchneuron not loaded)
     *                          or refuses the cores
     */
    static void setDefaultCores(int start, int count) {
        Torch.load();
        try (PointerScope scope = new PointerScope()) {
            CompilationUnit cu;
            try {
                cu = torch.compile(SOURCE);
            } catch (RuntimeException e) {
                throw new BackendException("cannot place Neuron modules: torch.classes.neuron.Runtime is not available ("
                        + TorchModule.firstLine(e.getMessage()) + "); is libtorchneuron loaded?", e);
            }
            IValueVector args = new IValueVector();
            args.push_back(new IValue((long) start));
            args.push_back(new IValue((long) count));
            try {
                cu.get_function(new QualifiedName("sdjvm_set_default_neuron_cores")).apply(args);
            } catch (RuntimeException e) {
                throw new BackendException("torch.classes.neuron.Runtime().set_default_neuron_cores(" + start + ", " + count
                        + ") failed: " + TorchModule.firstLine(e.getMessage()), e);
            }
        }
    }
}
