package dev.sdjvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.lang.reflect.Type;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * docs/architecture.md's package table matches the sources: the project packages each package refers to (imports
 * and qualified names in the main sources of src/core, src/cpu and src/neuron) are exactly its "depends on" column;
 * the graph has no cycle; the core (src/core) names neither libtorch (org.bytedeco) nor JNA (com.sun.jna) nor a
 * concrete backend, and its module requires none of them; the NEFF path's classes do not refer to libtorch; the root
 * package is the API (nothing depends on it); the artifact roles are written down once, in model.ArtifactRole; the
 * exported packages' public signatures name no third-party type and no type of a package that is not exported.
 */
class ArchitectureTest {
    /** The repository (the tests run in src/all). */
    private static final Path ROOT = Path.of("../..");
    /** The library's modules with Java sources, by directory under src/. */
    private static final List<String> MODULES = List.of("core", "cpu", "neuron");
    private static final Pattern PACKAGE = Pattern.compile("^package ([\\w.]+);", Pattern.MULTILINE);
    private static final Pattern REFERENCE = Pattern.compile("\\bdev\\.sdjvm\\.((?:[a-z]\\w*\\.)*)[A-Z]");
    private static final Pattern ROW = Pattern.compile("^\\| `(dev\\.sdjvm[\\w.]*)` \\|.*\\| ([^|]*) \\|$", Pattern.MULTILINE);

    /** Package -&gt; the project packages its sources refer to; and package -&gt; its sources' text. */
    static Map<String, Set<String>> graph(Map<String, List<String>> sources) throws IOException {
        Map<String, Set<String>> g = new TreeMap<>();
        for (String module : MODULES) {
            graph(ROOT.resolve("src").resolve(module).resolve("main/java"), g, sources);
        }
        return g;
    }

