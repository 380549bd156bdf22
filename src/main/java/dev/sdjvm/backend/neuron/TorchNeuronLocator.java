package dev.sdjvm.backend.neuron;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds torch-neuronx's {@code libtorchneuron.so} on this machine: an explicit path ({@value #PATH_PROPERTY},
 * {@value #PATH_ENV}), else the usual pip installation places. Only lists and tests files; reads and loads nothing.
 */
final class TorchNeuronLocator {
    private static final Logger LOG = LoggerFactory.getLogger(TorchNeuronLocator.class);

    /** System property naming libtorchneuron.so, its lib/ directory or the site-packages directory. */
    static final String PATH_PROPERTY = "sdjvm.neuron.torchneuron.path";
    /** Environment variable with the same meaning as {@link #PATH_PROPERTY}. */
    static final String PATH_ENV = "SDJVM_TORCHNEURON_PATH";
    /** The library's file name inside {@code torch_neuronx/lib}. */
    static final String LIB_NAME = "libtorchneuron.so";

    private TorchNeuronLocator() {}

    /**
     * Candidate files, in order: {@value #PATH_PROPERTY}, {@value #PATH_ENV} (file, its lib/ directory, or a
     * site-packages directory), then {@code torch_neuronx/lib/libtorchneuron.so} in the site-/dist-packages of
     * {@code $VIRTUAL_ENV}, the AWS DLAMI venvs {@code /opt/aws_neuronx_venv_pytorch_*}, {@code ~/.local},
     * {@code /usr/local}, {@code /usr}, {@code /opt/conda}. {@code root} is "/" except in tests.
     */
    static List<Path> candidates(Path root, String property, Map<String, String> env) {
        Set<Path> out = new LinkedHashSet<>();
        for (String v : new String[] {property, env.get(PATH_ENV)}) {
            if (v == null || v.isBlank()) {
                continue;
            }
            Path p = Path.of(v.trim());
            if (Files.isDirectory(p)) {
                out.add(p.resolve(LIB_NAME));
                out.add(p.resolve("torch_neuronx/lib").resolve(LIB_NAME));
            } else {
                out.add(p);
            }
        }
        List<Path> prefixes = new ArrayList<>();
        String venv = env.get("VIRTUAL_ENV");
        if (venv != null && !venv.isBlank()) {
            prefixes.add(Path.of(venv));
        }
        Path opt = root.resolve("opt");
        if (Files.isDirectory(opt)) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(opt, "aws_neuronx_venv_pytorch*")) {
                List<Path> venvs = new ArrayList<>();
                ds.forEach(venvs::add);
                venvs.sort(Collections.reverseOrder()); // newest torch first
                prefixes.addAll(venvs);
            } catch (IOException e) {
                LOG.debug("cannot list {}: {}", opt, e.toString());
            }
        }
        String home = env.get("HOME");
        if (home != null && !home.isBlank()) {
            prefixes.add(Path.of(home, ".local"));
        }
        prefixes.add(root.resolve("usr/local"));
        prefixes.add(root.resolve("usr"));
        prefixes.add(root.resolve("opt/conda"));
        for (Path prefix : prefixes) {
            Path lib = prefix.resolve("lib");
            if (!Files.isDirectory(lib)) {
                continue;
            }
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(lib, "python3*")) {
                List<Path> pys = new ArrayList<>();
                ds.forEach(pys::add);
                pys.sort(Collections.reverseOrder());
                for (Path py : pys) {
                    for (String pk : new String[] {"site-packages", "dist-packages"}) {
                        out.add(py.resolve(pk).resolve("torch_neuronx/lib").resolve(LIB_NAME));
                    }
                }
            } catch (IOException e) {
                LOG.debug("cannot list {}: {}", lib, e.toString());
            }
        }
        return new ArrayList<>(out);
    }

    /** The first existing candidate for this process ({@link #candidates}), or null. */
    static Path locate() {
        for (Path p : candidates(Path.of("/"), System.getProperty(PATH_PROPERTY), System.getenv())) {
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        return null;
    }
}
