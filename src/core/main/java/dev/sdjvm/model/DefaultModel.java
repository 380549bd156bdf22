package dev.sdjvm.model;

import dev.sdjvm.errors.ModelLoadException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.FileSystem;
import java.nio.file.FileSystemAlreadyExistsException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The small model embedded in the jar of {@code dev.sdjvm:stable-diffusion-jvm} (the artifact that brings the core and
 * both backends) under {@code dev/sdjvm/default-model/}: found through the class loader, so from any module. libtorch loads TorchScript
 * from files, so a jar's copy is extracted once into {@code ~/.cache/sdjvm/} (or {@code -Dsdjvm.cache=DIR}), in a
 * folder named by the content hash; from a classes directory it is used in place.
 */
public final class DefaultModel {
    /** Class path location of the embedded model. */
    public static final String RESOURCE = "dev/sdjvm/default-model";

    private DefaultModel() {
    }

    /** A directory holding the embedded model. */
    public static synchronized Path path() {
        URL url = DefaultModel.class.getClassLoader().getResource(RESOURCE + "/model_index.json");
        if (url == null) {
            throw new ModelLoadException(Paths.get(RESOURCE), "the embedded default model is not on the class path: it "
                    + "ships in dev.sdjvm:stable-diffusion-jvm (the core, CPU and Neuron artifacts together), not in "
                    + "dev.sdjvm:stable-diffusion-jvm-core; or load a model directory with StableDiffusion.load(Path)");
        }
        try {
            URI uri = url.toURI();
            if ("file".equals(uri.getScheme())) {
                return Paths.get(uri).getParent();
            }
            if ("jar".equals(uri.getScheme())) {
                return extract(uri);
            }
            throw new ModelLoadException(Paths.get(RESOURCE), "cannot read the embedded model from " + uri);
        } catch (URISyntaxException | IOException e) {
            throw new ModelLoadException(Paths.get(RESOURCE), "cannot extract the embedded model: " + e.getMessage(), e);
        }
    }

    static Path extract(URI entry) throws IOException {
        String s = entry.toString();
        URI jar = URI.create(s.substring(0, s.indexOf("!/")));
        FileSystem fs;
        boolean close = false;
        try {
            fs = FileSystems.newFileSystem(jar, Map.of());
            close = true;
        } catch (FileSystemAlreadyExistsException e) {
            fs = FileSystems.getFileSystem(jar);
        }
        try {
            Path src = fs.getPath("/" + RESOURCE);
            List<Path> files = new ArrayList<>();
            try (Stream<Path> w = Files.walk(src)) {
                w.filter(Files::isRegularFile).sorted().forEach(files::add);
            }
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Path f : files) {
                md.update(src.relativize(f).toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
                md.update(Files.readAllBytes(f));
            }
            String hash = HexFormat.of().formatHex(md.digest()).substring(0, 16);
            Path cache = Paths.get(System.getProperty("sdjvm.cache",
                    Paths.get(System.getProperty("user.home"), ".cache", "sdjvm").toString()));
            Path dst = cache.resolve("default-model-" + hash);
            if (Files.isRegularFile(dst.resolve(".complete"))) {
                return dst;
            }
            Path tmp = Files.createDirectories(cache).resolve("default-model-" + hash + ".tmp" + ProcessHandle.current().pid());
            for (Path f : files) {
                Path d = tmp.resolve(src.relativize(f).toString());
                Files.createDirectories(d.getParent());
                try (InputStream in = Files.newInputStream(f)) {
                    Files.copy(in, d, StandardCopyOption.REPLACE_EXISTING);
                }
            }
            Files.createFile(tmp.resolve(".complete"));
            try {
                Files.move(tmp, dst, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                if (!Files.isRegularFile(dst.resolve(".complete"))) {
                    throw e;
                }
                deleteTree(tmp);  // another process won the race
            }
            return dst;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        } finally {
            if (close) {
                fs.close();
            }
        }
    }

    private static void deleteTree(Path p) {
        try (Stream<Path> w = Files.walk(p)) {
            w.sorted(java.util.Comparator.reverseOrder()).forEach(f -> {
                try {
                    Files.delete(f);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException | UncheckedIOException ignored) {
            // best effort
        }
    }
}