    /** {@link #graph(Map)} of one source root, added to {@code g} and {@code sources}. */
    static void graph(Path root, Map<String, Set<String>> g, Map<String, List<String>> sources) throws IOException {
        assertTrue(Files.isDirectory(root), root.toAbsolutePath().toString());
        try (Stream<Path> files = Files.walk(root)) {
            for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".java")
                    && !p.endsWith("module-info.java"))::iterator) {
                String s = Files.readString(f);
                Matcher pm = PACKAGE.matcher(s);
                assertTrue(pm.find(), f + " has no package");
                String pkg = pm.group(1);
                Set<String> d = g.computeIfAbsent(pkg, k -> new TreeSet<>());
                sources.computeIfAbsent(pkg, k -> new ArrayList<>()).add(f.getFileName() + "\n" + s);
                Matcher m = REFERENCE.matcher(s);
                while (m.find()) {
                    String q = ("dev.sdjvm." + m.group(1)).replaceAll("\\.$", "");
                    if (!q.equals(pkg)) {
                        d.add(q);
                    }
                }
            }
        }
    }

    @Test
    void theDocumentedPackageTableIsTheImportGraphAndItHasNoCycle() throws IOException {
        Map<String, List<String>> sources = new TreeMap<>();
        Map<String, Set<String>> g = graph(sources);
        String doc = Files.readString(ROOT.resolve("docs/architecture.md"));
        Map<String, Set<String>> documented = new TreeMap<>();
        Matcher row = ROW.matcher(doc);
        while (row.find()) {
            Set<String> d = new TreeSet<>();
            for (String dep : row.group(2).split(",")) {
                String name = dep.strip().replace("`", "");
                if (!name.isEmpty() && !name.equals("-")) {
                    d.add("dev.sdjvm." + name);
                }
            }
            documented.put(row.group(1), d);
        }
        assertEquals(g.keySet(), documented.keySet(), "every package has a row in docs/architecture.md, and only they");
        for (String pkg : g.keySet()) {
            assertEquals(g.get(pkg), documented.get(pkg), pkg + ": the 'depends on' column of docs/architecture.md");
        }
        // no cycle: repeatedly remove packages without project dependencies left
        Map<String, Set<String>> left = new TreeMap<>();
        g.forEach((k, v) -> left.put(k, new TreeSet<>(v)));
        boolean removed = true;
        while (removed && !left.isEmpty()) {
            removed = false;
            for (String leaf : new ArrayList<>(left.keySet())) {
                if (left.get(leaf).isEmpty()) {
                    left.remove(leaf);
                    left.values().forEach(s -> s.remove(leaf));
                    removed = true;
                }
            }
        }
        assertTrue(left.isEmpty(), "package cycle among " + left);
    }

    @Test
    void theCoreNamesNoNativeLibraryAndNoConcreteBackend() throws IOException {
        Map<String, List<String>> sources = new TreeMap<>();
        graph(ROOT.resolve("src/core/main/java"), new TreeMap<>(), sources);
        assertTrue(sources.containsKey("dev.sdjvm.pipeline") && sources.containsKey("dev.sdjvm.backend"), sources.keySet()
                .toString());
        List<String> found = new ArrayList<>();
        sources.forEach((pkg, srcs) -> {
            for (String src : srcs) {
                // code only: comments may say what the backends are
                String code = src.replaceAll("/\\*[\\s\\S]*?\\*/", "").replaceAll("(?m)//[^\"\n]*$", "");
                for (String banned : List.of("org.bytedeco", "com.sun.jna", "dev.sdjvm.backend.torch",
                        "dev.sdjvm.backend.neuron")) {
                    if (code.contains(banned)) {
                        found.add(pkg + "." + src.lines().findFirst().orElse("") + " names " + banned);
                    }
                }
            }
        });
        assertEquals(List.of(), found, "the core (src/core) runs without native libraries and finds the backends "
                + "through dev.sdjvm.backend.BackendProvider");
        String moduleInfo = Files.readString(ROOT.resolve("src/core/main/java/module-info.java"))
                .replaceAll("/\\*[\\s\\S]*?\\*/", "").replaceAll("//[^\n]*", "");
        for (String banned : List.of("org.bytedeco", "com.sun.jna")) {
            assertTrue(!moduleInfo.contains(banned), "the core's module-info requires " + banned);
        }
        assertTrue(moduleInfo.contains("uses dev.sdjvm.backend.BackendProvider;"), moduleInfo);
        for (String module : List.of("cpu", "neuron")) {
            assertTrue(Files.readString(ROOT.resolve("src/" + module + "/main/java/module-info.java"))
                    .contains("provides dev.sdjvm.backend.BackendProvider with"), module);
            assertTrue(Files.isRegularFile(ROOT.resolve("src/" + module
                    + "/main/resources/META-INF/services/dev.sdjvm.backend.BackendProvider")), module);
        }
    }

    @Test
    void libtorchStaysOffTheNeffPath() throws IOException {
        Map<String, List<String>> sources = new TreeMap<>();
        graph(sources);
        for (String src : sources.get("dev.sdjvm.backend.neuron")) {
            String file = src.lines().findFirst().orElse("");
            if (file.startsWith("Neff") || file.startsWith("Nrt") || file.equals("NeuronRuntime.java")) {
                assertTrue(!src.contains("org.bytedeco"), file + " is on the NEFF path and names libtorch");
            }
        }
    }

    @Test
    void theRootPackageIsTheApiAndNamesNoConcreteBackend() throws IOException {
        Map<String, Set<String>> g = graph(new TreeMap<>());
        for (String backend : List.of("dev.sdjvm.backend.neuron", "dev.sdjvm.backend.torch")) {
            assertTrue(!g.get("dev.sdjvm").contains(backend), "dev.sdjvm refers to " + backend
                    + ": backends are found through backend.BackendProvider and chosen by pipeline.BackendSelection");
        }
        g.forEach((pkg, deps) -> assertTrue(!deps.contains("dev.sdjvm"), pkg + " depends on the facade's package"));
        assertTrue(!g.get("dev.sdjvm.pipeline").isEmpty() && g.get("dev.sdjvm").contains("dev.sdjvm.pipeline"));
    }

    @Test
    void artifactRoleNamesAreWrittenOnlyInArtifactRole() throws IOException {
        List<String> ids = List.of("text_encoder", "unet", "vae_post_quant_conv", "vae_decoder", "vae_encoder");
        Map<String, List<String>> sources = new TreeMap<>();
        graph(sources);
        List<String> found = new ArrayList<>();
        sources.forEach((pkg, srcs) -> {
            for (String src : srcs) {
                String file = src.lines().findFirst().orElse("");
                if (file.equals("ArtifactRole.java")) {
                    continue;
                }
                // code only (comments may name roles); the diffusers folder unet/ (unet/config.json) is not the role
                String code = src.replaceAll("/\\*[\\s\\S]*?\\*/", "").replaceAll("(?m)//[^\"\n]*$", "")
                        .replace("resolve(\"unet\").resolve(\"config.json\")", "");
                for (String id : ids) {
                    if (code.contains("\"" + id + "\"")) {
                        found.add(pkg + "." + file + ": \"" + id + "\"");
                    }
                }
            }
        });
        assertEquals(List.of(), found, "role names as string literals outside model.ArtifactRole");
    }

    /** Types an exported signature must not name: the dependencies the module does not re-export. */
    private static final List<String> FOREIGN = List.of("com.fasterxml.", "org.bytedeco.", "com.sun.jna.", "org.slf4j.");

    @Test
    void exportedSignaturesNameNoThirdPartyTypeAndNoInternalPackage() throws Exception {
        String moduleInfo = Files.readString(ROOT.resolve("src/core/main/java/module-info.java"));
        Set<String> exported = new TreeSet<>();
        Matcher em = Pattern.compile("(?m)^\\s*exports ([\\w.]+);").matcher(moduleInfo);
        while (em.find()) {
            exported.add(em.group(1));
        }
        assertTrue(exported.contains("dev.sdjvm") && exported.contains("dev.sdjvm.scheduler"), exported.toString());
        Matcher tm = Pattern.compile("(?m)^\\s*requires transitive ([\\w.]+);").matcher(moduleInfo);
        while (tm.find()) {
            assertEquals("java.desktop", tm.group(1), "only java.desktop (BufferedImage) is re-exported");
        }
        Set<String> internal = new TreeSet<>(graph(new TreeMap<>()).keySet());
        internal.removeAll(exported);
        List<String> found = new ArrayList<>();
        int classes = 0;
        for (String pkg : exported) {
            Path dir = ROOT.resolve("src/core/target/classes").resolve(pkg.replace('.', '/'));
            try (Stream<Path> files = Files.list(dir)) {
                for (Path f : (Iterable<Path>) files.filter(p -> p.toString().endsWith(".class"))::iterator) {
                    String name = pkg + "." + f.getFileName().toString().replace(".class", "");
                    Class<?> c = Class.forName(name, false, getClass().getClassLoader());
                    if (!isApi(c)) {
                        continue;
                    }
                    classes++;
                    List<Type> types = new ArrayList<>();
                    if (c.getGenericSuperclass() != null) {
                        types.add(c.getGenericSuperclass());
                    }
                    types.addAll(List.of(c.getGenericInterfaces()));
                    for (Field fd : c.getDeclaredFields()) {
                        if (visible(fd.getModifiers())) {
                            types.add(fd.getGenericType());
                        }
                    }
                    List<Executable> members = new ArrayList<>(List.of(c.getDeclaredMethods()));
                    for (Constructor<?> k : c.getDeclaredConstructors()) {
                        members.add(k);
                    }
                    for (Executable m : members) {
                        if (!visible(m.getModifiers()) || m.isSynthetic()) {
                            continue;
                        }
                        if (m instanceof Method mm) {
                            types.add(mm.getGenericReturnType());
                        }
                        types.addAll(List.of(m.getGenericParameterTypes()));
                        types.addAll(List.of(m.getGenericExceptionTypes()));
                    }
                    if (c.isRecord()) {
                        for (RecordComponent rc : c.getRecordComponents()) {
                            types.add(rc.getGenericType());
                        }
                    }
                    for (Type t : types) {
                        String tn = t.getTypeName();
                        for (String foreign : FOREIGN) {
                            if (tn.contains(foreign)) {
                                found.add(c.getName() + ": " + tn);
                            }
                        }
                        for (String pkg2 : internal) {
                            if (Pattern.compile("\\b" + Pattern.quote(pkg2) + "\\.[A-Z]").matcher(tn).find()) {
                                found.add(c.getName() + ": " + tn + " (package " + pkg2 + " is not exported)");
                            }
                        }
                    }
                }
            }
        }
        assertTrue(classes > 30, "scanned " + classes + " public classes");
        assertEquals(List.of(), found, "exported public signatures naming a type the API cannot promise");
    }

    /** Public, and every class enclosing it public: reachable from outside the module. */
    private static boolean isApi(Class<?> c) {
        for (Class<?> k = c; k != null; k = k.getEnclosingClass()) {
            if (!Modifier.isPublic(k.getModifiers()) || k.isAnonymousClass() || k.isLocalClass()) {
                return false;
            }
        }
        return true;
    }

    private static boolean visible(int modifiers) {
        return Modifier.isPublic(modifiers) || Modifier.isProtected(modifiers);
    }
}
