package dev.sdjvm.backend.neuron;

import dev.sdjvm.errors.BackendException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * ELF symbol checks of a libtorchneuron.so against what this process would link it with: its c10/at/torch imports
 * against the libtorch libraries actually mapped ({@code /proc/self/maps}), and its {@code nrt_*} imports and symbol
 * versions against the libnrt.so found. Reads files with {@link ElfFile}; loads nothing.
 */
final class TorchNeuronSymbols {
    private static final Logger LOG = LoggerFactory.getLogger(TorchNeuronSymbols.class);

    /** File names of the libtorch libraries a torch extension links against. */
    static final Set<String> TORCH_LIBS = Set.of("libtorch.so", "libtorch_cpu.so", "libc10.so",
            "libtorch_global_deps.so");
    private static final String[] TORCH_SYMBOL_PREFIXES = {"_ZN3c10", "_ZNK3c10", "_ZN2at", "_ZNK2at", "_ZN5torch",
            "_ZNK5torch"};

    private TorchNeuronSymbols() {}

    /**
     * The c10/at/torch symbols (mangled names) that {@code extension} imports and none of {@code torchLibs} defines.
     * Weak imports are ignored. An empty result means every torch entry point it needs exists in that libtorch.
     */
    static List<String> missingTorchSymbols(Path extension, List<Path> torchLibs) {
        return missingSymbols(extension, torchLibs, TorchNeuronSymbols::isTorchSymbol);
    }

    /**
     * The symbols selected by {@code which} that {@code extension} imports (non-weak, undefined) and none of
     * {@code providers} defines, sorted. Used for the torch symbols and for the {@code nrt_*} symbols of libnrt.
     */
    static List<String> missingSymbols(Path extension, List<Path> providers, Predicate<String> which) {
        try {
            Set<String> wanted = new HashSet<>();
            ElfFile.read(extension).forEachDynamicSymbol(s -> {
                if (!s.defined() && !s.weak() && which.test(s.name())) {
                    wanted.add(s.name());
                }
                return true;
            });
            for (Path lib : providers) {
                if (wanted.isEmpty()) {
                    break;
                }
                ElfFile.read(lib).forEachDynamicSymbol(s -> {
                    if (s.defined()) {
                        wanted.remove(s.name());
                    }
                    return !wanted.isEmpty();
                });
            }
            List<String> missing = new ArrayList<>(wanted);
            missing.sort(null);
            return missing;
        } catch (IOException e) {
            throw new BackendException("symbol check failed: " + e.getMessage(), e);
        }
    }

    /**
     * Checks that the Neuron runtime library {@code nrt} provides what {@code insp}'s libtorchneuron imports from it:
     * every {@code nrt_*} function and every symbol version ({@code .gnu.version_r}, e.g. {@code NRT_2.0.0})
     * required from a {@code libnrt*} file. An older runtime than torch-neuronx was built against fails here instead
     * of with "undefined symbol: nrt_..., version NRT_2.0.0" at load or call time.
     *
     * @return the problems (empty when compatible)
     */
    static List<String> runtimeProblems(TorchNeuronPackaging.Inspection insp, Path nrt) {
        List<String> problems = new ArrayList<>();
        try {
            ElfFile nrtElf = ElfFile.read(nrt);
            List<String> defined = nrtElf.versionDefinitions();
            for (ElfFile.VersionNeed vn : insp.versionNeeds()) {
                if (vn.file().startsWith("libnrt")) {
                    List<String> absent = vn.versions().stream().filter(v -> !defined.contains(v)).toList();
                    if (!absent.isEmpty()) {
                        problems.add(insp.library() + " requires symbol version(s) " + absent + " of " + vn.file()
                                + " but " + nrt + " defines " + defined + ": the Neuron runtime does not match this "
                                + "torch-neuronx (install the aws-neuronx-runtime-lib of the same Neuron SDK release)");
                    }
                }
            }
        } catch (IOException e) {
            problems.add("cannot inspect the Neuron runtime " + nrt + ": " + e.getMessage());
            return problems;
        }
        List<String> missing = missingSymbols(insp.library(), List.of(nrt), n -> n.startsWith("nrt_"));
        if (!missing.isEmpty()) {
            problems.add(insp.library() + " calls " + missing + " which " + nrt + " does not export: the Neuron "
                    + "runtime is older than this torch-neuronx expects (install the aws-neuronx-runtime-lib of the "
                    + "same Neuron SDK release)");
        }
        return problems;
    }

    static boolean isTorchSymbol(String name) {
        for (String p : TORCH_SYMBOL_PREFIXES) {
            if (name.startsWith(p)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The libtorch libraries (libtorch_cpu.so, libtorch.so, libc10.so) mapped into this process, from
     * {@code /proc/self/maps}; empty when libtorch is not loaded or the file is not readable.
     */
    static List<Path> loadedTorchLibraries() {
        return torchLibrariesIn(Path.of("/proc/self/maps"));
    }

    static List<Path> torchLibrariesIn(Path maps) {
        Set<Path> out = new LinkedHashSet<>();
        try {
            for (String line : Files.readAllLines(maps, StandardCharsets.UTF_8)) {
                int slash = line.indexOf('/');
                if (slash < 0) {
                    continue;
                }
                Path p = Path.of(line.substring(slash).trim().replace(" (deleted)", ""));
                Path fn = p.getFileName();
                if (fn != null && TORCH_LIBS.contains(fn.toString())) {
                    out.add(p);
                }
            }
        } catch (IOException | RuntimeException e) {
            LOG.debug("cannot read {}: {}", maps, e.toString());
        }
        return new ArrayList<>(out);
    }
}
