package dev.sdjvm.backend.neuron;

import dev.sdjvm.errors.BackendException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a libtorchneuron.so is and which torch release it was built for, decided without loading it: its ELF facts
 * ({@link #inspect}), the torch requirement of torch-neuronx's pip packaging next to it (site-packages
 * {@code *.dist-info/METADATA}), the libtorch release of this JVM ({@link #libtorchVersion()}), and the rule that
 * compares the two ({@link #checkVersion}).
 *
 * <p>The version rule: a different major.minor is refused with a {@link BackendException} naming both versions and
 * the {@code -Dpytorch.version=} that selects a matching org.bytedeco:pytorch. A patch-level difference (torch-neuronx
 * 2.7.0 with bytedeco 2.7.1) is allowed with a warning when the symbol check ({@link TorchNeuronSymbols}, at load
 * time) passes. System property {@value #ASSUME_COMPATIBLE_PROPERTY}{@code =true} skips the version rule (not the ELF
 * and symbol checks) when the torch release cannot be determined.
 */
final class TorchNeuronPackaging {
    private static final Logger LOG = LoggerFactory.getLogger(TorchNeuronPackaging.class);

    /** Set to true to load even when the torch release libtorchneuron targets cannot be determined. */
    static final String ASSUME_COMPATIBLE_PROPERTY = "sdjvm.neuron.torchneuron.assumeCompatible";

    /**
     * org.bytedeco:pytorch releases by torch series (Maven Central), for the "use -Dpytorch.version=" advice.
     */
    static final Map<String, String> BYTEDECO_PYTORCH = Map.of(
            "2.5", "2.5.1-1.5.11",
            "2.7", "2.7.1-1.5.12",
            "2.10", "2.10.0-1.5.13",
            "2.13", "2.13.0-1.5.14");

    private TorchNeuronPackaging() {}

    /** The version of the libtorch this JVM uses, and where that was read. */
    record LibtorchVersion(TorchVersion torch, String mavenVersion, String source) {}

    /** The torch requirement libtorchneuron declares, and where it was read. */
    record Requirement(String spec, String source) {
        /** True when {@code v} satisfies every clause of {@link #spec()} (PEP 440 subset: == (with .*), !=, >=, <=, >, <, ~=). */
        boolean admits(TorchVersion v) {
            for (String clause : spec.split(",")) {
                String c = clause.trim();
                if (!c.isEmpty() && !clauseAdmits(c, v)) {
                    return false;
                }
            }
            return true;
        }

        /** The torch series (major.minor) pinned by an {@code ==} or {@code ~=} clause, or the lower bound's; null if none. */
        String pinnedSeries() {
            String lower = null;
            for (String clause : spec.split(",")) {
                Matcher m = CLAUSE.matcher(clause.trim());
                if (m.matches()) {
                    TorchVersion v = TorchVersion.parse(m.group(2));
                    if (m.group(1).equals("==") || m.group(1).equals("~=") || m.group(1).equals("===")) {
                        return v.series();
                    }
                    if (m.group(1).startsWith(">")) {
                        lower = v.series();
                    }
                }
            }
            return lower;
        }
    }

    /** What {@link #inspect(Path)} found out about a libtorchneuron.so. */
    record Inspection(Path library, int machine, List<String> needed, List<String> runPath,
            List<ElfFile.VersionNeed> versionNeeds, String torchNeuronxVersion, Requirement requirement,
            TorchVersion installedTorch) {
        Inspection {
            needed = List.copyOf(needed);
            runPath = List.copyOf(runPath);
            versionNeeds = List.copyOf(versionNeeds);
        }
    }

    private static final Pattern CLAUSE = Pattern.compile("(===|==|!=|>=|<=|~=|>|<)\\s*([0-9][0-9A-Za-z.+*]*)");

    private static boolean clauseAdmits(String clause, TorchVersion v) {
        Matcher m = CLAUSE.matcher(clause);
        if (!m.matches()) {
            LOG.warn("unsupported version clause '{}' ignored", clause);
            return true;
        }
        String op = m.group(1);
        String ver = m.group(2);
        if (ver.endsWith(".*")) {
            String[] parts = ver.substring(0, ver.length() - 2).split("\\.");
            int[] have = {v.major(), v.minor(), v.patch()};
            boolean prefix = true;
            for (int i = 0; i < parts.length && i < 3; i++) {
                prefix &= Integer.parseInt(parts[i]) == have[i];
            }
            return op.equals("!=") ? !prefix : prefix;
        }
        int c = v.compareTo(TorchVersion.parse(ver));
        return switch (op) {
            case "==", "===" -> c == 0;
            case "!=" -> c != 0;
            case ">=" -> c >= 0;
            case "<=" -> c <= 0;
            case ">" -> c > 0;
            case "<" -> c < 0;
            case "~=" -> c >= 0 && v.sameSeries(TorchVersion.parse(ver));
            default -> true;
        };
    }

    // ---------------------------------------------------------------------------------------------- inspecting

    /**
     * Reads the ELF facts and the packaging metadata of {@code library}. Does not load anything.
     *
     * @throws BackendException when the file is missing, not ELF, truncated, for another machine, not linked
     *     against libtorch, or linked against CPython
     */
    static Inspection inspect(Path library) {
        if (!Files.isRegularFile(library)) {
            throw new BackendException(library + ": libtorchneuron not found (no such file)");
        }
        ElfFile elf;
        List<String> needed;
        List<String> runPath;
        List<ElfFile.VersionNeed> vn;
        try {
            elf = ElfFile.read(library);
            needed = elf.needed();
            runPath = elf.runPath();
            vn = elf.versionNeeds();
        } catch (IOException e) {
            throw new BackendException("cannot use " + library + " as libtorchneuron: " + e.getMessage()
                    + " (expected an ELF shared library from torch-neuronx's torch_neuronx/lib)", e);
        }
        if (elf.type() != ElfFile.ET_DYN) {
            throw new BackendException(library + " is not an ELF shared object (e_type " + elf.type() + ")");
        }
        int jvm = ElfFile.jvmMachine();
        if (jvm >= 0 && elf.machine() != jvm) {
            throw new BackendException(library + " is built for " + elf.machineName() + " but this JVM runs on "
                    + ElfFile.machineName(jvm) + " (os.arch " + System.getProperty("os.arch") + ")");
        }
        if (needed.stream().noneMatch(TorchNeuronSymbols.TORCH_LIBS::contains)) {
            throw new BackendException(library + " does not link against libtorch (DT_NEEDED " + needed
                    + "): not a torch extension library like torch-neuronx's " + TorchNeuronLocator.LIB_NAME);
        }
        List<String> python = needed.stream()
                .filter(n -> n.startsWith("libtorch_python") || n.startsWith("libpython")).toList();
        if (!python.isEmpty()) {
            throw new BackendException(library + " needs " + python + " (CPython bindings), which a JVM process "
                    + "cannot provide; use the libtorchneuron.so of a torch-neuronx wheel, which needs only libtorch");
        }
        Path sitePackages = sitePackagesOf(library);
        String tnxVersion = null;
        Requirement req = null;
        TorchVersion installed = null;
        if (sitePackages != null) {
            Path tnxMeta = distInfoMetadata(sitePackages, "torch_neuronx");
            if (tnxMeta != null) {
                Map<String, List<String>> meta = readMetadata(tnxMeta);
                tnxVersion = first(meta.get("Version"));
                for (String rd : meta.getOrDefault("Requires-Dist", List.of())) {
                    String spec = torchSpec(rd);
                    if (spec != null) {
                        req = new Requirement(spec, tnxMeta + " (Requires-Dist: " + rd.trim() + ")");
                        break;
                    }
                }
                if (req == null && tnxVersion != null) {
                    String[] parts = tnxVersion.split("\\.");
                    if (parts.length >= 5 && parts[0].matches("\\d+") && parts[1].matches("\\d+")
                            && parts[2].matches("\\d+")) {
                        req = new Requirement("==" + parts[0] + "." + parts[1] + "." + parts[2],
                                "torch-neuronx version " + tnxVersion + " (<torch version>.<neuron version>) in "
                                        + tnxMeta);
                    }
                }
            }
            Path torchMeta = distInfoMetadata(sitePackages, "torch");
            if (torchMeta != null) {
                String v = first(readMetadata(torchMeta).get("Version"));
                if (v != null) {
                    try {
                        installed = TorchVersion.parse(v);
                    } catch (IllegalArgumentException e) {
                        LOG.debug("unparsable torch version {} in {}", v, torchMeta);
                    }
                }
                if (req == null && installed != null) {
                    req = new Requirement("==" + installed.series() + ".*", "the torch " + v
                            + " installed beside it (" + torchMeta + ")");
                }
            }
        }
        return new Inspection(library, elf.machine(), needed, runPath, vn, tnxVersion, req, installed);
    }

    /** {@code .../site-packages} for {@code .../site-packages/torch_neuronx/lib/libtorchneuron.so}, else the lib's grandparent. */
    static Path sitePackagesOf(Path library) {
        Path lib = library.toAbsolutePath().getParent();
        if (lib == null || lib.getParent() == null) {
            return null;
        }
        return lib.getParent().getParent();
    }

    /** The METADATA of {@code <name>-<version>.dist-info} in {@code sitePackages} (highest version if several), or null. */
    static Path distInfoMetadata(Path sitePackages, String name) {
        if (sitePackages == null || !Files.isDirectory(sitePackages)) {
            return null;
        }
        TreeSet<Path> found = new TreeSet<>();
        String normalized = name.replace('-', '_').toLowerCase(Locale.ROOT);
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(sitePackages, "*.dist-info")) {
            for (Path d : ds) {
                String dn = d.getFileName().toString();
                int dash = dn.indexOf('-');
                if (dash > 0 && dn.substring(0, dash).replace('-', '_').toLowerCase(Locale.ROOT).equals(normalized)
                        && Files.isRegularFile(d.resolve("METADATA"))) {
                    found.add(d.resolve("METADATA"));
                }
            }
        } catch (IOException e) {
            LOG.debug("cannot list {}: {}", sitePackages, e.toString());
        }
        return found.isEmpty() ? null : found.last();
    }

    /** Header fields of a core-metadata file (RFC 822 style, up to the first blank line). */
    static Map<String, List<String>> readMetadata(Path file) {
        Map<String, List<String>> out = new LinkedHashMap<>();
        try {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (line.isEmpty()) {
                    break; // the description body follows
                }
                int colon = line.indexOf(':');
                if (colon > 0 && !Character.isWhitespace(line.charAt(0))) {
                    out.computeIfAbsent(line.substring(0, colon).trim(), k -> new ArrayList<>())
                            .add(line.substring(colon + 1).trim());
                }
            }
        } catch (IOException e) {
            LOG.warn("cannot read {}: {}", file, e.toString());
        }
        return out;
    }

    /**
     * The version specifier of a {@code Requires-Dist} value when it is about the {@code torch} distribution
     * itself (not torch-xla, torchvision...) and unconditional or not extra-gated; else null.
     * {@code "torch (==2.1.*)"} and {@code "torch==2.5.*; python_version >= '3.8'"} both give {@code ==2.x.*}.
     */
    static String torchSpec(String requiresDist) {
        String s = requiresDist.trim();
        int semi = s.indexOf(';');
        if (semi >= 0) {
            if (s.substring(semi).contains("extra")) {
                return null;
            }
            s = s.substring(0, semi).trim();
        }
        Matcher m = Pattern.compile("^([A-Za-z0-9_.\\-]+)\\s*(\\[[^]]*])?\\s*\\(?\\s*([^)]*)\\)?\\s*$").matcher(s);
        if (!m.matches()) {
            return null;
        }
        String name = m.group(1).toLowerCase(Locale.ROOT);
        if (!name.equals("torch")) {
            return null;
        }
        String spec = m.group(3).replace(" ", "");
        return spec.isEmpty() ? null : spec;
    }

    private static String first(List<String> l) {
        return l == null || l.isEmpty() ? null : l.get(0);
    }

    // ---------------------------------------------------------------------------------------------- versions

    /**
     * The libtorch release of org.bytedeco:pytorch on the class path, read without loading any native code:
     * the jar manifest's {@code Implementation-Version} of {@code org.bytedeco.pytorch.global.torch}'s package,
     * else {@code META-INF/maven/org.bytedeco/pytorch/pom.properties} of the jar holding that class. Both carry
     * the Maven version ({@code 2.10.0-1.5.13}), whose part before the dash is the torch release.
     *
     * @throws BackendException when org.bytedeco:pytorch is not on the class path or carries no version
     */
    static LibtorchVersion libtorchVersion() {
        Class<?> torch;
        try {
            torch = Class.forName("org.bytedeco.pytorch.global.torch", false,
                    TorchNeuronPackaging.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new BackendException("org.bytedeco:pytorch is not on the class path", e);
        }
        Package pkg = torch.getPackage();
        String v = pkg == null ? null : pkg.getImplementationVersion();
        if (v != null && !v.isBlank()) {
            return new LibtorchVersion(TorchVersion.parse(v), v, "Implementation-Version of " + pkg.getName());
        }
        CodeSource cs = torch.getProtectionDomain().getCodeSource();
        if (cs != null && cs.getLocation() != null) {
            try {
                Path jar = Path.of(cs.getLocation().toURI());
                if (Files.isRegularFile(jar)) {
                    try (JarFile jf = new JarFile(jar.toFile())) {
                        ZipEntry e = jf.getEntry("META-INF/maven/org.bytedeco/pytorch/pom.properties");
                        if (e != null) {
                            Properties p = new Properties();
                            try (InputStream in = jf.getInputStream(e)) {
                                p.load(in);
                            }
                            String pv = p.getProperty("version");
                            if (pv != null) {
                                return new LibtorchVersion(TorchVersion.parse(pv), pv, jar + "!/" + e.getName());
                            }
                        }
                    }
                }
            } catch (IOException | URISyntaxException | IllegalArgumentException ex) {
                LOG.debug("cannot read the pytorch jar's pom.properties: {}", ex.toString());
            }
        }
        throw new BackendException("cannot tell the org.bytedeco:pytorch version (no Implementation-Version, no "
                + "pom.properties); set the Maven property pytorch.version explicitly");
    }

    /**
     * Applies the version rule of the class comment.
     *
     * @throws BackendException naming both versions and the {@code -Dpytorch.version=} to use, or explaining that
     *     the targeted torch release is unknown
     */
    static void checkVersion(Inspection insp, LibtorchVersion libtorch, boolean assumeCompatible) {
        Requirement req = insp.requirement();
        TorchVersion have = libtorch.torch();
        if (req == null) {
            if (assumeCompatible) {
                LOG.warn("{}: torch release unknown (no torch-neuronx dist-info beside it); loading anyway because "
                        + "-D{}=true", insp.library(), ASSUME_COMPATIBLE_PROPERTY);
                return;
            }
            throw new BackendException("cannot tell which torch release " + insp.library() + " was built for: no "
                    + "torch_neuronx-*.dist-info/METADATA or torch-*.dist-info beside it. Loading a libtorchneuron "
                    + "built for another torch aborts the JVM. Point -D" + TorchNeuronLocator.PATH_PROPERTY
                    + " at the file inside its pip installation (site-packages/torch_neuronx/lib), or, if you know it "
                    + "matches libtorch " + have + " (org.bytedeco:pytorch " + libtorch.mavenVersion() + "), set -D"
                    + ASSUME_COMPATIBLE_PROPERTY + "=true");
        }
        if (req.admits(have)) {
            return;
        }
        String series = req.pinnedSeries();
        if (series != null && series.equals(have.series())) {
            LOG.warn("{} targets torch {} but libtorch is {} (same {} series, different patch release); "
                    + "relying on the symbol check", insp.library(), req.spec(), have, series);
            return;
        }
        String advice;
        String match = series == null ? null : BYTEDECO_PYTORCH.get(series);
        if (match != null) {
            advice = "build/run with -Dpytorch.version=" + match + " (the Maven property pytorch.version selects "
                    + "org.bytedeco:pytorch " + match + ", libtorch " + match.substring(0, match.indexOf('-')) + ")"
                    + ("2.7".equals(series) ? "; the Maven profile -P torchneuron-2.7 sets it with the matching javacpp "
                    + "and openblas" : "");
        } else {
            advice = "no org.bytedeco:pytorch release exists for torch " + (series == null ? req.spec() : series)
                    + " (available: " + new TreeSet<>(BYTEDECO_PYTORCH.values()) + "); install a torch-neuronx "
                    + "for one of those torch releases (see docs/neuron.md) and recompile the model with it";
        }
        throw new BackendException(insp.library() + " was built for torch " + req.spec() + " (from " + req.source()
                + (insp.torchNeuronxVersion() == null ? "" : ", torch-neuronx " + insp.torchNeuronxVersion())
                + ") but this JVM uses libtorch " + have + " (org.bytedeco:pytorch " + libtorch.mavenVersion()
                + "); loading it would abort the JVM. " + advice);
    }
}
