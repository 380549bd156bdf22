package dev.sdjvm.backend;

import dev.sdjvm.errors.BackendException;
import dev.sdjvm.model.ArtifactRole;
import java.util.List;

/**
 * Finds an artifact's inputs and outputs by the names of its contract ({@link Artifact#contract()},
 * {@link ArtifactRole#outputs()}), the way diffusers calls a module by keyword:
 * <ol>
 *   <li>a tensor named as the contract names it is that tensor (a TorchScript dict's key, the input names the CPU
 *       backend gives TorchScript arguments);</li>
 *   <li>else tensors named by position are the contract's tensors in argument order: {@code input<k>} /
 *       {@code output<k>} for the contract's k-th name (a NEFF names its tensors so, as does the CPU backend for the
 *       elements of a tuple or a bare tensor);</li>
 *   <li>else a lone output is the contract's first output (a one-key dict under another key).</li>
 * </ol>
 * Never by rank or size: callers check the shape of what was bound, as a guard.
 */
public final class TensorBinding {
    private TensorBinding() {
    }

    /**
     * The index of input {@code name} of an artifact.
     *
     * @param artifact the artifact
     * @param name     a name of its {@link Artifact#contract()}
     * @return the index in {@link Artifact#inputs()}
     * @throws BackendException when the artifact has no such input
     */
    public static int input(Artifact artifact, String name) {
        List<String> contract = artifact.contract();
        int i = find(artifact.inputs(), contract, name, contract.indexOf(name), "input", false);
        if (i < 0) {
            throw new BackendException(artifact.role() + " (" + artifact.file() + ") takes " + artifact.inputs()
                    + "; none is its " + name + " (by name, or input" + contract.indexOf(name) + " by position)");
        }
        return i;
    }

    /**
     * The index of output {@code name} among the outputs of a role's artifact.
     *
     * @param role    the artifact's role
     * @param outputs its outputs ({@link Artifact#outputs()}, or {@link Invocation#outputs()} after a run)
     * @param name    a name of the role's {@link ArtifactRole#outputs()}
     * @return the index in {@code outputs}
     * @throws BackendException when none of the outputs is {@code name}
     */
    public static int output(ArtifactRole role, List<TensorSpec> outputs, String name) {
        int i = find(outputs, role.outputs(), name, role.outputs().indexOf(name), "output", true);
        if (i < 0) {
            throw new BackendException(role + " returned " + outputs + "; none is its " + name + " (by name, or "
                    + positional(role.outputs(), name, "output") + " by position)");
        }
        return i;
    }

    /** The index of {@code name} (argument position {@code k}) in {@code tensors} by the rules of the class comment, or -1. */
    static int find(List<TensorSpec> tensors, List<String> contract, String name, int k, String prefix, boolean lone) {
        if (k < 0 || !contract.contains(name)) {
            throw new IllegalArgumentException(name + " is not in the contract " + contract);
        }
        for (int i = 0; i < tensors.size(); i++) {
            if (name.equals(tensors.get(i).name())) {
                return i;
            }
        }
        for (int i = 0; i < tensors.size(); i++) {
            if ((prefix + k).equals(tensors.get(i).name())) {
                return i;
            }
        }
        return lone && k == 0 && tensors.size() == 1 ? 0 : -1;
    }

    private static String positional(List<String> contract, String name, String prefix) {
        return prefix + contract.indexOf(name);
    }
}
