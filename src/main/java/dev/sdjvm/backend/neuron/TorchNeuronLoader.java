package dev.sdjvm.backend.neuron;

import dev.sdjvm.BackendException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds torch-neuronx's {@code libtorchneuron.so} (the TorchScript ops {@code neuron::forward_v2} and the
 * {@code neuron.Model} class that Neuron-compiled {@code .pt} files call), checks that it was built for the libtorch
 * this JVM runs, and loads it into the process with {@link System#load}.
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
 *   <li>the libtorch release of this JVM ({@link #libtorchVersion()}: org.bytedeco:pytorch's jar manifest /
 *       pom.properties, i.e. the Maven property {@code pytorch.version});</li>
 *   <li>once libtorch is loaded: every c10/at/torch symbol libtorchneuron imports must be defined by the
 *       loaded libtorch libraries (found in {@code /proc/self/maps}); this also catches a C++11-ABI mismatch.</li>
 * </ol>
 * A different major.minor is refused with a {@link BackendException} naming both versions and the
 * {@code -Dpytorch.version=} that selects a matching org.bytedeco:pytorch. A patch-level difference (torch-neuronx
 * 2.7.0 with bytedeco 2.7.1) is allowed with a warning when the symbol check passes. System property
 * {@value #ASSUME_COMPATIBLE_PROPERTY}{@code =true} skips the version rule (not the ELF and symbol checks) when the
 * torch release cannot be determined.
 */
public final class TorchNeuronLoader {
    private static final Logger LOG = LoggerFactory.getLogger(TorchNeuronLoader.class);

    /** System property naming libtorchneuron.so, its lib/ directory or the site-packages directory. */
    public static final String PATH_PROPERTY = "sdjvm.neuron.torchneuron.path";
    /** Environment variable with the same meaning as {@link #PATH_PROPERTY}. */
    public static final String PATH_ENV = "SDJVM_TORCHNEURON_PATH";
    /** Set to true to load even when the torch release libtorchneuron targets cannot be determined. */
    public static final String ASSUME_COMPATIBLE_PROPERTY = "sdjvm.neuron.torchneuron.assumeCompatible";
    /** The library's file name inside {@code torch_neuronx/lib}. */
    public static final String LIB_NAME = "libtorchneuron.so";

    /**
     * org.bytedeco:pytorch releases by torch series (Maven Central), for the "use -Dpytorch.version=" advice.
     */
    public static final Map<String, String> BYTEDECO_PYTORCH = Map.of(
            "2.5", "2.5.1-1.5.11",
            "2.7", "2.7.1-1.5.12",
            "2.10", "2.10.0-1.5.13",
            "2.13", "2.13.0-1.5.14");

    private static final Set<String> TORCH_LIBS = Set.of("libtorch.so", "libtorch_cpu.so", "libc10.so",
            "libtorch_global_deps.so");
    private static final String[] TORCH_SYMBOL_PREFIXES = {"_ZN3c10", "_ZNK3c10", "_ZN2at", "_ZNK2at", "_ZN5torch",
            "_ZNK5torch"};
    private static final AtomicBoolean LOADED = new AtomicBoolean();
    private static volatile Path loadedPath;

    private TorchNeuronLoader() {}

    /** The version of the libtorch this JVM uses, and where that was read. */
    public record LibtorchVersion(TorchVersion torch, String mavenVersion, String source) {}

    /** The torch requirement libtorchneuron declares, and where it was read. */
    public record Requirement(String spec, String source) {
        /** True when {@code v} satisfies every clause of {@link #spec()} (PEP 440 subset: == (with .*), !=, >=, <=, >, <, ~=). */
        public boolean admits(TorchVersion v) {
            for (String clause : spec.split(",")) {
                String c = clause.trim();
                if (!c.isEmpty() && !clauseAdmits(c, v)) {
                    return false;
                }
            }
            return true;
        }

        /** The torch series (major.minor) pinned by an {@code ==} or {@code ~=} clause, or the lower bound's; null if none. */
        public String pinnedSeries() {
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
    public record Inspection(Path library, int machine, List<String> needed, List<String> runPath,
            List<ElfFile.VersionNeed> versionNeeds, String torchNeuronxVersion, Requirement requirement,
            TorchVersion installedTorch) {
        public Inspection {
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

    /** True once {@link #load} succeeded in this process. */
    public static boolean isLoaded() {
        return LOADED.get();
    }

    /** The library loaded by {@link #load}, or null. */
    public static Path loadedPath() {
        return loadedPath;
    }

    // ---------------------------------------------------------------------------------------------- locating

    /**
     * Candidate files, in order: {@value #PATH_PROPERTY}, {@value #PATH_ENV} (file, its lib/ directory, or a
     * site-packages directory), then {@code torch_neuronx/lib/libtorchneuron.so} in the site-/dist-packages of
     * {@code $VIRTUAL_ENV}, the AWS DLAMI venvs {@code /opt/aws_neuronx_venv_pytorch_*}, {@code ~/.local},
     * {@code /usr/local}, {@code /usr}, {@code /opt/conda}. {@code root} is "/" except in tests.
     */
    public static List<Path> candidates(Path root, String property, Map<String, String> env) {
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
    public static Path locate() {
        for (Path p : candidates(Path.of("/"), System.getProperty(PATH_PROPERTY), System.getenv())) {
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        return null;
    }

    // ---------------------------------------------------------------------------------------------- inspecting

    /**
     * Reads the ELF facts and the packaging metadata of {@code library}. Does not load anything.
     *
     * @throws BackendException when the file is missing, not ELF, truncated, for another machine, not linked
     *     against libtorch, or linked against CPython
     */
    public static Inspection inspect(Path library) {
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
        if (needed.stream().noneMatch(TORCH_LIBS::contains)) {
            throw new BackendException(library + " does not link against libtorch (DT_NEEDED " + needed
                    + "): not a torch extension library like torch-neuronx's " + LIB_NAME);
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
    public static LibtorchVersion libtorchVersion() {
        Class<?> torch;
        try {
            torch = Class.forName("org.bytedeco.pytorch.global.torch", false, TorchNeuronLoader.class.getClassLoader());
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
    public static void checkVersion(Inspection insp, LibtorchVersion libtorch, boolean assumeCompatible) {
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
                    + "built for another torch aborts the JVM. Point -D" + PATH_PROPERTY + " at the file inside its "
                    + "pip installation (site-packages/torch_neuronx/lib), or, if you know it matches libtorch "
                    + have + " (org.bytedeco:pytorch " + libtorch.mavenVersion() + "), set -D"
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
                    + "org.bytedeco:pytorch " + match + ", libtorch " + match.substring(0, match.indexOf('-')) + ")";
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

    // ---------------------------------------------------------------------------------------------- symbols

    /**
     * The c10/at/torch symbols (mangled names) that {@code extension} imports and none of {@code torchLibs} defines.
     * Weak imports are ignored. An empty result means every torch entry point it needs exists in that libtorch.
     */
    public static List<String> missingTorchSymbols(Path extension, List<Path> torchLibs) {
        return missingSymbols(extension, torchLibs, TorchNeuronLoader::isTorchSymbol);
    }

    /**
     * The symbols selected by {@code which} that {@code extension} imports (non-weak, undefined) and none of
     * {@code providers} defines, sorted. Used for the torch symbols and for the {@code nrt_*} symbols of libnrt.
     */
    public static List<String> missingSymbols(Path extension, List<Path> providers, Predicate<String> which) {
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
    public static List<String> runtimeProblems(Inspection insp, Path nrt) {
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
    public static List<Path> loadedTorchLibraries() {
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

    // ---------------------------------------------------------------------------------------------- loading

    /**
     * Checks {@code library} (ELF, torch release, symbols against the loaded libtorch) and {@link System#load}s it.
     * Idempotent for the same file. libtorch must already be loaded (JavaCPP's {@code Loader.load(torch.class)}):
     * {@link NeuronPlatform#loadTorchNeuron()} takes care of the order.
     *
     * @throws BackendException when a check fails (nothing is loaded then) or when another file is already loaded
     */
    public static synchronized void load(Path library) {
        Path abs = library.toAbsolutePath().normalize();
        if (LOADED.get()) {
            if (abs.equals(loadedPath)) {
                return;
            }
            throw new BackendException("libtorchneuron is already loaded from " + loadedPath + "; cannot also load "
                    + abs);
        }
        Inspection insp = inspect(abs);
        LibtorchVersion lt = libtorchVersion();
        checkVersion(insp, lt, Boolean.getBoolean(ASSUME_COMPATIBLE_PROPERTY));
        List<Path> torchLibs = loadedTorchLibraries();
        if (torchLibs.isEmpty()) {
            throw new BackendException("libtorch is not loaded in this process yet; load it first "
                    + "(Loader.load(org.bytedeco.pytorch.global.torch.class)) and then " + abs);
        }
        List<String> missing = missingTorchSymbols(abs, torchLibs);
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
