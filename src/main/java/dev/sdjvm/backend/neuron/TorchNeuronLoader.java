package dev.sdjvm.backend.neuron;

import dev.sdjvm.errors.BackendException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads torch-neuronx's {@code libtorchneuron.so} (the TorchScript ops {@code neuron::forward_v2} and the
 * {@code neuron.Model} class that Neuron-compiled {@code .pt} files call) into the process with {@link System#load},
 * once, after checking that it was built for the libtorch this JVM runs. {@link TorchNeuronLocator} finds the file,
 * {@link TorchNeuronPackaging} and {@link TorchNeuronSymbols} do the checks.
 *
 * <h2>Why the check comes first</h2>
 * libtorchneuron is a C++ extension of one torch release. Loaded next to another libtorch it either fails to resolve
 * symbols lazily (the dynamic linker then <em>kills the process</em>: "symbol lookup error") or runs with mismatched
 * class layouts. Both take the JVM down, so everything is decided before {@code dlopen}, in pure Java:
 * <ol>
 *   <li>ELF: a shared object for this JVM's machine, linking against libtorch ({@code DT_NEEDED} libtorch_cpu.so /
 *       libtorch.so / libc10.so) and not against CPython (libtorch_python.so / libpython*, not loadable here);</li>
 *   <li>the torch release it was built for, from torch-neuronx's packaging next to it (site-packages): the
 *       {@code Requires-Dist: torch...} line of {@code torch_neuronx-*.dist-info/METADATA}, else the torch-neuronx
 *       version scheme ({@code <torch version>.<neuron version>}, e.g. 2.5.1.2.4.0 is for torch 2.5.1), else the
 *       torch installed beside it ({@code torch-*.dist-info/METADATA}). torch's own symbols are not versioned
 *       ({@code .gnu.version_r} only names GLIBC/GLIBCXX/CXXABI), so the ELF cannot tell the torch release;</li>
 *   <li>the libtorch release of this JVM ({@link TorchNeuronPackaging#libtorchVersion()}: org.bytedeco:pytorch's jar
 *       manifest / pom.properties, i.e. the Maven property {@code pytorch.version});</li>
 *   <li>once libtorch is loaded: every c10/at/torch symbol libtorchneuron imports must be defined by the
 *       loaded libtorch libraries (found in {@code /proc/self/maps}); this also catches a C++11-ABI mismatch.</li>
 * </ol>
 * Steps 1-3 are {@link TorchNeuronPackaging} (with its version rule), step 4 is {@link TorchNeuronSymbols}.
 */
public final class TorchNeuronLoader {
    private static final Logger LOG = LoggerFactory.getLogger(TorchNeuronLoader.class);

    private static final AtomicBoolean LOADED = new AtomicBoolean();
    private static volatile Path loadedPath;

    private TorchNeuronLoader() {}

    /** True once {@link #load} succeeded in this process. */
    public static boolean isLoaded() {
        return LOADED.get();
    }

    /** The library loaded by {@link #load}, or null. */
    static Path loadedPath() {
        return loadedPath;
    }

    /**
     * Checks {@code library} (ELF, torch release, symbols against the loaded libtorch) and {@link System#load}s it.
     * Idempotent for the same file. libtorch must already be loaded (JavaCPP's {@code Loader.load(torch.class)}):
     * {@link NeuronPlatform#loadTorchNeuron()} takes care of the order.
     *
     * @throws BackendException when a check fails (nothing is loaded then) or when another file is already loaded
     */
    static synchronized void load(Path library) {
        Path abs = library.toAbsolutePath().normalize();
        if (LOADED.get()) {
            if (abs.equals(loadedPath)) {
                return;
            }
            throw new BackendException("libtorchneuron is already loaded from " + loadedPath + "; cannot also load "
                    + abs);
        }
        TorchNeuronPackaging.Inspection insp = TorchNeuronPackaging.inspect(abs);
        TorchNeuronPackaging.LibtorchVersion lt = TorchNeuronPackaging.libtorchVersion();
        TorchNeuronPackaging.checkVersion(insp, lt,
                Boolean.getBoolean(TorchNeuronPackaging.ASSUME_COMPATIBLE_PROPERTY));
        List<Path> torchLibs = TorchNeuronSymbols.loadedTorchLibraries();
        if (torchLibs.isEmpty()) {
            throw new BackendException("libtorch is not loaded in this process yet; load it first "
                    + "(Loader.load(org.bytedeco.pytorch.global.torch.class)) and then " + abs);
        }
        List<String> missing = TorchNeuronSymbols.missingTorchSymbols(abs, torchLibs);
        if (!missing.isEmpty()) {
            throw new BackendException(abs + " needs " + missing.size() + " torch symbol(s) that the loaded libtorch "
                    + lt.torch() + " " + torchLibs + " does not define, e.g. " + missing.subList(0,
                    Math.min(5, missing.size())) + ": it was built for another torch release or C++ ABI; loading it "
                    + "would abort the JVM");
        }
        try {
            System.load(abs.toString());
        } catch (UnsatisfiedLinkError e) {
            throw new BackendException("System.load(" + abs + ") failed: " + e.getMessage()
                    + " (its dependencies " + insp.needed() + " must be resolvable: libnrt.so via LD_LIBRARY_PATH="
                    + NeuronRuntime.DEFAULT_DIR + ", the rest from its RUNPATH " + insp.runPath() + ")", e);
        }
        loadedPath = abs;
        LOADED.set(true);
        LOG.info("loaded {} (torch-neuronx {}, built for torch {}; libtorch {})", abs, insp.torchNeuronxVersion(),
                insp.requirement() == null ? "?" : insp.requirement().spec(), lt.torch());
    }
}
